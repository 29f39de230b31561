package ferry

import "google.golang.org/grpc/codes"

// retryable is the SDK's one retry decision, the same as the C++ SDK's
// (sdk/cpp/src/retry.cc): true when sending the same message again, later or
// on another node, may succeed.
//
// nodeSays is ferry.v1.Status.retryable, which ferryd decides in its error
// tables (src/api/retry.cc); whenever the node answered with a Status it
// wins. Without one (a call that failed as a whole, a node that could not be
// reached) the code decides as in ferryd's table, plus CANCELLED, which the
// SDK sees only when a node goes away mid-call (its own cancellations on
// Close are handled before this is asked).
func retryable(code codes.Code, nodeSays *bool) bool {
	if code == codes.OK {
		return false
	}
	if nodeSays != nil {
		return *nodeSays
	}
	switch code {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted,
		codes.Canceled:
		return true
	}
	return false
}

// nodeFailure reports whether a call-level code blames the node itself, so
// the retry should go to another one for a while.
func nodeFailure(code codes.Code) bool {
	return code == codes.Unavailable || code == codes.DeadlineExceeded || code == codes.Canceled
}
