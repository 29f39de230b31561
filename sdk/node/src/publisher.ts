// Publisher: batches messages per topic, sends each batch to one node with
// the unary Publish call, retries what the node says is retryable (on another
// node when the node failed) and resolves each message's promise with where
// the broker stored it. Single-threaded like everything in Node: no locks, and
// completions never run inside a caller's publish().
import { performance } from 'perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { Batch, Batcher, Entry, Outcome } from './batcher';
import { Bytes, PublishOptions, buildMessage, checkEndpoints, dateOf, stripUndefined } from './convert';
import { Deque } from './deque';
import { Backoff, EndpointSelector } from './endpoints';
import { FerryError, Status, errorFromCall } from './errors';
import { isNodeFailure, isRetryable } from './retry';
import { SETTING_NAMES, Settings, SettingsFetcher, effectiveSettings } from './client-settings';
import { CompactPublishResults, OutgoingMessage, PublishResponse, PublisherClient, channelOptions, services } from './wire';

export interface PublisherOptions {
  /** Messages per batch (default 500). */
  maxBatchMessages?: number;
  /** Bytes per batch (default 1 MiB). */
  maxBatchBytes?: number;
  /** How long a topic with a batch in flight collects the next one, ms (default 5). */
  linger?: number;
  /** Bytes of unresolved messages; publish() waits for room beyond it (default 64 MiB). */
  maxOutstandingBytes?: number;
  /** Batches in flight over all topics (default 32). */
  maxInflightBatches?: number;
  /** Deadline of one Publish call, ms (default 30 s). */
  requestTimeout?: number;
  /** No attempt of a message starts later than this after publish(), ms (default 120 s). */
  deliveryTimeout?: number;
  /** Retry backoff [initial, max], ms, doubling per attempt (default [50, 2000]). */
  retryBackoff?: [number, number];
  /** How long close() waits for outstanding messages, ms (default 30 s). */
  closeTimeout?: number;
  /**
   * Follow the settings the operator pushes from the nodes (default true):
   * a pushed linger, batch limit, request or delivery timeout replaces the
   * default of an option not set here, from the next batch (or message) on.
   * Fetched at start, every refresh interval the node names and as soon as a
   * node answers again; a node answering UNIMPLEMENTED (older ferryd) leaves
   * the SDK's own settings.
   */
  pushedSettings?: boolean;
  /** TLS and a token: credentials({ caFile, certFile, keyFile, token }) (default: plain text). */
  credentials?: grpc.ChannelCredentials;
  channelOptions?: grpc.ChannelOptions;
}

/** Where the broker stored a message. */
export interface PublishResult {
  cluster: string;
  partition: number;
  offset: number;
  /** The message id as stored in header `ferry.id`. */
  id: string;
  timestamp: Date | null;
}

interface Handle {
  resolve(result: PublishResult): void;
  reject(error: FerryError): void;
  /** The endpoint of the last failed attempt, avoided by the retry; -1: none. */
  failedOn: number;
  /** Handed to the batcher (counted in admittedBytes), not blocked. */
  admitted: boolean;
}

const now = () => performance.now();

export class Publisher {
  private readonly targets: string[];
  private readonly clients: PublisherClient[];
  private readonly options: Required<Omit<PublisherOptions, 'credentials' | 'channelOptions'>>;
  /** The pushable settings the application left to the nodes or the defaults. */
  private readonly defaults: Settings;
  private readonly explicit: Partial<Settings>;
  private readonly fetcher: SettingsFetcher | null = null;
  private readonly batcher: Batcher<Handle>;
  private readonly selector: EndpointSelector;
  private seq = 0;
  /** Every unresolved message by seq (Map order is publish order). */
  private readonly outstanding = new Map<number, Entry<Handle>>();
  /** Bytes of the messages handed to the batcher and not resolved. */
  private admittedBytes = 0;
  /** Messages waiting for room under maxOutstandingBytes, in publish order. */
  private blocked = new Deque<Entry<Handle>>();
  private readonly inflight = new Set<grpc.ClientUnaryCall>();
  private readonly flushers: { upto: number; resolve(): void }[] = [];
  private pumpQueued = false;
  private timer: NodeJS.Timeout | null = null;
  private closing: Promise<void> | null = null;
  private closed = false;

  constructor(endpoints: string | string[], options: PublisherOptions = {}) {
    this.targets = checkEndpoints(endpoints);
    const given = stripUndefined(options);
    this.options = {
      maxBatchMessages: 500, maxBatchBytes: 1 << 20, linger: 5, maxOutstandingBytes: 64 << 20,
      maxInflightBatches: 32, requestTimeout: 30_000, deliveryTimeout: 120_000,
      retryBackoff: [50, 2000], closeTimeout: 30_000, pushedSettings: true, ...given,
    };
    const o = this.options;
    const [initial, max] = o.retryBackoff;
    if (o.maxBatchMessages < 1 || o.maxBatchBytes < 1 || o.maxOutstandingBytes < 1 || o.maxInflightBatches < 1 ||
        o.linger < 0 || o.requestTimeout <= 0 || o.deliveryTimeout <= 0 || !(initial > 0 && initial <= max)) {
      throw new RangeError('Publisher: batch, outstanding and in-flight limits must be >= 1, linger >= 0, ' +
        'timeouts > 0 and 0 < retryBackoff[0] <= retryBackoff[1]');
    }
    const backoff = new Backoff(initial, max);
    this.batcher = new Batcher<Handle>({ maxMessages: o.maxBatchMessages, maxBytes: o.maxBatchBytes, linger: o.linger, backoff });
    this.selector = new EndpointSelector(this.targets.length, backoff);
    const Client = services().Publisher;
    const credentials = options.credentials ?? grpc.credentials.createInsecure();
    this.clients = this.targets.map((t) => new Client(t, credentials, channelOptions(options.channelOptions)));
    this.defaults = this.settings();
    this.explicit = Object.fromEntries(SETTING_NAMES.filter((n) => n in given).map((n) => [n, this.options[n]]));
    if (o.pushedSettings) {
      this.fetcher = new SettingsFetcher(this.targets, credentials, options.channelOptions, (pushed) => this.apply(pushed));
    }
  }

  /** The pushable settings in effect: the application's, else the pushed ones, else the defaults. */
  settings(): Settings {
    const o = this.options;
    return { linger: o.linger, maxBatchMessages: o.maxBatchMessages, maxBatchBytes: o.maxBatchBytes,
      requestTimeout: o.requestTimeout, deliveryTimeout: o.deliveryTimeout };
  }

  private apply(pushed: Partial<Settings>): void {
    const s = effectiveSettings(this.defaults, this.explicit, pushed);
    Object.assign(this.options, s);
    this.batcher.setLimits({ maxMessages: s.maxBatchMessages, maxBytes: s.maxBatchBytes, linger: s.linger });
    this.schedule();
  }

  /**
   * Publishes one message; resolves once the broker acknowledged it, rejects
   * with a FerryError when it failed for good (not retryable, or still failing
   * at deliveryTimeout). Messages published together are batched; messages
   * with the same key (or orderingKey) are stored in publish order.
   */
  publish(topic: string, value: Bytes, options: PublishOptions = {}): Promise<PublishResult> {
    if (typeof topic !== 'string') return Promise.reject(new TypeError('topic must be a string'));
    if (this.closing) return Promise.reject(new FerryError(Status.UNAVAILABLE, 'publisher closed', { retryable: false }));
    let built: ReturnType<typeof buildMessage>;
    try {
      built = buildMessage(value, options);
    } catch (e) {
      return Promise.reject(e);
    }
    if (built.size > this.options.maxOutstandingBytes) {
      return Promise.reject(new FerryError(Status.INVALID_ARGUMENT,
        `message of ${built.size} bytes exceeds maxOutstandingBytes ${this.options.maxOutstandingBytes}`));
    }
    return new Promise<PublishResult>((resolve, reject) => {
      const entry: Entry<Handle> = {
        seq: ++this.seq, topic, message: built.message, size: built.size, orderKey: built.orderKey,
        deadline: now() + this.options.deliveryTimeout, attempts: 0, notBefore: 0, lastError: null, done: false,
        handle: { resolve, reject, failedOn: -1, admitted: false },
      };
      this.outstanding.set(entry.seq, entry);
      this.blocked.push(entry);
      this.admit();
    });
  }

  /**
   * Sends queued messages without waiting for linger and resolves when every
   * message published before the call has its result; `timeout` (ms): false
   * when some still had none by then.
   */
  flush(timeout?: number): Promise<boolean> {
    const upto = this.seq;
    if (!this.pendingUpTo(upto)) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const flusher = { upto, resolve: () => { clearTimeout(timer); resolve(true); } };
      this.flushers.push(flusher);
      if (timeout !== undefined) {
        timer = setTimeout(() => {
          this.flushers.splice(this.flushers.indexOf(flusher), 1);
          resolve(false);
        }, timeout);
      }
      this.schedule();
    });
  }

  /**
   * Flushes (up to closeTimeout), then fails what is left with UNAVAILABLE
   * "publisher closed" and closes the channels. publish() after close()
   * rejects. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.flush(this.options.closeTimeout).then(() => this.shutdown());
    return this.closing;
  }

  private shutdown(): void {
    this.closed = true;
    this.fetcher?.stop();
    if (this.timer) clearTimeout(this.timer);
    this.blocked = new Deque();
    for (const entry of [...this.outstanding.values()]) {
      const last = entry.lastError ? `; last error: ${entry.lastError.message}` : '';
      this.resolve(entry, { error: new FerryError(Status.UNAVAILABLE, `publisher closed${last}`, { retryable: false }) });
    }
    this.batcher.drain();
    for (const call of this.inflight) call.cancel();
    for (const client of this.clients) client.close();
  }

  /** Hands blocked messages to the batcher while they fit under maxOutstandingBytes. */
  private admit(): void {
    const t = now();
    while (this.blocked.length > 0) {
      const entry = this.blocked.first()!;
      if (this.admittedBytes > 0 && this.admittedBytes + entry.size > this.options.maxOutstandingBytes) break;
      this.blocked.shift();
      entry.handle.admitted = true;
      this.admittedBytes += entry.size;
      this.batcher.add(entry, t);
    }
    this.schedule();
  }

  /** Runs pump() on the next turn, so messages published together share batches. */
  private schedule(): void {
    if (this.pumpQueued || this.closed) return;
    this.pumpQueued = true;
    setImmediate(() => {
      this.pumpQueued = false;
      this.pump();
    });
  }

  private pump(): void {
    if (this.closed) return;
    const t = now();
    this.batcher.releaseDue(t);
    const force = this.flushers.length > 0;
    for (let names = this.batcher.sendable(t, force); names.length > 0 && this.room(); names = this.batcher.sendable(t, force)) {
      for (const name of names) {
        if (!this.room()) break;
        const { batch, expired } = this.batcher.takeBatch(name, t);
        for (const entry of expired) this.resolve(entry, { error: expiredError(entry) });
        if (batch) this.send(batch, t);
      }
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const wake = this.room() ? this.batcher.nextWakeup(t) : null;
    if (wake !== null) this.timer = setTimeout(() => this.schedule(), Math.max(0, wake - now()));
  }

  private room(): boolean {
    return this.inflight.size < this.options.maxInflightBatches;
  }

  private send(batch: Batch<Handle>, t: number): void {
    const index = this.selector.pick(t, batch.entries[0].handle.failedOn);
    const endpoint = this.targets[index];
    // compact_results: a fully written batch comes back as packed arrays
    // instead of a result per message; nodes that predate it answer per message.
    const messages = batch.entries.map((e) => e.message);
    const request = { topic: batch.topic, messages, compact_results: true };
    const call = this.clients[index].Publish(request, { deadline: Date.now() + this.options.requestTimeout },
      (error, response) => {
        this.inflight.delete(call);
        if (this.closed) return; // shutdown() already failed every message
        const done = now();
        let outcomes: Outcome<PublishResult>[];
        if (error) {
          if (isNodeFailure(error.code)) this.selector.reportFailure(index, done);
          for (const entry of batch.entries) entry.handle.failedOn = index;
          const failure = errorFromCall(error, endpoint);
          outcomes = batch.entries.map(() => ({ error: failure }));
        } else {
          if (this.selector.reportSuccess(index)) this.fetcher?.reconnected();
          outcomes = resultOutcomes(response!, messages, endpoint);
        }
        const { succeeded, failed } = this.batcher.complete(batch, outcomes, done);
        for (const [entry, result] of succeeded) this.resolve(entry, { ok: result });
        for (const [entry, failure] of failed) this.resolve(entry, { error: failure });
        this.admit();
      });
    this.inflight.add(call);
  }

  private resolve(entry: Entry<Handle>, outcome: Outcome<PublishResult>): void {
    if (entry.done) return;
    entry.done = true;
    this.outstanding.delete(entry.seq);
    // Blocked entries are resolved only by shutdown(), which drops them all.
    if (entry.handle.admitted) this.admittedBytes -= entry.size;
    if ('ok' in outcome) entry.handle.resolve(outcome.ok);
    else entry.handle.reject(outcome.error);
    for (let i = this.flushers.length - 1; i >= 0; i--) {
      if (!this.pendingUpTo(this.flushers[i].upto)) this.flushers.splice(i, 1)[0].resolve();
    }
  }

  /** Whether a message with seq <= upto has no result yet. */
  private pendingUpTo(upto: number): boolean {
    const first = this.outstanding.keys().next();
    return !first.done && first.value <= upto;
  }
}

function resultOutcomes(response: PublishResponse, messages: OutgoingMessage[], endpoint: string): Outcome<PublishResult>[] {
  if (response.compact) return compactOutcomes(response.compact, messages, endpoint);
  const count = messages.length;
  const results = response.results ?? [];
  if (results.length !== count) {
    const error = new FerryError(Status.INTERNAL, `node answered ${results.length} results for ${count} messages`,
      { retryable: false, endpoint });
    return new Array(count).fill({ error });
  }
  return results.map((r) => {
    const code = r.status?.code ?? Status.OK;
    if (code === Status.OK) {
      return { ok: { cluster: r.cluster, partition: r.partition, offset: Number(r.offset), id: r.id, timestamp: dateOf(r.timestamp) } };
    }
    return { error: new FerryError(code, r.status!.message, { retryable: isRetryable(code, r.status!.retryable), endpoint }) };
  });
}

/** Outcomes of a PublishResponse.compact: every message was written (the ids are the ones sent). */
function compactOutcomes(compact: CompactPublishResults, messages: OutgoingMessage[], endpoint: string):
    Outcome<PublishResult>[] {
  const { cluster, partitions, offsets } = compact;
  const timestamps = compact.timestamps_ms ?? [];
  const count = messages.length;
  if (partitions.length !== count || offsets.length !== count || (timestamps.length !== 0 && timestamps.length !== count)) {
    const error = new FerryError(Status.INTERNAL, `node answered compact results of ${partitions.length} partitions, ` +
      `${offsets.length} offsets and ${timestamps.length} timestamps for ${count} messages`, { retryable: false, endpoint });
    return new Array(count).fill({ error });
  }
  return messages.map((m, i) => ({ ok: { cluster, partition: partitions[i], offset: Number(offsets[i]), id: m.id,
    timestamp: timestamps.length > 0 ? new Date(Number(timestamps[i])) : null } }));
}

function expiredError(entry: Entry<Handle>): FerryError {
  return entry.lastError ?? new FerryError(Status.DEADLINE_EXCEEDED,
    'message not sent within deliveryTimeout (queued behind earlier messages of its key or a full publisher)');
}
