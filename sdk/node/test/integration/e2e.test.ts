// End to end against real ferryd nodes on a real Kafka broker: the API's
// behaviours that the conformance scenarios do not cover, and kill -9 of one
// of two nodes during publish and during subscribe.
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFile } from 'child_process';
import * as path from 'path';
import { promisify } from 'util';
import { FerryError, Message, Publisher, Status, Subscriber, SubscriberOptions } from '../../src';
import { Ferryd, KafkaBroker, createTopic, sleep, unique } from './harness';

/** Reads and acks until `done(seen values)` or the timeout; every delivery in arrival order. */
async function consume(endpoints: string[], topic: string, done: (seen: Set<string>) => boolean,
  options: SubscriberOptions = {}, timeout = 60_000, onMessage: (m: Message, count: number) => void = () => {}): Promise<Message[]> {
  const delivered: Message[] = [];
  const seen = new Set<string>();
  const sub = new Subscriber(endpoints, unique('g'), [topic], { start: 'earliest', ackDeadline: 10_000, ...options });
  const messages = sub[Symbol.asyncIterator]();
  let pending = messages.next();
  const deadline = Date.now() + timeout;
  try {
    while (!done(seen) && Date.now() < deadline) {
      const result = await Promise.race([pending, sleep(200).then(() => null)]);
      if (result === null) continue;
      pending = messages.next();
      const m = result.value as Message;
      delivered.push(m);
      seen.add(m.value.toString());
      m.ack();
      onMessage(m, delivered.length);
    }
  } finally {
    await sub.close();
  }
  return delivered;
}

describe('against real ferryd on Kafka', () => {
  let kafka: KafkaBroker;
  let node: Ferryd;
  const started: Ferryd[] = [];
  const startNode = async () => {
    const n = await (await Ferryd.create({ kafka: kafka.bootstrap })).start();
    started.push(n);
    return n;
  };

  before(async () => {
    kafka = await KafkaBroker.start();
    node = await startNode();
  });
  after(async () => {
    await Promise.all(started.map((n) => n.stop()));
    kafka?.wipe();
  });

  test('a message keeps its key, headers, ordering key and id end to end; the handler acks it', async () => {
    const topic = await createTopic(node.endpoint, unique('node-rt'));
    const publisher = new Publisher([node.endpoint]);
    const result = await publisher.publish(topic, 'hello', { key: 'k1', orderingKey: 'o1', id: 'my-id', headers: [['h', 'a'], ['h', 'b']] });
    await publisher.close();
    assert.equal(result.id, 'my-id');
    const got: Message[] = [];
    const sub = new Subscriber([node.endpoint], unique('g'), [topic], { start: 'earliest', handler: (m) => { got.push(m); } });
    while (got.length === 0) await sleep(50);
    await sub.close();
    const m = got[0];
    assert.deepEqual([m.value.toString(), m.key?.toString(), m.id, m.partition, m.offset, m.deliveryAttempt],
      ['hello', 'k1', 'my-id', result.partition, result.offset, 1]);
    assert.deepEqual(m.headerList.filter(([k]) => k === 'h').map(([, v]) => v.toString()), ['a', 'b']);
    assert.ok(m.publishTime instanceof Date);
    assert.equal(sub.stats().acksSent, 1);
  });

  test("the README's example runs", async () => {
    const topic = await createTopic(node.endpoint, unique('node-example'));
    const example = path.join(__dirname, '..', '..', '..', 'examples', 'quickstart.js');
    const { stdout } = await promisify(execFile)(process.execPath, [example, node.endpoint], { env: { ...process.env, TOPIC: topic }, timeout: 60_000 });
    const lines = stdout.trim().split('\n');
    assert.match(lines[0], /^published 10, last at main\/\d+@\d+$/);
    assert.equal(lines.length, 11);
  });

  test('subscribing to an unknown topic fails with a fatal NOT_FOUND', async () => {
    const sub = new Subscriber([node.endpoint], unique('g'), [unique('missing')], { start: 'earliest' });
    await assert.rejects(sub.done(), (e: FerryError) => e.code === Status.NOT_FOUND && !e.retryable);
    assert.equal(sub.stats().reconnects, 0);
  });

  test('a handler slower than the ack deadline keeps its message: the deadline is extended', async () => {
    const topic = await createTopic(node.endpoint, unique('node-extend'), 1);
    const publisher = new Publisher([node.endpoint]);
    await publisher.publish(topic, 'slow');
    await publisher.close();
    let deliveries = 0;
    const sub = new Subscriber([node.endpoint], unique('g'), [topic], {
      start: 'earliest', ackDeadline: 1000, handler: async () => {
        deliveries++;
        await sleep(2500);
      },
    });
    while (deliveries === 0) await sleep(50);
    await sleep(3500);
    await sub.close();
    assert.equal(deliveries, 1);
    assert.ok(sub.stats().extensionsSent >= 2);
  });

  test('close sends pending acks: the group sees nothing again', async () => {
    const topic = await createTopic(node.endpoint, unique('node-close'));
    const publisher = new Publisher([node.endpoint]);
    await Promise.all(Array.from({ length: 20 }, (_, i) => publisher.publish(topic, `c-${i}`)));
    await publisher.close();
    const group = unique('g');
    const first = await consumeGroup(group, topic, 20, { ackBatchDelay: 60_000 });
    assert.equal(first, 20);
    await sleep(500); // the node commits every 100 ms
    assert.equal(await consumeGroup(group, topic, 1, {}, 4000), 0);
  });

  async function consumeGroup(group: string, topic: string, want: number, options: SubscriberOptions, timeout = 30_000): Promise<number> {
    let got = 0;
    const sub = new Subscriber([node.endpoint], group, [topic], { start: 'earliest', ...options, handler: () => { got++; } });
    const deadline = Date.now() + timeout;
    while (got < want && Date.now() < deadline) await sleep(50);
    await sub.close();
    return got;
  }

  test('kill -9 of one of two nodes during publish: no acknowledged message is lost', async (t) => {
    const [a, b] = [await startNode(), await startNode()];
    const topic = await createTopic(a.endpoint, unique('node-failover'));
    const publisher = new Publisher([a.endpoint, b.endpoint], { linger: 2, maxBatchMessages: 50, requestTimeout: 5000, deliveryTimeout: 60_000 });
    const results: Promise<unknown>[] = [];
    for (let i = 0; i < 3000; i++) {
      results.push(publisher.publish(topic, `f-${i}`, { key: `k${i % 13}` }));
      // A steady stream, so calls are in flight to `a` when it dies.
      if (i % 50 === 0) await sleep(2);
      if (i === 1500) a.kill9();
    }
    const outcomes = await Promise.allSettled(results);
    await publisher.close();
    const acknowledged = new Set(outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [`f-${i}`] : [])));
    const failures = outcomes.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason));
    assert.ok(acknowledged.size >= 2900, `too many failures: ${failures.slice(0, 3)}`);
    const read = await consume([b.endpoint], topic, (seen) => [...acknowledged].every((v) => seen.has(v)), {}, 90_000);
    const seen = new Set(read.map((m) => m.value.toString()));
    const lost = [...acknowledged].filter((v) => !seen.has(v));
    assert.deepEqual(lost.slice(0, 5), [], `${lost.length} acknowledged messages lost`);
    t.diagnostic(`publish failover: ${acknowledged.size} acknowledged, ${failures.length} failed, ` +
      `${read.length - seen.size} duplicates read`);
  });

  test('kill -9 of one of two nodes during subscribe: every message is still delivered', async (t) => {
    const [a, b] = [await startNode(), await startNode()];
    const topic = await createTopic(a.endpoint, unique('node-sub-failover'), 4);
    const want = Array.from({ length: 2000 }, (_, i) => `s-${i}`);
    const publisher = new Publisher([a.endpoint, b.endpoint]);
    await Promise.all(want.map((v) => publisher.publish(topic, v, { key: v.slice(-2) })));
    await publisher.close();
    let killedAt = 0;
    let survivor = '';
    const read = await consume([a.endpoint, b.endpoint], topic, (seen) => want.every((v) => seen.has(v)),
      { ackDeadline: 5000, maxOutstandingMessages: 20 }, 120_000, (m, count) => {
        // Kill the node that serves the 500th message, whichever it is: the group may not
        // have given the other node any partition yet, so its partitions must move there.
        if (!killedAt && count >= 500) {
          const [doomed, other] = m.endpoint === a.endpoint ? [a, b] : [b, a];
          doomed.kill9();
          survivor = other.endpoint;
          killedAt = count;
        }
      });
    assert.ok(killedAt, `only ${read.length} messages delivered, never 500`);
    const seen = new Set(read.map((m) => m.value.toString()));
    const missing = want.filter((v) => !seen.has(v));
    assert.deepEqual(missing.slice(0, 5), [], `${missing.length} messages never delivered after the kill`);
    assert.ok(read.slice(killedAt).some((m) => m.endpoint === survivor), 'the surviving node took over');
    t.diagnostic(`subscribe failover: killed after ${killedAt}; ${read.length} deliveries, ${read.length - seen.size} duplicates`);
  });
});
