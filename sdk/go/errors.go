package ferry

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error is every failure the SDK reports: the gRPC status code, the node's
// (or the SDK's) reason, and whether trying again may succeed.
//
// Match it by code with errors.Is against the sentinels below, or take it
// apart with errors.As:
//
//	if errors.Is(err, ferry.ErrNotFound) { ... }
//	var fe *ferry.Error
//	if errors.As(err, &fe) && fe.Retryable { ... }
//
// status.Code(err) from google.golang.org/grpc/status works too.
type Error struct {
	Code codes.Code
	// Human-readable reason, e.g. "message of 2097152 bytes exceeds ...".
	Message string
	// True when the same operation may succeed later or on another node.
	// For publish results the publisher already retried until its delivery
	// timeout.
	Retryable bool
	// The node that answered, when known.
	Endpoint string
	// What errors.Is also matches, e.g. ErrClosed.
	cause error
}

func (e *Error) Error() string {
	if e.Endpoint != "" {
		return fmt.Sprintf("ferry: %s: %s (node %s)", e.Code, e.Message, e.Endpoint)
	}
	return fmt.Sprintf("ferry: %s: %s", e.Code, e.Message)
}

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, ErrUnavailable) matches any UNAVAILABLE failure.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

func (e *Error) Unwrap() error { return e.cause }

// GRPCStatus lets status.Code and status.FromError see the code.
func (e *Error) GRPCStatus() *status.Status { return status.New(e.Code, e.Message) }

// Sentinels for errors.Is; compare codes only.
var (
	ErrCancelled          = &Error{Code: codes.Canceled}
	ErrInvalidArgument    = &Error{Code: codes.InvalidArgument}
	ErrDeadlineExceeded   = &Error{Code: codes.DeadlineExceeded}
	ErrNotFound           = &Error{Code: codes.NotFound}
	ErrPermissionDenied   = &Error{Code: codes.PermissionDenied}
	ErrResourceExhausted  = &Error{Code: codes.ResourceExhausted}
	ErrFailedPrecondition = &Error{Code: codes.FailedPrecondition}
	ErrAborted            = &Error{Code: codes.Aborted}
	ErrUnimplemented      = &Error{Code: codes.Unimplemented}
	ErrInternal           = &Error{Code: codes.Internal}
	ErrUnavailable        = &Error{Code: codes.Unavailable}
	ErrUnauthenticated    = &Error{Code: codes.Unauthenticated}
)

// ErrClosed is matched (errors.Is) by the UNAVAILABLE *Error of a message
// that could not be published because its Publisher was closed, and of calls
// on a closed Publisher or Subscriber.
var ErrClosed = errors.New("ferry: closed")

func closedError(what string, last *Error) *Error {
	message := what + " closed"
	if last != nil {
		message += "; last error: " + last.Message
	}
	return &Error{Code: codes.Unavailable, Message: message, cause: ErrClosed}
}

// contextError converts ctx.Err() into an *Error (CANCELLED or
// DEADLINE_EXCEEDED) that still matches context.Canceled and friends.
func contextError(err error) *Error {
	return &Error{Code: status.FromContextError(err).Code(), Message: err.Error(), cause: err}
}

// IsRetryable reports whether err is a *Error (or wraps one) marked retryable.
func IsRetryable(err error) bool {
	var fe *Error
	return errors.As(err, &fe) && fe.Retryable
}

// callError converts a failed gRPC call into an *Error, deciding
// retryability from the code (the node gave no ferry.v1.Status).
func callError(err error, endpoint string) *Error {
	var fe *Error
	if errors.As(err, &fe) {
		return fe
	}
	st := status.Convert(err)
	return &Error{Code: st.Code(), Message: st.Message(), Retryable: retryable(st.Code(), nil),
		Endpoint: endpoint}
}

func invalidOption(format string, args ...interface{}) error {
	return &Error{Code: codes.InvalidArgument, Message: fmt.Sprintf(format, args...)}
}
