"""The direct path of fallback publishing: a confluent-kafka producer on a
topic's write cluster (``pip install ferry-client[fallback]``).

The guarantees are those of ferryd's own producer: acks=all, the idempotent
producer, header ``ferry.id``; the caller passes the partition of keyed
messages (the Java client's, see :mod:`ferry._client_config`), keyless ones
get a random one as through ferryd. Delivery reports fire only from
``poll()``: one thread per producer polls and hands each report to the
``done`` callback given with the message.
"""
import threading
import time

from google.protobuf import timestamp_pb2

from ferry import _types
from ferry.errors import InvalidArgument, Unavailable

ID_HEADER = "ferry.id"


def _confluent_kafka():
    try:
        import confluent_kafka
    except ImportError as e:
        raise Unavailable("fallback publishing needs confluent-kafka: "
                          "pip install 'ferry-client[fallback]' (%s)" % e,
                          retryable=False) from e
    return confluent_kafka


def producer_properties(target, linger: float, delivery_timeout: float):
    """librdkafka properties of the direct producer for ``target``."""
    properties = dict(target.properties)
    # After the cluster's properties: these make the guarantees.
    properties.update({
        "bootstrap.servers": target.bootstrap,
        "acks": "all",
        "enable.idempotence": "true",
        "linger.ms": int(linger * 1000),
        "message.timeout.ms": max(1, int(delivery_timeout * 1000)),
        "partitioner": "murmur2_random",
    })
    return properties


class DirectProducer:
    """One producer on one cluster. ``publish`` from one thread at a time;
    ``done(outcome)`` runs on the poll thread."""

    def __init__(self, target, linger: float, delivery_timeout: float):
        kafka = _confluent_kafka()
        self.cluster = target.cluster
        try:
            self._producer = kafka.Producer(producer_properties(target, linger,
                                                                delivery_timeout))
        except kafka.KafkaException as e:
            raise InvalidArgument("fallback producer for cluster %s: %s" % (target.cluster, e),
                                  retryable=False) from e
        self._kafka = kafka
        self._stopping = False
        self._poller = threading.Thread(target=self._poll, name="ferry-direct-poll",
                                        daemon=True)
        self._poller.start()

    def partitions(self, topic: str, timeout: float = 5.0) -> int:
        """The topic's partition count from the cluster (0: unknown)."""
        try:
            metadata = self._producer.list_topics(topic, timeout=timeout)
        except self._kafka.KafkaException:
            return 0
        t = metadata.topics.get(topic)
        return 0 if t is None or t.error is not None else len(t.partitions)

    def publish(self, topic, message, partition, done) -> None:
        """Produces ``message`` (an _outgoing.Outgoing); ``done`` gets a
        PublishResult or a FerryError exactly once."""
        headers = list(message.headers)
        headers.append((ID_HEADER, message.id.encode()))
        kwargs = dict(value=message.value, key=message.key or None, headers=headers,
                      on_delivery=lambda err, msg: done(self._outcome(err, msg)))
        if partition is not None:
            kwargs["partition"] = partition
        if message.timestamp is not None:
            # As the node gets it: protobuf's conversion (a naive datetime is UTC).
            stamp = timestamp_pb2.Timestamp()
            stamp.FromDatetime(message.timestamp)
            kwargs["timestamp"] = stamp.ToMilliseconds()
        while True:
            try:
                self._producer.produce(topic, **kwargs)
                return
            except BufferError:  # the local queue is full: wait for reports
                time.sleep(0.01)
            except self._kafka.KafkaException as e:
                error = e.args[0]
                done(Unavailable("cluster %s: %s" % (self.cluster, error.str()),
                                 retryable=error.retriable()))
                return

    def _outcome(self, err, msg):
        if err is None:
            return _types.PublishResult(self.cluster, msg.partition(), msg.offset(), direct=True)
        return Unavailable("cluster %s: %s" % (self.cluster, err.str()),
                           retryable=err.retriable())

    def _poll(self):
        while not self._stopping:
            self._producer.poll(0.05)

    def close(self, timeout: float) -> None:
        """Waits up to ``timeout`` for what is in flight, then fails the rest
        (their ``done`` runs before this returns)."""
        self._producer.flush(max(0.0, timeout))
        self._producer.purge()
        self._producer.flush(1.0)  # serves the purged messages' reports
        self._stopping = True
        self._poller.join()
