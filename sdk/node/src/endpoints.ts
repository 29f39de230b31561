// Retry backoff and the choice of the node for each call, as the C++ SDK's
// sdk/cpp/src/endpoints.h.

/**
 * initial * 2^(attempt - 1), capped at max (milliseconds). No jitter: retries
 * are already spread by their batches' different failure times, and tests
 * stay exact.
 */
export class Backoff {
  constructor(readonly initial: number, readonly max: number) {}

  /** `attempt` >= 1: the number of failures so far. */
  delay(attempt: number): number {
    return Math.min(this.initial * 2 ** Math.max(0, attempt - 1), this.max);
  }
}

/**
 * Round-robin over healthy endpoints. An endpoint that failed (unreachable,
 * timed out) is unhealthy for backoff.delay(consecutive failures); when every
 * endpoint is unhealthy, the one whose period ends first is used anyway, so a
 * call always goes somewhere. A retry avoids the endpoint it failed on while
 * another one is healthy.
 */
export class EndpointSelector {
  private readonly failures: number[];
  private readonly unhealthyUntil: number[];
  private next = 0;

  constructor(count: number, private readonly backoff: Backoff) {
    this.failures = new Array<number>(count).fill(0);
    this.unhealthyUntil = new Array<number>(count).fill(0);
  }

  /** The endpoint for the next call; `avoid` (-1: none) only if no other is healthy. */
  pick(now: number, avoid = -1): number {
    const n = this.failures.length;
    for (let i = 0; i < n; i++) {
      const index = (this.next + i) % n;
      if (index !== avoid && this.healthy(index, now)) {
        this.next = index + 1;
        return index;
      }
    }
    let best = 0;
    for (let i = 1; i < n; i++) if (this.unhealthyUntil[i] < this.unhealthyUntil[best]) best = i;
    this.next = best + 1;
    return best;
  }

  /**
   * A call to `index` failed at the transport level. Failures of calls that
   * were in flight together count once: the period grows only when the
   * endpoint had been healthy again.
   */
  reportFailure(index: number, now: number): void {
    if (!this.healthy(index, now)) return;
    this.failures[index]++;
    this.unhealthyUntil[index] = now + this.backoff.delay(this.failures[index]);
  }

  /** A call to `index` was answered: it is healthy again. Returns whether it had failed before (a reconnect). */
  reportSuccess(index: number): boolean {
    const hadFailed = this.failures[index] > 0;
    this.failures[index] = 0;
    this.unhealthyUntil[index] = 0;
    return hadFailed;
  }

  healthy(index: number, now: number): boolean {
    return this.unhealthyUntil[index] <= now;
  }
}
