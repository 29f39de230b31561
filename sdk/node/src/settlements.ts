// Acks, nacks and extensions of one stream waiting to be sent together.
import { PendingAcks, RunPlace } from './ack-spans';
import { SettleKind } from './message';
import { SubscribeRequest, durationOf } from './wire';

export class Settlements {
  private acks = new PendingAcks();
  /** Receipts by nack delay / extension deadline (ms): one request each. */
  private nacks = new Map<number, Buffer[]>();
  private extensions = new Map<number, Buffer[]>();
  count = 0;

  /** `place`: the message's place in its receipt run, so that its ack can go in a span. */
  add(kind: SettleKind, receipt: Buffer, ms: number, place: RunPlace | null = null): void {
    if (kind === 'ack') this.acks.add(place, receipt);
    else appendTo(kind === 'nack' ? this.nacks : this.extensions, ms, receipt);
    this.count++;
  }

  /** The requests that send everything pending, and the counts by kind; empties it. */
  take(): { requests: SubscribeRequest[]; acks: number; nacks: number; extensions: number } {
    const requests: SubscribeRequest[] = [];
    const acked = this.acks.messages;
    const acks = this.acks.take();
    if (acks) requests.push({ ack: acks });
    for (const [delay, receipts] of this.nacks) requests.push({ nack: { receipts, delay: durationOf(delay) } });
    for (const [deadline, receipts] of this.extensions) {
      requests.push({ extend: { receipts, deadline: durationOf(deadline) } });
    }
    const counts = { acks: acked, nacks: sizeOf(this.nacks), extensions: sizeOf(this.extensions) };
    this.nacks = new Map();
    this.extensions = new Map();
    this.count = 0;
    return { requests, ...counts };
  }
}

function appendTo(map: Map<number, Buffer[]>, ms: number, receipt: Buffer): void {
  const list = map.get(ms);
  if (list) list.push(receipt);
  else map.set(ms, [receipt]);
}

function sizeOf(map: Map<number, Buffer[]>): number {
  let n = 0;
  for (const list of map.values()) n += list.length;
  return n;
}
