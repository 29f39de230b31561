"""Helpers shared by the sync and asyncio clients."""
import logging
import os

import grpc

from ferry import _types
from ferry.errors import InvalidArgument, Unavailable, error_from_rpc_error, error_from_status
from ferry.v1 import common_pb2, publisher_pb2

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


def build_message(key, value, headers, ordering_key, message_id, timestamp):
    """Returns (OutgoingMessage, size, ordering key or None)."""
    key_b = _types.to_bytes(key, "key")
    value_b = _types.to_bytes(value, "value")
    okey_b = _types.to_bytes(ordering_key, "ordering_key")
    header_list = _types.to_header_list(headers)
    if message_id is None:
        # 16 random bytes as 32 hex digits, like the Go and C++ SDKs; a
        # quarter of uuid4().hex's cost, which was a tenth of a publish call.
        message_id = os.urandom(16).hex()
    elif not isinstance(message_id, str):
        raise TypeError("id must be str")
    message = publisher_pb2.OutgoingMessage(
        key=key_b, value=value_b, ordering_key=okey_b, id=message_id,
        headers=[common_pb2.Header(key=k, value=v) for k, v in header_list])
    if timestamp is not None:
        message.timestamp.FromDatetime(timestamp)
    size = len(key_b) + len(value_b) + len(okey_b) + len(message_id) + sum(
        len(k) + len(v) + 4 for k, v in header_list) + 16
    okey = okey_b or key_b or None
    return message, size, okey


def result_outcomes(response, count, endpoint):
    """Per-message outcomes of a PublishResponse: PublishResult or FerryError."""
    results = list(response.results)
    if len(results) != count:
        error = Unavailable("node answered %d results for %d messages" % (len(results), count),
                            retryable=False, endpoint=endpoint)
        return [error] * count
    outcomes = []
    for r in results:
        if r.status.code == 0:
            outcomes.append(_types.PublishResult(r.cluster, r.partition, r.offset))
        else:
            outcomes.append(error_from_status(r.status.code, r.status.message,
                                              retryable=r.status.retryable, endpoint=endpoint))
    return outcomes


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


def too_big(size, limit):
    return InvalidArgument("message of %d bytes exceeds max_outstanding_bytes %d" % (size, limit))


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
