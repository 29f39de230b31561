// Subscriber: one Subscribe stream per endpoint (each node serves some of the
// group's partitions), reopened with exponential backoff when it breaks.
// Messages go to an async iterator or to a handler. Acks, nacks and
// extensions are batched per stream; unsettled messages' deadlines are
// extended automatically. INVALID_ARGUMENT, NOT_FOUND and UNIMPLEMENTED stop
// the subscriber: its options are wrong, and retrying cannot help.
import { performance } from 'perf_hooks';
import { hostname } from 'os';
import * as grpc from '@grpc/grpc-js';
import { checkEndpoints, stripUndefined } from './convert';
import { FerryError, Status, errorFromCall } from './errors';
import { Handler, HandlerDispatch } from './handler-dispatch';
import { Message, SettleKind } from './message';
import { isFatalStreamCode } from './retry';
import { SubscribeStream } from './subscribe-stream';
import { placeInRuns } from './ack-spans';
import { Position, ReceiptResult, ReceiptRun, ReceivedMessage, SubscribeResponse, SubscriberClient, SubscriptionOpen, channelOptions,
  durationOf, services, timestampOf } from './wire';

export type Ordering = 'none' | 'key' | 'partition';

export interface SubscriberOptions {
  /** 'none' (default): spread over streams; 'key' / 'partition': one outstanding per key / partition. */
  ordering?: Ordering;
  /** How long a delivered message may stay unsettled before redelivery, ms (default 30 s; 1 s to 10 min). */
  ackDeadline?: number;
  /** Per stream flow control (defaults 1000 and 10 MiB). */
  maxOutstandingMessages?: number;
  maxOutstandingBytes?: number;
  /** Where a group without committed offsets starts (default 'latest'). */
  start?: 'earliest' | 'latest' | Date;
  /** Server-side filter, dead letters, client id: see SubscriptionOpen in subscriber.proto. */
  filter?: string;
  maxDeliveryAttempts?: number;
  deadLetterTopic?: string;
  clientId?: string;
  /** Handler mode: called for every message; the async iterator is then not used. */
  handler?: Handler;
  /** Handlers running at once (default 16); serial per key / partition in those modes. */
  handlerConcurrency?: number;
  /** A handler that returns without settling acks its message (default true); one that throws nacks it. */
  autoAck?: boolean;
  /** Called with what a handler threw (default: console.error). */
  onHandlerError?: (error: unknown, message: Message) => void;
  /** Called for every stream failure; `fatal`: the subscriber stopped (default: console.error of fatal ones). */
  onError?: (error: FerryError, info: { endpoint: string; fatal: boolean }) => void;
  /** Called for settlements the node could not apply (e.g. FAILED_PRECONDITION "receipt expired"). */
  onReceiptFailure?: (error: FerryError) => void;
  /** Settlements are sent per stream at this count or after this delay, ms (default 500, 5). */
  ackBatchCount?: number;
  ackBatchDelay?: number;
  /** Automatic deadline extension stops this long after delivery, ms (default 1 h). */
  maxExtension?: number;
  /** Stream reconnect backoff [initial, max], ms (default [100, 5000]). */
  reconnectBackoff?: [number, number];
  /** How long close() waits for running handlers, ms (default 30 s). */
  closeTimeout?: number;
  /** TLS and a token: credentials({ caFile, certFile, keyFile, token }) (default: plain text). */
  credentials?: grpc.ChannelCredentials;
  channelOptions?: grpc.ChannelOptions;
}

export interface SubscriberStats {
  received: number;
  acksSent: number;
  nacksSent: number;
  extensionsSent: number;
  /** Settlements dropped because their stream had broken (the node redelivers). */
  droppedSettlements: number;
  /** Settlements the node refused (a span refused as a whole: each of its messages). */
  receiptFailures: number;
  reconnects: number;
  openStreams: number;
}

const ORDERING: Record<Ordering, number> = { none: 1, key: 2, partition: 3 };
const now = () => performance.now();
/** How long close() waits for the nodes to end the half-closed streams. */
const STREAM_END_GRACE = 5000;

type Options = Required<Omit<SubscriberOptions,
  'handler' | 'credentials' | 'channelOptions' | 'filter' | 'maxDeliveryAttempts' | 'deadLetterTopic' |
  'clientId' | 'start' | 'ordering' | 'maxOutstandingMessages' | 'maxOutstandingBytes'>>;

export class Subscriber implements AsyncIterable<Message> {
  private readonly targets: string[];
  private readonly clients: SubscriberClient[];
  private readonly open: SubscriptionOpen;
  private readonly options: Options;
  private readonly streams: (SubscribeStream | null)[];
  private readonly backoffs: number[];
  private readonly dispatch: HandlerDispatch | null;
  /** Delivered, not yet taken by the iterator. */
  private queue: Message[] = [];
  private readonly readers: { resolve(r: IteratorResult<Message>): void; reject(e: unknown): void }[] = [];
  private readonly counters: Omit<SubscriberStats, 'openStreams'> = {
    received: 0, acksSent: 0, nacksSent: 0, extensionsSent: 0, droppedSettlements: 0, receiptFailures: 0, reconnects: 0,
  };
  private readonly timers = new Set<NodeJS.Timeout>();
  private flushTimer: NodeJS.Timeout | null = null;
  private readonly maintenance: NodeJS.Timeout;
  private failureError: FerryError | null = null;
  private closing: Promise<void> | null = null;
  private closed = false;
  private readonly doneWaiters: { resolve(): void; reject(e: FerryError): void }[] = [];

  constructor(endpoints: string | string[], group: string, topics: string | string[], options: SubscriberOptions = {}) {
    this.targets = checkEndpoints(endpoints);
    const topicList = typeof topics === 'string' ? [topics] : [...(topics ?? [])];
    if (typeof group !== 'string' || !group) throw new TypeError('group must be a non-empty string');
    if (topicList.length === 0) throw new TypeError('topics must name at least one topic');
    const ordering = options.ordering ?? 'none';
    if (!(ordering in ORDERING)) throw new TypeError(`ordering must be 'none', 'key' or 'partition', not '${ordering}'`);
    this.options = {
      ackDeadline: 30_000, handlerConcurrency: 16, autoAck: true, ackBatchCount: 500, ackBatchDelay: 5,
      maxExtension: 3_600_000, reconnectBackoff: [100, 5000], closeTimeout: 30_000,
      onHandlerError: (error, message) => console.error(`ferry: handler failed on ${message.topic}/${message.partition}@${message.offset}; nacked:`, error),
      onError: (error, { fatal }) => fatal && console.error(`ferry: subscriber stopped: ${error.message}`),
      onReceiptFailure: () => {}, ...stripUndefined(options),
    };
    const o = this.options;
    if (o.handlerConcurrency < 1 || o.ackBatchCount < 1 || o.ackBatchDelay < 0 || !(o.reconnectBackoff[0] > 0)) {
      throw new RangeError('Subscriber: handlerConcurrency and ackBatchCount must be >= 1, ackBatchDelay >= 0, reconnectBackoff > 0');
    }
    this.open = {
      group, topics: topicList, ordering: ORDERING[ordering], ack_deadline: durationOf(o.ackDeadline),
      flow: { max_outstanding_messages: options.maxOutstandingMessages ?? 1000, max_outstanding_bytes: options.maxOutstandingBytes ?? 10 << 20 },
      start: positionOf(options.start ?? 'latest'), filter: options.filter ?? '',
      max_delivery_attempts: options.maxDeliveryAttempts ?? 0, dead_letter_topic: options.deadLetterTopic ?? '',
      client_id: options.clientId ?? `ferry-node ${hostname()}:${process.pid}`,
    };
    this.dispatch = options.handler ? new HandlerDispatch(options.handler, {
      concurrency: o.handlerConcurrency, autoAck: o.autoAck, onHandlerError: o.onHandlerError,
      chainKeyOf: chainKeyFor(ordering),
    }) : null;
    const Client = services().Subscriber;
    const credentials = options.credentials ?? grpc.credentials.createInsecure();
    this.clients = this.targets.map((t) => new Client(t, credentials, channelOptions(options.channelOptions)));
    this.streams = this.targets.map(() => null);
    this.backoffs = this.targets.map(() => o.reconnectBackoff[0]);
    this.maintenance = setInterval(() => this.extendDue(), Math.min(1000, Math.max(50, o.ackDeadline / 6)));
    this.targets.forEach((_, index) => this.connect(index));
  }

  /** `for await (const m of subscriber)`; leaving the loop early closes the subscriber. */
  [Symbol.asyncIterator](): AsyncIterator<Message> {
    return {
      next: () => this.next(),
      return: async () => {
        await this.close();
        return { done: true, value: undefined };
      },
    };
  }

  /** The fatal error that stopped the subscriber, if any. */
  get failure(): FerryError | null {
    return this.failureError;
  }

  /** Resolves when the subscriber is closed; rejects with the fatal error that stopped it. */
  done(): Promise<void> {
    if (this.failureError) return Promise.reject(this.failureError);
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => this.doneWaiters.push({ resolve, reject }));
  }

  stats(): SubscriberStats {
    return { ...this.counters, openStreams: this.streams.filter((s) => s?.alive).length };
  }

  /**
   * Stops delivery, waits for running handlers (up to closeTimeout), nacks
   * messages not handed out, sends pending settlements, half-closes the
   * streams and waits for the nodes to end them (cancelling after 5 s).
   * Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private settle(stream: SubscribeStream, message: Message, kind: SettleKind, ms: number | undefined): void {
    if (message.settled) return;
    if (kind !== 'extend') {
      message.markSettled();
      stream.unsettled.delete(message.receipt.toString('latin1'));
    }
    if (!stream.alive || this.closed) {
      if (kind !== 'extend') this.counters.droppedSettlements++;
      return;
    }
    if (kind === 'extend') {
      ms ??= this.options.ackDeadline;
      message.expiresAt = now() + ms;
    }
    stream.pending.add(kind, message.receipt, ms ?? 0, message.place);
    if (stream.pending.count >= this.options.ackBatchCount) this.flush(stream);
    else this.flushTimer ??= setTimeout(() => this.flushAll(), this.options.ackBatchDelay);
  }

  private next(): Promise<IteratorResult<Message>> {
    if (this.failureError) return Promise.reject(this.failureError);
    while (this.queue.length > 0) {
      const message = this.queue.shift()!;
      if (!message.settled) return Promise.resolve({ done: false, value: message });
    }
    if (this.closing) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => this.readers.push({ resolve, reject }));
  }

  private connect(index: number): void {
    if (this.closing) return;
    const endpoint = this.targets[index];
    const call = this.clients[index].Subscribe();
    const stream: SubscribeStream = new SubscribeStream(index, endpoint, call,
      { settle: (message, kind, ms) => this.settle(stream, message, kind, ms) });
    this.streams[index] = stream;
    call.on('data', (response: SubscribeResponse) => this.onResponse(stream, response));
    call.on('error', () => {}); // reported through 'status'
    call.on('status', (status: grpc.StatusObject) => this.onStreamEnd(stream, status));
    call.write({ open: this.open });
  }

  private onResponse(stream: SubscribeStream, response: SubscribeResponse): void {
    if (response.response === 'opened') {
      this.backoffs[stream.index] = this.options.reconnectBackoff[0];
    } else if (response.response === 'messages') {
      this.deliver(stream, response.messages!.messages, response.messages!.runs);
    } else if (response.response === 'receipt_results') {
      this.receiptFailures(stream, response.receipt_results!.results);
    }
  }

  private deliver(stream: SubscribeStream, batch: ReceivedMessage[], runs: ReceiptRun[] | undefined): void {
    const t = now();
    this.counters.received += batch.length;
    const places = placeInRuns(batch.length, runs, stream.runs);
    for (let i = 0; i < batch.length; i++) {
      const pb = batch[i];
      const message = new Message(pb, stream.endpoint, stream.settler, t, this.options.ackDeadline, places[i]);
      stream.unsettled.set(pb.receipt.toString('latin1'), message);
      if (this.closing) {
        message.nack();
      } else if (this.dispatch) {
        this.dispatch.push(message);
      } else if (this.readers.length > 0) {
        this.readers.shift()!.resolve({ done: false, value: message });
      } else {
        this.queue.push(message);
      }
    }
  }

  /**
   * One onReceiptFailure per result, counted per message: a span the node
   * could not read as a whole refused each of its messages (one it could read
   * fails message by message, by receipt).
   */
  private receiptFailures(stream: SubscribeStream, results: ReceiptResult[]): void {
    for (const r of results) {
      this.counters.receiptFailures += r.span && r.receipt.length === 0 ? r.span.count : 1;
      const code = r.status?.code ?? Status.UNKNOWN;
      this.options.onReceiptFailure(new FerryError(code, r.status?.message ?? '', { retryable: r.status?.retryable ?? false, endpoint: stream.endpoint }));
    }
  }

  private onStreamEnd(stream: SubscribeStream, status: grpc.StatusObject): void {
    if (!stream.alive) return;
    this.counters.droppedSettlements += stream.end();
    if (this.queue.some((m) => m.settled)) this.queue = this.queue.filter((m) => !m.settled);
    if (this.closing) return;
    const error = status.code === Status.OK
      ? new FerryError(Status.UNAVAILABLE, 'stream ended by the node', { endpoint: stream.endpoint })
      : errorFromCall(status, stream.endpoint);
    const fatal = isFatalStreamCode(error.code);
    this.options.onError(error, { endpoint: stream.endpoint, fatal });
    if (fatal) {
      this.failureError = error;
      for (const reader of this.readers.splice(0)) reader.reject(error);
      void this.close();
      return;
    }
    this.counters.reconnects++;
    const delay = this.backoffs[stream.index];
    this.backoffs[stream.index] = Math.min(delay * 2, this.options.reconnectBackoff[1]);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.connect(stream.index);
    }, delay);
    this.timers.add(timer);
  }

  private flush(stream: SubscribeStream): void {
    const sent = stream.flush();
    if (!stream.alive) {
      this.counters.droppedSettlements += sent.acks + sent.nacks;
      return;
    }
    this.counters.acksSent += sent.acks;
    this.counters.nacksSent += sent.nacks;
    this.counters.extensionsSent += sent.extensions;
  }

  private flushAll(): void {
    this.flushTimer = null;
    for (const stream of this.streams) if (stream && stream.pending.count > 0) this.flush(stream);
  }

  /** Extends the deadline of messages still being processed at ~2/3 of it, up to maxExtension. */
  private extendDue(): void {
    const t = now();
    const { ackDeadline, maxExtension } = this.options;
    for (const stream of this.streams) {
      if (!stream?.alive) continue;
      for (const message of stream.unsettled.values()) {
        if (message.expiresAt - t <= ackDeadline / 3 && t - message.deliveredAt < maxExtension) {
          message.expiresAt = t + ackDeadline;
          stream.pending.add('extend', message.receipt, ackDeadline);
        }
      }
      if (stream.pending.count > 0) this.flush(stream);
    }
  }

  private async shutdown(): Promise<void> {
    if (this.dispatch) {
      for (const message of this.dispatch.stop()) message.nack();
      await withTimeout(this.dispatch.whenIdle(), this.options.closeTimeout);
    }
    for (const message of this.queue.splice(0)) message.nack();
    for (const reader of this.readers.splice(0)) reader.resolve({ done: true, value: undefined });
    const ended: Promise<void>[] = [];
    for (const stream of this.streams) {
      if (!stream?.alive) continue;
      this.flush(stream);
      ended.push(new Promise((resolve) => stream.call.on('status', () => resolve())));
      stream.call.end();
    }
    this.closed = true;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    clearInterval(this.maintenance);
    for (const timer of this.timers) clearTimeout(timer);
    if (!(await withTimeout(Promise.all(ended), STREAM_END_GRACE))) {
      for (const stream of this.streams) if (stream?.alive) stream.call.cancel();
    }
    for (const client of this.clients) client.close();
    for (const waiter of this.doneWaiters.splice(0)) {
      if (this.failureError) waiter.reject(this.failureError);
      else waiter.resolve();
    }
  }
}

function positionOf(start: 'earliest' | 'latest' | Date): Position {
  if (start instanceof Date) return { timestamp: timestampOf(start) };
  if (start === 'earliest') return { earliest: true };
  if (start === 'latest') return { latest: true };
  throw new TypeError(`start must be 'earliest', 'latest' or a Date, not ${String(start)}`);
}

function chainKeyFor(ordering: Ordering): (m: Message) => string | null {
  if (ordering === 'key') return (m) => (m.key ? `${m.topic}\0${m.key.toString('latin1')}` : null);
  if (ordering === 'partition') return (m) => `${m.topic}\0${m.partition}`;
  return () => null;
}

/** Whether `promise` settled within `ms`. */
async function withTimeout(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
