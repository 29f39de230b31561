import { afterEach, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Publisher } from '../../src';
import { timing } from '../../src/client-settings';
import { FakeNode, ok, sleep, until } from '../fake-node';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
timing.minRefresh = 50;

async function node(admin: boolean): Promise<FakeNode> {
  const n = await new FakeNode(admin).start();
  cleanups.push(() => n.stop());
  return n;
}

function publisher(endpoints: string[], options: ConstructorParameters<typeof Publisher>[1] = {}): Publisher {
  const p = new Publisher(endpoints, options);
  cleanups.push(() => p.close());
  return p;
}

/** The largest batch the node received for `count` keyless messages published at once. */
async function largestBatch(p: Publisher, n: FakeNode, count: number): Promise<number> {
  const before = n.publishes.length;
  await Promise.all(Array.from({ length: count }, (_, i) => p.publish('t', `m${i}`)));
  return Math.max(...n.publishes.slice(before).map((r) => r.messages.length));
}

test('settings pushed by the nodes reach a running publisher, but not options it set', async () => {
  const n = await node(true);
  n.onPublish = async (r) => {
    await sleep(20); // calls overlap: batches fill up
    return ok(r, n);
  };
  const pushed = publisher([n.endpoint]);
  const own = publisher([n.endpoint], { maxBatchMessages: 500 });
  assert.equal(pushed.settings().maxBatchMessages, 500);

  n.clientSettings = { linger: { seconds: 0, nanos: 40e6 }, max_batch_messages: 3, max_batch_bytes: 0,
    request_timeout: null, delivery_timeout: { seconds: 9, nanos: 0 } };
  await until(() => pushed.settings().maxBatchMessages === 3, 5000, 'the pushed settings');
  assert.deepEqual(pushed.settings(),
    { linger: 40, maxBatchMessages: 3, maxBatchBytes: 1 << 20, requestTimeout: 30_000, deliveryTimeout: 9000 });
  assert.ok(await largestBatch(pushed, n, 60) <= 3);
  await until(() => own.settings().linger === 40, 5000, 'the pushed linger');
  assert.equal(own.settings().maxBatchMessages, 500); // the application's own wins

  n.clientSettings = null; // withdrawn: the defaults again
  await until(() => pushed.settings().maxBatchMessages === 500, 5000, 'the defaults');
});

test('a node without GetClientConfig (older ferryd) leaves the SDK settings', async () => {
  const n = await node(false);
  const p = publisher([n.endpoint]);
  await p.publish('t', 'v');
  await sleep(100);
  assert.equal(p.settings().maxBatchMessages, 500);
});

test('pushedSettings: false does not ask', async () => {
  const n = await node(true);
  n.clientSettings = { linger: null, max_batch_messages: 3, max_batch_bytes: 0, request_timeout: null, delivery_timeout: null };
  const p = publisher([n.endpoint], { pushedSettings: false });
  await sleep(200);
  assert.equal(n.configFetches, 0);
  assert.equal(p.settings().maxBatchMessages, 500);
});

test('a reconnect fetches the settings before the refresh interval', async () => {
  const n = await node(true);
  n.refreshInterval = { seconds: 60, nanos: 0 };
  let failNext = false;
  n.onPublish = (r) => {
    if (!failNext) return ok(r, n);
    failNext = false;
    return { code: 14, details: 'node restarting' }; // UNAVAILABLE: retried on the same node
  };
  const p = publisher([n.endpoint], { retryBackoff: [10, 50] });
  await until(() => n.configFetches === 1, 5000, 'the first fetch');
  n.clientSettings = { linger: null, max_batch_messages: 3, max_batch_bytes: 0, request_timeout: null, delivery_timeout: null };
  await sleep(200);
  assert.equal(p.settings().maxBatchMessages, 500); // the refresh is a minute away

  failNext = true;
  await p.publish('t', 'v');
  await until(() => p.settings().maxBatchMessages === 3, 5000, 'the settings after the reconnect');
});
