// The SDK's one retry decision, the same table as the C++ SDK
// (sdk/cpp/src/retry.cc) and ferryd's own (src/api/retry.h).
import { status as Status } from '@grpc/grpc-js';

/**
 * True when sending the same message again (later, or to another node) may
 * succeed. `nodeSays` is the node's decision (ferry.v1.Status.retryable): pass
 * it whenever the node answered with a Status, and it wins. Without it (a call
 * that failed as a whole, an unreachable node, a failure the SDK made itself)
 * the code decides. CANCELLED is retryable because the SDK sees it only when a
 * node goes away mid-call (the publisher's own cancels on close are handled
 * before this is asked). Codes this version does not know are not retryable.
 */
export function isRetryable(code: number, nodeSays?: boolean): boolean {
  if (code === Status.OK) return false;
  if (nodeSays !== undefined) return nodeSays;
  switch (code) {
    case Status.UNAVAILABLE:
    case Status.DEADLINE_EXCEEDED:
    case Status.RESOURCE_EXHAUSTED:
    case Status.ABORTED:
    case Status.CANCELLED:
      return true;
    default:
      return false;
  }
}

/**
 * Call-level codes after which the node itself counts as failed, so the next
 * calls prefer the other nodes for a while.
 */
export function isNodeFailure(code: number): boolean {
  return code === Status.UNAVAILABLE || code === Status.DEADLINE_EXCEEDED || code === Status.CANCELLED;
}

/** Subscribe stream failures that stop the subscriber: its options or its credentials are wrong. */
export function isFatalStreamCode(code: number): boolean {
  return code === Status.INVALID_ARGUMENT || code === Status.NOT_FOUND || code === Status.UNIMPLEMENTED ||
    code === Status.UNAUTHENTICATED || code === Status.PERMISSION_DENIED;
}
