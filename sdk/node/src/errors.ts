// Typed errors: every failure the SDK reports is a FerryError carrying the
// gRPC status code, the node's reason and whether trying again may succeed.
//
//   try {
//     await publisher.publish('orders', 'x');
//   } catch (e) {
//     if (e instanceof FerryError && e.code === Status.NOT_FOUND) { ... }
//   }
import { status as Status } from '@grpc/grpc-js';
import { isRetryable } from './retry';

export { Status };

export class FerryError extends Error {
  /** The gRPC status code number (Status.NOT_FOUND, Status.UNAVAILABLE, ...). */
  readonly code: Status;
  /** The code's name, e.g. "NOT_FOUND". */
  readonly codeName: string;
  /**
   * True when the same operation may succeed if tried again. A publish that
   * fails was already retried by the publisher until its deliveryTimeout.
   */
  readonly retryable: boolean;
  /** The node that answered, when known. */
  readonly endpoint?: string;

  constructor(code: Status, reason: string, options: { retryable?: boolean; endpoint?: string } = {}) {
    const codeName = Status[code] ?? 'UNKNOWN';
    super(`${codeName}: ${reason}`);
    this.name = 'FerryError';
    this.code = Status[code] === undefined ? Status.UNKNOWN : code;
    this.codeName = codeName;
    this.retryable = options.retryable ?? isRetryable(code);
    this.endpoint = options.endpoint;
  }
}

/** The error for a failed gRPC call (grpc-js ServiceError or anything thrown). */
export function errorFromCall(error: unknown, endpoint?: string): FerryError {
  const e = error as { code?: unknown; details?: unknown; message?: unknown };
  const code = typeof e?.code === 'number' ? e.code : Status.UNKNOWN;
  const reason = typeof e?.details === 'string' && e.details ? e.details : String(e?.message ?? error);
  return new FerryError(code, reason, { endpoint });
}
