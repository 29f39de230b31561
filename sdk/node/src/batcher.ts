// I/O-free batching, per-key ordering and retry bookkeeping of the publisher.
// The Publisher owns the network, the clock and the promises; this class only
// decides what goes into which batch and when. Times are milliseconds.
//
// Model, per topic (as the Python SDK's _publish_core.py):
// - `ready` holds sendable items in publish order: an unkeyed Entry, or a
//   KeyQueue standing for that key's waiting messages.
// - A key is busy while one of its batches is in flight or its failed
//   messages wait for their retry. A busy key is not in `ready`: messages
//   published meanwhile queue behind it. So a key is in at most one in-flight
//   batch and a retried message goes again before any later one of its key;
//   order survives retries and failover.
// - With no batch in flight a topic sends at once (nothing to wait for);
//   while one is, it collects up to `linger`, a full batch, or a due retry.
// Retries wait `backoffInitial` doubling per attempt up to `backoffMax`, and
// never start after the message's delivery deadline.
import { FerryError } from './errors';
import type { OutgoingMessage } from './wire';
import { Backoff } from './endpoints';
import { Deque } from './deque';

export interface Entry<H = unknown> {
  readonly seq: number;
  readonly topic: string;
  readonly message: OutgoingMessage;
  /** Bytes counted against batch and outstanding limits. */
  readonly size: number;
  /** The ordering key (ordering_key, else key) in latin1, or null: no order. */
  readonly orderKey: string | null;
  /** No attempt starts after this time. */
  readonly deadline: number;
  attempts: number;
  /** While > 0, the entry waits for its retry until then. */
  notBefore: number;
  lastError: FerryError | null;
  done: boolean;
  /** The driver's handle (the promise's resolvers). */
  readonly handle: H;
}

export interface Batch<H = unknown> { topic: string; entries: Entry<H>[] }
export type Outcome<R> = { ok: R } | { error: FerryError };

export interface BatchLimits {
  maxMessages: number;
  maxBytes: number;
  linger: number;
  backoff: Backoff;
}

class KeyQueue<H> {
  readonly queue = new Deque<Entry<H>>();
  busy = false;
  inReady = false;
  constructor(readonly key: string) {}
}

type ReadyItem<H> = Entry<H> | KeyQueue<H>;

class TopicState<H> {
  readonly ready = new Deque<ReadyItem<H>>();
  readonly keys = new Map<string, KeyQueue<H>>();
  /** Messages queued (not in flight, not waiting for a retry). */
  count = 0;
  bytes = 0;
  /** When the oldest queued message was queued (for linger); null: none. */
  since: number | null = null;
  /** Retries became due: send without lingering. */
  urgent = false;
  /** Batches taken and not completed. */
  inflight = 0;
  constructor(readonly name: string) {}
}

interface Delayed<H> { due: number; topic: TopicState<H>; item: ReadyItem<H> }

export class Batcher<H = unknown> {
  private readonly topics = new Map<string, TopicState<H>>();
  /** Retries waiting for their backoff, sorted by due time. */
  private readonly delayed: Delayed<H>[] = [];

  constructor(private limits: BatchLimits) {}

  /** Limits for the batches formed from now on (settings pushed by the nodes). */
  setLimits(limits: Omit<BatchLimits, 'backoff'>): void {
    this.limits = { ...this.limits, ...limits };
  }

  /** Queues a new message behind its key's earlier ones. */
  add(entry: Entry<H>, now: number): void {
    let topic = this.topics.get(entry.topic);
    if (!topic) this.topics.set(entry.topic, (topic = new TopicState<H>(entry.topic)));
    this.count(topic, entry, now);
    if (entry.orderKey === null) {
      topic.ready.push(entry);
      return;
    }
    let key = topic.keys.get(entry.orderKey);
    if (!key) topic.keys.set(entry.orderKey, (key = new KeyQueue<H>(entry.orderKey)));
    key.queue.push(entry);
    if (!key.busy && !key.inReady) {
      key.inReady = true;
      topic.ready.push(key);
    }
  }

  /** Makes retries whose backoff has passed sendable again. */
  releaseDue(now: number): void {
    while (this.delayed.length > 0 && this.delayed[0].due <= now) {
      const { topic, item } = this.delayed.shift()!;
      let entries: Entry<H>[];
      if (item instanceof KeyQueue) {
        item.busy = false;
        entries = [...item.queue];
        if (entries.length > 0) {
          item.inReady = true;
          topic.ready.unshift(item);
        } else {
          topic.keys.delete(item.key);
        }
      } else {
        entries = [item];
        topic.ready.unshift(item);
      }
      // Entries queued behind a key were counted already; count the retried ones.
      for (const entry of entries) {
        if (entry.notBefore > 0) {
          entry.notBefore = 0;
          this.count(topic, entry, now);
        }
      }
      topic.urgent = true;
    }
  }

  /** When something becomes sendable without new input; null: never. */
  nextWakeup(now: number): number | null {
    let when = this.delayed.length > 0 ? this.delayed[0].due : null;
    for (const topic of this.topics.values()) {
      if (topic.ready.length === 0 || topic.since === null) continue;
      const t = topic.urgent || topic.inflight === 0 ? now : topic.since + this.limits.linger;
      when = when === null ? t : Math.min(when, t);
    }
    return when;
  }

  /** Topics with a batch to send now; `force` ignores linger (flush). */
  sendable(now: number, force: boolean): string[] {
    const names: string[] = [];
    for (const topic of this.topics.values()) {
      if (topic.ready.length === 0) continue;
      if (force || topic.urgent || topic.inflight === 0 || this.full(topic) ||
          (topic.since !== null && now - topic.since >= this.limits.linger)) {
        names.push(topic.name);
      }
    }
    return names;
  }

  /**
   * Forms the next batch of a topic. Entries met on the way whose deadline
   * passed are returned in `expired` (to be failed), not sent.
   */
  takeBatch(name: string, now: number): { batch: Batch<H> | null; expired: Entry<H>[] } {
    const topic = this.topics.get(name)!;
    const entries: Entry<H>[] = [];
    const expired: Entry<H>[] = [];
    let size = 0;
    const fits = (entry: Entry<H>) =>
      entries.length < this.limits.maxMessages && (entries.length === 0 || size + entry.size <= this.limits.maxBytes);
    const take = (entry: Entry<H>): boolean => {
      this.uncount(topic, entry);
      if (now > entry.deadline) {
        expired.push(entry);
        return false;
      }
      entries.push(entry);
      size += entry.size;
      return true;
    };
    while (topic.ready.length > 0 && entries.length < this.limits.maxMessages) {
      const item = topic.ready.first()!;
      if (!(item instanceof KeyQueue)) {
        if (!fits(item)) break;
        topic.ready.shift();
        take(item);
        continue;
      }
      let took = false;
      while (item.queue.length > 0 && fits(item.queue.first()!)) {
        if (take(item.queue.shift()!)) took = true;
      }
      if (took) {
        item.busy = true;
        item.inReady = false;
        topic.ready.shift();
      } else if (item.queue.length === 0) {
        item.inReady = false;
        topic.ready.shift();
        if (!item.busy) topic.keys.delete(item.key);
      } else {
        break; // the batch is full
      }
    }
    if (topic.count === 0) {
      topic.since = null;
      topic.urgent = false;
    } else if (topic.ready.length === 0) {
      topic.urgent = false;
    } else if (topic.since !== null && !topic.urgent) {
      topic.since = now;
    }
    if (entries.length === 0) return { batch: null, expired };
    topic.inflight++;
    return { batch: { topic: name, entries }, expired };
  }

  /**
   * Applies a batch's outcomes (one per entry, in order). Retryable failures
   * whose next attempt can start before their deadline are kept for a retry;
   * the rest are returned to be resolved. Call it once per taken batch.
   */
  complete<R>(batch: Batch<H>, outcomes: Outcome<R>[], now: number):
      { succeeded: [Entry<H>, R][]; failed: [Entry<H>, FerryError][] } {
    const succeeded: [Entry<H>, R][] = [];
    const failed: [Entry<H>, FerryError][] = [];
    const topic = this.topics.get(batch.topic);
    if (!topic) return { succeeded, failed }; // drained by close
    topic.inflight = Math.max(0, topic.inflight - 1);
    const retriesByKey = new Map<string, Entry<H>[]>();
    const keysInBatch = new Set<string>();
    batch.entries.forEach((entry, i) => {
      if (entry.orderKey !== null) keysInBatch.add(entry.orderKey);
      if (entry.done) return;
      const outcome = outcomes[i];
      if ('ok' in outcome) {
        succeeded.push([entry, outcome.ok]);
        return;
      }
      entry.lastError = outcome.error;
      entry.attempts++;
      const due = now + this.limits.backoff.delay(entry.attempts);
      if (!outcome.error.retryable || due > entry.deadline) {
        failed.push([entry, outcome.error]);
        return;
      }
      entry.notBefore = due;
      if (entry.orderKey === null) {
        this.delay({ due, topic, item: entry });
      } else {
        const list = retriesByKey.get(entry.orderKey) ?? [];
        list.push(entry);
        retriesByKey.set(entry.orderKey, list);
      }
    });
    for (const okey of keysInBatch) {
      const key = topic.keys.get(okey)!;
      const retries = retriesByKey.get(okey);
      if (retries) {
        key.queue.unshift(...retries);
        this.delay({ due: Math.max(...retries.map((e) => e.notBefore)), topic, item: key });
        continue;
      }
      key.busy = false;
      if (key.queue.length > 0) {
        if (!key.inReady) {
          key.inReady = true;
          topic.ready.unshift(key);
          topic.urgent ||= this.full(topic);
        }
      } else {
        topic.keys.delete(okey);
      }
    }
    return { succeeded, failed };
  }

  /** Removes and returns every queued or backing-off entry (on close). */
  drain(): Entry<H>[] {
    const out: Entry<H>[] = [];
    for (const topic of this.topics.values()) {
      for (const item of topic.ready) if (!(item instanceof KeyQueue)) out.push(item);
      for (const key of topic.keys.values()) out.push(...key.queue);
    }
    for (const { item } of this.delayed) if (!(item instanceof KeyQueue)) out.push(item);
    this.topics.clear();
    this.delayed.length = 0;
    return out;
  }

  private full(topic: TopicState<H>): boolean {
    return topic.count >= this.limits.maxMessages || topic.bytes >= this.limits.maxBytes;
  }

  private delay(item: Delayed<H>): void {
    let i = this.delayed.length;
    while (i > 0 && this.delayed[i - 1].due > item.due) i--;
    this.delayed.splice(i, 0, item);
  }

  private count(topic: TopicState<H>, entry: Entry<H>, now: number): void {
    topic.count++;
    topic.bytes += entry.size;
    if (topic.since === null) topic.since = now;
  }

  private uncount(topic: TopicState<H>, entry: Entry<H>): void {
    topic.count--;
    topic.bytes -= entry.size;
  }
}
