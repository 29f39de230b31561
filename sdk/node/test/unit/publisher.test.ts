import { afterEach, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { FerryError, Publisher, Status } from '../../src';
import { FakeNode, ok, sleep, timestampMsAt, until } from '../fake-node';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function node(): Promise<FakeNode> {
  const n = await new FakeNode().start();
  cleanups.push(() => n.stop());
  return n;
}

function publisher(endpoints: string[], options: ConstructorParameters<typeof Publisher>[1] = {}): Publisher {
  const p = new Publisher(endpoints, { retryBackoff: [10, 50], ...options });
  cleanups.push(() => p.close());
  return p;
}

const status = (code: Status, retryable: boolean) => ({ code, message: Status[code], retryable });
const failed = (code: Status, retryable: boolean, id = '') =>
  ({ status: status(code, retryable), cluster: '', partition: 0, offset: 0, id, timestamp: null });

test('messages published together go in one batch and resolve with where they were stored', async () => {
  const n = await node();
  const p = publisher([n.endpoint]);
  const results = await Promise.all([0, 1, 2].map((i) => p.publish('orders', `v${i}`, { key: 'k', headers: { h: 'x' } })));
  assert.equal(n.publishes.length, 1);
  assert.deepEqual(results.map((r) => [r.cluster, r.partition, r.offset]), [['main', 0, 0], ['main', 0, 1], ['main', 0, 2]]);
  const sent = n.publishes[0].messages[0];
  assert.deepEqual([sent.key.toString(), sent.value.toString(), sent.headers[0].key, sent.headers[0].value.toString()], ['k', 'v0', 'h', 'x']);
});

test('every message gets a unique generated id unless it has one', async () => {
  const n = await node();
  const p = publisher([n.endpoint]);
  const [a, b, c] = await Promise.all([p.publish('t', 'a'), p.publish('t', 'b'), p.publish('t', 'c', { id: 'mine' })]);
  assert.match(a.id, /^[0-9a-f-]{36}$/);
  assert.notEqual(a.id, b.id);
  assert.equal(c.id, 'mine');
  assert.deepEqual(n.publishes[0].messages.map((m) => m.id), [a.id, b.id, 'mine']);
});

test('while a batch is in flight the next one collects messages until linger', async () => {
  const n = await node();
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  n.onPublish = async (r) => {
    if (n.publishes.length === 1) await held;
    return ok(r, n);
  };
  const p = publisher([n.endpoint], { linger: 50 });
  const first = p.publish('t', 'first');
  await until(() => n.publishes.length === 1);
  const rest = [];
  for (let i = 0; i < 5; i++) {
    rest.push(p.publish('t', `m${i}`));
    await sleep(2);
  }
  await sleep(80);
  release();
  await Promise.all([first, ...rest]);
  assert.deepEqual(n.publishes.map((r) => r.messages.length), [1, 5]);
});

test('a retryable failure is retried; a non-retryable one rejects with a typed error at once', async () => {
  const n = await node();
  let calls = 0;
  n.onPublish = (r) => {
    calls++;
    const answer = ok(r, n);
    if (calls === 1) {
      answer.results[0] = failed(Status.UNAVAILABLE, true);
      answer.results[1] = failed(Status.INVALID_ARGUMENT, false);
    }
    return answer;
  };
  const p = publisher([n.endpoint]);
  const [retried, rejected] = await Promise.allSettled([p.publish('t', 'a'), p.publish('t', 'b')]);
  assert.equal(retried.status, 'fulfilled');
  assert.equal(rejected.status, 'rejected');
  const error = (rejected as PromiseRejectedResult).reason;
  assert.ok(error instanceof FerryError);
  assert.deepEqual([error.code, error.retryable], [Status.INVALID_ARGUMENT, false]);
  assert.deepEqual(n.publishes.map((r) => r.messages.map((m) => m.value.toString())), [['a', 'b'], ['a']]);
});

test('the node decides retryability: a retryable=false UNAVAILABLE is not retried', async () => {
  const n = await node();
  n.onPublish = (r) => ({ results: r.messages.map(() => failed(Status.UNAVAILABLE, false)) });
  const p = publisher([n.endpoint]);
  await assert.rejects(p.publish('t', 'a'), (e: FerryError) => e.code === Status.UNAVAILABLE && !e.retryable);
  assert.equal(n.publishes.length, 1);
});

test('an unreachable node fails over to the other one', async () => {
  const good = await node();
  const dead = await node();
  dead.stop();
  const p = publisher([dead.endpoint, good.endpoint], { requestTimeout: 2000 });
  const results = await Promise.all([0, 1, 2, 3].map((i) => p.publish('t', `v${i}`)));
  assert.equal(results.length, 4);
  assert.ok(good.publishes.length >= 1);
});

test('a call-level UNAVAILABLE is retried on the other node', async () => {
  const a = await node();
  const b = await node();
  a.onPublish = () => ({ code: Status.UNAVAILABLE, details: 'shutting down' });
  const p = publisher([a.endpoint, b.endpoint]);
  await p.publish('t', 'x');
  assert.deepEqual([a.publishes.length, b.publishes.length], [1, 1]);
});

test("a key's later messages wait for its retry, so its order survives failures", async () => {
  const n = await node();
  const written: string[] = [];
  let failOnce = true;
  n.onPublish = (r) => {
    const answer = ok(r, n);
    r.messages.forEach((m, i) => {
      if (failOnce && m.value.toString() === 'k1') {
        failOnce = false;
        // As Kafka: the key's later messages in the batch fail with it.
        for (let j = i; j < r.messages.length; j++) answer.results[j] = failed(Status.UNAVAILABLE, true);
      }
    });
    r.messages.forEach((m, i) => answer.results[i].status!.code === 0 && written.push(m.value.toString()));
    return answer;
  };
  const p = publisher([n.endpoint], { maxBatchMessages: 2 });
  await Promise.all([0, 1, 2, 3, 4, 5].map((i) => p.publish('t', `k${i}`, { key: 'same' })));
  assert.deepEqual(written, ['k0', 'k1', 'k2', 'k3', 'k4', 'k5']);
  assert.ok(n.publishes.length >= 4, 'the batch with k2 was held back until k1 was written');
});

test('outstanding bytes are bounded: publish waits for room, in publish order', async () => {
  const n = await node();
  let release!: () => void;
  let held = new Promise<void>((r) => (release = r));
  n.onPublish = async (r) => {
    await held;
    return ok(r, n);
  };
  const p = publisher([n.endpoint], { maxOutstandingBytes: 320, closeTimeout: 100 });
  const all = [0, 1, 2, 3].map((i) => p.publish('t', Buffer.alloc(100, i)));
  await until(() => n.publishes.length === 1);
  await sleep(30);
  assert.equal(n.publishes.length, 1);
  assert.equal(n.publishes[0].messages.length, 2, 'two messages of 152 bytes fit in 320');
  const nextRelease = release;
  held = Promise.resolve();
  nextRelease();
  await Promise.all(all);
  assert.deepEqual(n.publishes.flatMap((r) => r.messages.map((m) => m.value[0])), [0, 1, 2, 3]);
  await assert.rejects(p.publish('t', Buffer.alloc(400)), (e: FerryError) => e.code === Status.INVALID_ARGUMENT);
});

test('a message still failing at deliveryTimeout rejects with its last error', async () => {
  const n = await node();
  n.onPublish = (r) => ({ results: r.messages.map(() => failed(Status.RESOURCE_EXHAUSTED, true)) });
  const p = publisher([n.endpoint], { deliveryTimeout: 150 });
  await assert.rejects(p.publish('t', 'x'), (e: FerryError) => e.code === Status.RESOURCE_EXHAUSTED && e.retryable);
  assert.ok(n.publishes.length >= 3, `retried ${n.publishes.length - 1} times`);
});

test('flush sends at once and waits; close fails what is left and rejects later publishes', async () => {
  const n = await node();
  const p = publisher([n.endpoint], { linger: 10_000, closeTimeout: 100 });
  await p.publish('t', 'first');
  const second = p.publish('t', 'second');
  assert.equal(await p.flush(), true);
  await second;
  n.onPublish = () => new Promise(() => {}); // never answers
  const stuck = p.publish('t', 'stuck');
  await p.close();
  await assert.rejects(stuck, (e: FerryError) => e.code === Status.UNAVAILABLE && /publisher closed/.test(e.message));
  await assert.rejects(p.publish('t', 'late'), (e: FerryError) => e.code === Status.UNAVAILABLE);
});

test('bad input rejects with a clear error', async () => {
  const p = publisher(['127.0.0.1:1']);
  await assert.rejects(p.publish(7 as unknown as string, 'x'), TypeError);
  await assert.rejects(p.publish('t', 5 as unknown as string), TypeError);
  assert.throws(() => new Publisher([]), TypeError);
  assert.throws(() => new Publisher(['a:1'], { maxBatchMessages: 0 }), RangeError);
});

test('results are the same whether the node answers in the compact form or per message', async () => {
  for (const oldNode of [false, true]) {
    const n = await node();
    n.oldNode = oldNode;
    const p = publisher([n.endpoint]);
    const results = await Promise.all([0, 1, 2].map((i) => p.publish('t', `v${i}`, { id: `id-${i}` })));
    assert.equal(n.publishes[0].compact_results, true, 'the request asks for compact results');
    assert.deepEqual(results, [0, 1, 2].map((i) =>
      ({ cluster: 'main', partition: 0, offset: i, id: `id-${i}`, timestamp: new Date(timestampMsAt(i)) })), `oldNode ${oldNode}`);
  }
});

test('a batch with a failure comes back per message and is read so', async () => {
  const n = await node();
  n.onPublish = (r) => {
    const answer = ok(r, n);
    answer.results[1] = failed(Status.INVALID_ARGUMENT, false);
    return answer;
  };
  const p = publisher([n.endpoint]);
  const [a, b] = await Promise.allSettled([p.publish('t', 'a', { id: 'x' }), p.publish('t', 'b')]);
  assert.deepEqual(a, { status: 'fulfilled', value: { cluster: 'main', partition: 0, offset: 0, id: 'x', timestamp: new Date(timestampMsAt(0)) } });
  assert.equal(b.status, 'rejected');
});

test('compact results that do not fit the batch reject it with INTERNAL', async () => {
  const n = await node();
  n.onPublish = () => ({ results: [], compact: { cluster: 'main', partitions: [0], offsets: [1, 2], timestamps_ms: [] } });
  const p = publisher([n.endpoint]);
  await assert.rejects(p.publish('t', 'a'), (e: FerryError) => e.code === Status.INTERNAL && !e.retryable);
});
