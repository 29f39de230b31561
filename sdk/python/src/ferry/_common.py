"""Helpers shared by the sync and asyncio clients."""
import logging

import grpc

from ferry import _types
from ferry.errors import InvalidArgument, Unavailable, error_from_rpc_error, error_from_status

#: Call-level codes after which the node counts as failed (try another one).
NODE_FAILURE_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
#: Call-level codes worth retrying (the node says: later or elsewhere).
RETRYABLE_CALL_CODES = NODE_FAILURE_CODES + (grpc.StatusCode.RESOURCE_EXHAUSTED,
                                             grpc.StatusCode.ABORTED)
#: Subscriber stream failures that stop the subscriber (bad options).
FATAL_STREAM_CODES = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                      grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.UNAUTHENTICATED,
                      grpc.StatusCode.PERMISSION_DENIED)

log = logging.getLogger("ferry")

DEFAULT_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 300 << 20),
    ("grpc.keepalive_time_ms", 30000),
    ("grpc.keepalive_timeout_ms", 10000),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


def check_endpoints(endpoints):
    if isinstance(endpoints, str):
        endpoints = [endpoints]
    endpoints = list(endpoints or [])
    if not endpoints or not all(isinstance(e, str) and e for e in endpoints):
        raise ValueError("endpoints must be a non-empty list of 'host:port' strings")
    return endpoints


def channel_options(extra):
    options = dict(DEFAULT_CHANNEL_OPTIONS)
    options.update(dict(extra or []))
    return list(options.items())


def sync_channels(targets, credentials, extra_options):
    options = channel_options(extra_options)
    if credentials is None:
        return [grpc.insecure_channel(t, options=options) for t in targets]
    return [grpc.secure_channel(t, credentials, options=options) for t in targets]


def result_outcomes(response, count, endpoint):
    """Per-message outcomes of a PublishResponse: PublishResult or FerryError.

    One comprehension over the results, successes built with tuple.__new__
    (no Python-level constructor): this runs for every published message and
    was the largest part of a batch's completion (1.4 -> 0.5 µs a message).
    A fully written batch may come in the compact form (the request set
    compact_results): one cluster and the partitions and offsets in order."""
    if response.HasField("compact"):
        return compact_outcomes(response.compact, count, endpoint)
    results = response.results
    if len(results) != count:
        error = Unavailable("node answered %d results for %d messages" % (len(results), count),
                            retryable=False, endpoint=endpoint)
        return [error] * count
    new, cls = tuple.__new__, _types.PublishResult
    outcomes = [None if r.status.code else new(cls, (r.cluster, r.partition, r.offset))
                for r in results]
    if None in outcomes:
        for index, outcome in enumerate(outcomes):
            if outcome is None:
                status = results[index].status
                outcomes[index] = error_from_status(status.code, status.message,
                                                    retryable=status.retryable,
                                                    endpoint=endpoint)
    return outcomes


def compact_outcomes(compact, count, endpoint):
    """Outcomes of a PublishResponse.compact: every message was written."""
    partitions, offsets = compact.partitions, compact.offsets
    if len(partitions) != count or len(offsets) != count:
        error = Unavailable("node answered %d partitions and %d offsets for %d messages"
                            % (len(partitions), len(offsets), count),
                            retryable=False, endpoint=endpoint)
        return [error] * count
    new, cls, cluster = tuple.__new__, _types.PublishResult, compact.cluster
    return [new(cls, (cluster, p, o)) for p, o in zip(partitions, offsets)]


def call_error(error, endpoint):
    """(FerryError, node_failed) for a failed Publish call."""
    try:
        code = error.code()
    except Exception:
        code = grpc.StatusCode.UNKNOWN
    failed_node = code in NODE_FAILURE_CODES
    return error_from_rpc_error(error, endpoint, retryable=code in RETRYABLE_CALL_CODES), failed_node


def validate_topic(topic):
    if not isinstance(topic, str):
        raise TypeError("topic must be str, not %s" % type(topic).__name__)


def too_big(size, limit, what="message"):
    return InvalidArgument("%s of %d bytes exceeds max_outstanding_bytes %d" % (what, size, limit))


def report_stream_failure(on_error, report) -> None:
    """Logs a SubscriberError and hands it to the user's ``on_error``."""
    if report.fatal:
        log.error("ferry: subscriber stopped: %s (%s)", report.error, report.endpoint)
    else:
        log.info("ferry: stream to %s failed: %s; reconnecting", report.endpoint, report.error)
    if on_error is not None:
        try:
            on_error(report)
        except Exception:  # noqa: BLE001 - the user's callback must not stop the stream
            log.exception("ferry: on_error raised")


def report_receipt_failure(on_receipt_failure, error) -> None:
    """Hands an ack/nack the node could not apply to the user's callback."""
    log.debug("ferry: receipt not applied: %s", error)
    if on_receipt_failure is not None:
        try:
            on_receipt_failure(error)
        except Exception:  # noqa: BLE001
            log.exception("ferry: on_receipt_failure raised")
