// One Subscribe stream to one node: its call, the messages it delivered that
// are not settled, and the settlements waiting to be sent on it. Receipts are
// valid only on the stream that delivered them, so all of this dies with it.
import type * as grpc from '@grpc/grpc-js';
import { Message, Settler } from './message';
import { Settlements } from './settlements';
import type { SubscribeRequest, SubscribeResponse } from './wire';

export type SubscribeCall = grpc.ClientDuplexStream<SubscribeRequest, SubscribeResponse>;

export class SubscribeStream {
  alive = true;
  readonly pending = new Settlements();
  /** Delivered and not settled, by receipt (latin1). */
  readonly unsettled = new Map<string, Message>();
  /** Numbers the receipt runs of the batches it delivered. */
  readonly runs = { seq: 0 };

  /** `settler` settles this stream's messages (a Message keeps it). */
  constructor(readonly index: number, readonly endpoint: string, readonly call: SubscribeCall,
    readonly settler: Settler) {}

  /** Sends the pending settlements; their counts by kind. */
  flush(): { acks: number; nacks: number; extensions: number } {
    const { requests, ...counts } = this.pending.take();
    if (this.alive) for (const request of requests) this.call.write(request);
    return counts;
  }

  /**
   * The stream ended: its messages can no longer be settled (the node
   * redelivers them). Returns how many settlements were dropped.
   */
  end(): number {
    this.alive = false;
    const dropped = this.pending.take();
    for (const message of this.unsettled.values()) message.markSettled();
    this.unsettled.clear();
    return dropped.acks + dropped.nacks;
  }
}
