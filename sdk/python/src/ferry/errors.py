"""Typed exceptions carrying the gRPC status code and the node's reason.

Every failure the SDK reports is a :class:`FerryError` subclass chosen by the
gRPC status code (``ferry.NotFound`` for ``NOT_FOUND`` and so on)::

    try:
        publisher.publish("orders", b"x").result()
    except ferry.NotFound as e:
        print(e.code, e.reason)        # StatusCode.NOT_FOUND, "unknown topic ..."
    except ferry.FerryError as e:
        print(e.code, e.retryable)
"""
from typing import Optional, Union

import grpc

__all__ = [
    "FerryError", "Cancelled", "Unknown", "InvalidArgument", "DeadlineExceeded",
    "NotFound", "AlreadyExists", "PermissionDenied", "ResourceExhausted",
    "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented", "Internal",
    "Unavailable", "DataLoss", "Unauthenticated", "error_from_status",
    "error_from_rpc_error",
]

_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


class FerryError(Exception):
    """Base of every Ferry SDK error.

    Attributes:
        code: the :class:`grpc.StatusCode` (``StatusCode.NOT_FOUND``, ...).
        reason: the node's (or the SDK's) human-readable explanation.
        retryable: True when trying the same operation again may succeed. For
            publish failures the publisher already retried until its
            ``delivery_timeout``.
        endpoint: the node that answered, when known.
    """

    code = grpc.StatusCode.UNKNOWN
    default_retryable = False

    def __init__(self, reason: str = "", *, code: Optional[grpc.StatusCode] = None,
                 retryable: Optional[bool] = None, endpoint: Optional[str] = None):
        super().__init__(reason)
        if code is not None:
            self.code = code
        self.reason = reason
        self.retryable = self.default_retryable if retryable is None else retryable
        self.endpoint = endpoint

    @property
    def code_number(self) -> int:
        """The numeric gRPC status code (5 for NOT_FOUND, 14 for UNAVAILABLE...)."""
        return self.code.value[0]

    def __str__(self) -> str:
        return "%s: %s" % (self.code.name, self.reason)

    def __repr__(self) -> str:
        return "%s(%r, code=%s, retryable=%s)" % (
            type(self).__name__, self.reason, self.code.name, self.retryable)


class Cancelled(FerryError):
    code = grpc.StatusCode.CANCELLED


class Unknown(FerryError):
    code = grpc.StatusCode.UNKNOWN


class InvalidArgument(FerryError):
    """Bad input: topic name, message size, options, filter syntax."""
    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(FerryError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    default_retryable = True


class NotFound(FerryError):
    """Unknown topic or group."""
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(FerryError):
    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(FerryError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(FerryError):
    """Flow control, quotas or the node's in-flight limits: retry later."""
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_retryable = True


class FailedPrecondition(FerryError):
    """E.g. a receipt that expired after a rebalance or seek."""
    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(FerryError):
    code = grpc.StatusCode.ABORTED
    default_retryable = True


class OutOfRange(FerryError):
    code = grpc.StatusCode.OUT_OF_RANGE


class Unimplemented(FerryError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(FerryError):
    code = grpc.StatusCode.INTERNAL


class Unavailable(FerryError):
    """No node or cluster could serve the call (safe to retry)."""
    code = grpc.StatusCode.UNAVAILABLE
    default_retryable = True


class DataLoss(FerryError):
    code = grpc.StatusCode.DATA_LOSS


class Unauthenticated(FerryError):
    code = grpc.StatusCode.UNAUTHENTICATED


_CLASSES = {cls.code: cls for cls in (
    Cancelled, Unknown, InvalidArgument, DeadlineExceeded, NotFound, AlreadyExists,
    PermissionDenied, ResourceExhausted, FailedPrecondition, Aborted, OutOfRange,
    Unimplemented, Internal, Unavailable, DataLoss, Unauthenticated)}


def error_from_status(code: Union[int, grpc.StatusCode], reason: str,
                      retryable: Optional[bool] = None,
                      endpoint: Optional[str] = None) -> FerryError:
    """Builds the typed error for a gRPC status code (number or StatusCode)."""
    if isinstance(code, int):
        status = _BY_NUMBER.get(code, grpc.StatusCode.UNKNOWN)
    else:
        status = code
    cls = _CLASSES.get(status, FerryError)
    return cls(reason, code=status, retryable=retryable, endpoint=endpoint)


def error_from_rpc_error(error: grpc.RpcError, endpoint: Optional[str] = None,
                         retryable: Optional[bool] = None) -> FerryError:
    """Converts a failed gRPC call (sync or aio) into a typed error."""
    try:
        code = error.code()
        details = error.details() or ""
    except Exception:  # not a call object
        code, details = grpc.StatusCode.UNKNOWN, str(error)
    if code is None:
        code = grpc.StatusCode.UNKNOWN
    return error_from_status(code, details, retryable=retryable, endpoint=endpoint)
