// A delivered message and how it is settled.
import type { RunPlace } from './ack-spans';
import { dateOf } from './convert';
import type { ReceivedMessage } from './wire';

export type SettleKind = 'ack' | 'nack' | 'extend';

/** What a Message calls to settle itself: the subscriber's stream bookkeeping. */
export interface Settler {
  settle(message: Message, kind: SettleKind, ms: number | undefined): void;
}

export class Message {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  /** The record key; null when it has none. */
  readonly key: Buffer | null;
  readonly value: Buffer;
  /** Every header in order (names may repeat). */
  readonly headerList: ReadonlyArray<[string, Buffer]>;
  /** Headers by name; the last value of a repeated one. */
  readonly headers: Readonly<Record<string, Buffer>>;
  readonly publishTime: Date | null;
  /** 1 on first delivery. */
  readonly deliveryAttempt: number;
  /** The cluster the message was read from. */
  readonly cluster: string;
  /** The publisher's `ferry.id`, to drop the rare duplicates a failover causes. */
  readonly id: string;
  /** The node whose stream delivered it; its receipt is valid on that stream only. */
  readonly endpoint: string;
  /** @internal Opaque token of this delivery, valid on its stream only. */
  readonly receipt: Buffer;
  /** @internal When it was delivered and when the node's deadline for it ends (performance.now() ms). */
  readonly deliveredAt: number;
  expiresAt: number;
  private settledFlag = false;

  /** @internal Its place in a receipt run of its batch (null: in none): its ack may go in a span. */
  readonly place: RunPlace | null;

  /** @internal */
  constructor(pb: ReceivedMessage, endpoint: string, private readonly settler: Settler, now: number, ackDeadline: number,
    place: RunPlace | null = null) {
    this.topic = pb.topic;
    this.partition = pb.partition;
    this.offset = Number(pb.offset);
    this.key = pb.key.length > 0 ? pb.key : null;
    this.value = pb.value;
    this.headerList = pb.headers.map((h) => [h.key, h.value] as [string, Buffer]);
    this.headers = Object.fromEntries(this.headerList);
    this.publishTime = dateOf(pb.publish_time);
    this.deliveryAttempt = pb.delivery_attempt;
    this.cluster = pb.cluster;
    this.id = pb.id;
    this.endpoint = endpoint;
    this.receipt = pb.receipt;
    this.deliveredAt = now;
    this.expiresAt = now + ackDeadline;
    this.place = place;
  }

  /** The message was processed: the node may commit past it. Only the first ack or nack counts. */
  ack(): void {
    this.settler.settle(this, 'ack', 0);
  }

  /** Redeliver the message, no sooner than `delay` ms (default: as soon as possible). */
  nack(options: { delay?: number } = {}): void {
    this.settler.settle(this, 'nack', options.delay ?? 0);
  }

  /**
   * Sets the node's deadline for this message to now + `deadline` ms (default:
   * the subscription's ackDeadline). Deadlines are extended automatically
   * while a message is unsettled; this is for asking more at once.
   */
  extend(options: { deadline?: number } = {}): void {
    this.settler.settle(this, 'extend', options.deadline);
  }

  /** True once acked or nacked, or when its stream broke (then the node redelivers it). */
  get settled(): boolean {
    return this.settledFlag;
  }

  /** @internal */
  markSettled(): void {
    this.settledFlag = true;
  }
}
