import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Batcher, Entry, Outcome } from '../../src/batcher';
import { Backoff } from '../../src/endpoints';
import { FerryError, Status } from '../../src/errors';

const limits = { maxMessages: 4, maxBytes: 1000, linger: 10, backoff: new Backoff(5, 40) };
let seq = 0;

function entry(key: string | null, options: { size?: number; deadline?: number; topic?: string } = {}): Entry<null> {
  return {
    seq: ++seq, topic: options.topic ?? 't', size: options.size ?? 10, orderKey: key,
    message: { key: Buffer.from(key ?? ''), value: Buffer.from(`v${seq}`), headers: [], ordering_key: Buffer.alloc(0), id: `${seq}` },
    deadline: options.deadline ?? 1e9, attempts: 0, notBefore: 0, lastError: null, done: false, handle: null,
  };
}

const retryable = (): Outcome<string> => ({ error: new FerryError(Status.UNAVAILABLE, 'try again', { retryable: true }) });
const fatal = (): Outcome<string> => ({ error: new FerryError(Status.INVALID_ARGUMENT, 'bad', { retryable: false }) });

test('given an idle topic, when a message is added, then it is sendable at once', () => {
  const b = new Batcher<null>(limits);
  b.add(entry(null), 0);
  assert.deepEqual(b.sendable(0, false), ['t']);
});

test('given a batch in flight, when more messages come, then the topic lingers until linger or a full batch', () => {
  const b = new Batcher<null>(limits);
  b.add(entry(null), 0);
  assert.equal(b.takeBatch('t', 0).batch!.entries.length, 1);
  b.add(entry(null), 1);
  assert.deepEqual(b.sendable(5, false), []);
  assert.equal(b.nextWakeup(5), 11);
  assert.deepEqual(b.sendable(11, false), ['t']);
  assert.deepEqual(b.sendable(5, true), ['t'], 'flush forces it');
  for (let i = 0; i < 3; i++) b.add(entry(null), 2);
  assert.deepEqual(b.sendable(2, false), ['t'], 'a full batch goes at once');
});

test('batches are cut by count and by bytes', () => {
  const b = new Batcher<null>(limits);
  for (let i = 0; i < 6; i++) b.add(entry(null), 0);
  assert.equal(b.takeBatch('t', 0).batch!.entries.length, 4);
  const big = new Batcher<null>(limits);
  for (let i = 0; i < 3; i++) big.add(entry(null, { size: 400 }), 0);
  assert.equal(big.takeBatch('t', 0).batch!.entries.length, 2);
});

test('a key in flight holds its later messages back; other keys go meanwhile', () => {
  const b = new Batcher<null>(limits);
  const first = entry('a');
  b.add(first, 0);
  const batch = b.takeBatch('t', 0).batch!;
  b.add(entry('a'), 1);
  b.add(entry('b'), 1);
  const second = b.takeBatch('t', 100).batch!;
  assert.deepEqual(second.entries.map((e) => e.orderKey), ['b']);
  b.complete(batch, [{ ok: 'x' }], 100);
  assert.deepEqual(b.takeBatch('t', 200).batch!.entries.map((e) => e.orderKey), ['a']);
});

test('a retryable failure is retried after its backoff, ahead of its key; a fatal one is returned', () => {
  const b = new Batcher<null>(limits);
  const [x, y, z] = [entry('a'), entry('a'), entry(null)];
  [x, y, z].forEach((e) => b.add(e, 0));
  const batch = b.takeBatch('t', 0).batch!;
  const later = entry('a');
  b.add(later, 1);
  const { succeeded, failed } = b.complete(batch, [retryable(), { ok: 'y' }, fatal()], 10);
  assert.deepEqual(succeeded.map(([e]) => e), [y]);
  assert.deepEqual(failed.map(([e]) => e), [z]);
  assert.equal(b.takeBatch('t', 12).batch, null, 'the key waits for the backoff');
  assert.equal(b.nextWakeup(12), 15);
  b.releaseDue(15);
  assert.deepEqual(b.takeBatch('t', 15).batch!.entries, [x, later]);
});

test('a message whose delivery deadline passed is failed, not sent or retried', () => {
  const b = new Batcher<null>(limits);
  const soon = entry(null, { deadline: 5 });
  b.add(soon, 0);
  const batch = b.takeBatch('t', 0).batch!;
  assert.equal(b.complete(batch, [retryable()], 3).failed.length, 1, 'the retry could not start in time');
  const queued = entry(null, { deadline: 5 });
  b.add(queued, 0);
  assert.deepEqual(b.takeBatch('t', 6).expired, [queued]);
});

test('drain returns queued, backing-off and key-waiting messages', () => {
  const b = new Batcher<null>(limits);
  const [x, y] = [entry('a'), entry(null)];
  b.add(x, 0);
  b.add(y, 0);
  const batch = b.takeBatch('t', 0).batch!;
  const z = entry('a');
  b.add(z, 0);
  b.complete(batch, [retryable(), retryable()], 1);
  assert.deepEqual(new Set(b.drain()), new Set([x, y, z]));
});

// A model check: random outcomes, random completion order, several keys. As
// Kafka does (publisher.proto), once a key's message fails in a batch, its
// later ones in that batch fail too: without that, no client can keep order.
test('under random failures a key is never in two in-flight batches and is written in publish order', () => {
  for (let seed = 1; seed <= 200; seed++) {
    let state = seed;
    const random = () => ((state = (state * 1103515245 + 12345) % 2147483648) / 2147483648);
    const b = new Batcher<null>({ ...limits, backoff: new Backoff(1, 4) });
    const all: Entry<null>[] = [];
    const publish = (t: number) => {
      const e = entry(random() < 0.2 ? null : `k${Math.floor(random() * 3)}`);
      all.push(e);
      b.add(e, t);
    };
    const inflight: { entries: Entry<null>[]; topic: string }[] = [];
    const written = new Map<string, number[]>();
    let done = 0;
    for (let t = 0; all.length < 40 || done < all.length; t++) {
      assert.ok(t < 10000, `seed ${seed}: no progress`);
      while (all.length < 40 && random() < 0.5) publish(t);
      b.releaseDue(t);
      for (const name of b.sendable(t, random() < 0.5)) {
        const { batch } = b.takeBatch(name, t);
        if (!batch) continue;
        const busy = new Set(inflight.flatMap((x) => x.entries.map((e) => e.orderKey)));
        for (const e of batch.entries) {
          assert.ok(e.orderKey === null || !busy.has(e.orderKey), `seed ${seed}: key ${e.orderKey} in two batches`);
        }
        inflight.push(batch);
      }
      if (inflight.length > 0 && random() < 0.6) {
        const batch = inflight.splice(Math.floor(random() * inflight.length), 1)[0];
        const failedKeys = new Set<string | null>();
        const outcomes = batch.entries.map((e) => {
          if (failedKeys.has(e.orderKey) || random() < 0.3) {
            if (e.orderKey !== null) failedKeys.add(e.orderKey);
            return retryable();
          }
          return { ok: 'ok' };
        });
        const { succeeded, failed } = b.complete(batch, outcomes, t);
        assert.equal(failed.length, 0);
        for (const [e] of succeeded) {
          e.done = true;
          done++;
          if (e.orderKey !== null) written.set(e.orderKey, [...(written.get(e.orderKey) ?? []), e.seq]);
        }
      }
    }
    for (const [key, seqs] of written) {
      assert.deepEqual(seqs, [...seqs].sort((p, q) => p - q), `seed ${seed}: key ${key} out of order`);
    }
  }
});
