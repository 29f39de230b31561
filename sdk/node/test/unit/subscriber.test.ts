import { afterEach, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { FerryError, Message, Status, Subscriber, SubscriberOptions } from '../../src';
import { FakeNode, ServerStream, failStream, received, sleep, until } from '../fake-node';
import type { Acks } from '../../src/wire';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function node(): Promise<FakeNode> {
  const n = await new FakeNode().start();
  cleanups.push(() => n.stop());
  return n;
}

function subscriber(endpoints: string[], options: SubscriberOptions = {}): Subscriber {
  const s = new Subscriber(endpoints, 'g', ['t'], { reconnectBackoff: [20, 100], ...options });
  cleanups.push(() => s.close());
  return s;
}

function send(call: ServerStream, ...messages: ReturnType<typeof received>[]): void {
  call.write({ messages: { messages } });
}

async function take(iterator: AsyncIterator<Message>, count: number): Promise<Message[]> {
  const out: Message[] = [];
  while (out.length < count) out.push((await iterator.next()).value as Message);
  return out;
}

test('the stream opens with the options; messages arrive in order; acks go in one batch', async () => {
  const n = await node();
  const sub = subscriber([n.endpoint], { ordering: 'key', ackDeadline: 20_000, start: 'earliest', maxOutstandingMessages: 7 });
  await until(() => n.streams.length === 1 && n.streams[0].requests.length === 1);
  const first = n.streams[0].requests[0];
  assert.ok('open' in first);
  const open = first.open;
  assert.deepEqual([open.group, open.topics, open.ordering, open.ack_deadline, open.flow.max_outstanding_messages],
    ['g', ['t'], 2, { seconds: 20, nanos: 0 }, 7]);
  assert.ok('earliest' in open.start && open.start.earliest);
  send(n.streams[0].call, received(1, { key: Buffer.from('k'), headers: [{ key: 'n', value: Buffer.from('1') }] }), received(2));
  const [a, b] = await take(sub[Symbol.asyncIterator](), 2);
  assert.deepEqual([a.value.toString(), a.key?.toString(), a.headers.n.toString(), a.id, b.key], ['m-1', 'k', '1', 'id-1', null]);
  a.ack();
  b.ack();
  a.ack(); // only the first settlement counts
  await until(() => n.streams[0].requests.length === 2);
  await sleep(20);
  assert.deepEqual(n.streams[0].requests.slice(1), [{ ack: { receipts: [Buffer.from('r-1'), Buffer.from('r-2')], spans: [] }, request: 'ack' }]);
  assert.equal(sub.stats().acksSent, 2);
});

test('a nack carries its delay', async () => {
  const n = await node();
  const sub = subscriber([n.endpoint]);
  await until(() => n.streams.length === 1);
  send(n.streams[0].call, received(1));
  const [m] = await take(sub[Symbol.asyncIterator](), 1);
  m.nack({ delay: 1500 });
  await until(() => n.streams[0].requests.length === 2);
  assert.deepEqual(n.streams[0].requests[1], { nack: { receipts: [Buffer.from('r-1')], delay: { seconds: 1, nanos: 500_000_000 } }, request: 'nack' });
});

test('an unsettled message has its deadline extended before it passes', async () => {
  const n = await node();
  const sub = subscriber([n.endpoint], { ackDeadline: 300 });
  await until(() => n.streams.length === 1);
  send(n.streams[0].call, received(1));
  const [m] = await take(sub[Symbol.asyncIterator](), 1);
  await until(() => n.streams[0].requests.some((r) => 'extend' in r), 1000, 'an extension');
  m.ack();
  const extensions = n.streams[0].requests.filter((r) => 'extend' in r);
  assert.ok(extensions.length >= 1);
  assert.equal(sub.stats().extensionsSent, extensions.length);
});

test('a broken stream is reopened with backoff; its messages can no longer be settled', async () => {
  const n = await node();
  const errors: [string, boolean][] = [];
  const sub = subscriber([n.endpoint], { onError: (e, info) => errors.push([e.codeName, info.fatal]) });
  await until(() => n.streams.length === 1);
  send(n.streams[0].call, received(1));
  const [m] = await take(sub[Symbol.asyncIterator](), 1);
  failStream(n.streams[0].call, Status.UNAVAILABLE, 'node going away');
  await until(() => n.streams.length === 2, 2000, 'a second stream');
  assert.ok(m.settled, 'its receipt died with the stream');
  m.ack();
  assert.deepEqual(errors, [['UNAVAILABLE', false]]);
  assert.deepEqual([sub.stats().reconnects, sub.stats().acksSent], [1, 0]);
  await until(() => sub.stats().openStreams === 1);
});

test('NOT_FOUND is fatal: the iterator and done() reject with it and nothing reconnects', async () => {
  const n = await node();
  n.onSubscribe = (s) => setTimeout(() => failStream(s.call, Status.NOT_FOUND, 'unknown topic t'), 10);
  const sub = subscriber([n.endpoint]);
  const done = sub.done();
  await assert.rejects(async () => {
    for await (const m of sub) m.ack();
  }, (e: FerryError) => e instanceof FerryError && e.code === Status.NOT_FOUND && !e.retryable);
  await assert.rejects(done, (e: FerryError) => e.code === Status.NOT_FOUND);
  await sleep(100);
  assert.equal(n.streams.length, 1);
  assert.equal(sub.failure?.code, Status.NOT_FOUND);
});

test('one stream per node: messages of both arrive and are settled on their own stream', async () => {
  const a = await node();
  const b = await node();
  const sub = subscriber([a.endpoint, b.endpoint]);
  await until(() => a.streams.length === 1 && b.streams.length === 1);
  send(a.streams[0].call, received(1));
  send(b.streams[0].call, received(2));
  for (const m of await take(sub[Symbol.asyncIterator](), 2)) m.ack();
  await until(() => a.streams[0].requests.length === 2 && b.streams[0].requests.length === 2);
  assert.deepEqual((a.streams[0].requests[1] as { ack: { receipts: Buffer[] } }).ack.receipts, [Buffer.from('r-1')]);
  assert.deepEqual((b.streams[0].requests[1] as { ack: { receipts: Buffer[] } }).ack.receipts, [Buffer.from('r-2')]);
});

test('handlers run serially per key in key mode, concurrently across keys; a throwing handler nacks', async () => {
  const n = await node();
  const log: string[] = [];
  let running = 0;
  let maxRunning = 0;
  subscriber([n.endpoint], {
    ordering: 'key', onHandlerError: () => {},
    handler: async (m) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      log.push(`start ${m.value}`);
      await sleep(20);
      log.push(`end ${m.value}`);
      running--;
      if (m.value.toString() === 'm-4') throw new Error('cannot');
    },
  });
  await until(() => n.streams.length === 1);
  send(n.streams[0].call, ...[1, 2, 3, 4].map((i) => received(i, { key: Buffer.from(i % 2 ? 'odd' : 'even') })));
  await until(() => log.length === 8);
  await sleep(20);
  assert.equal(maxRunning, 2);
  assert.ok(log.indexOf('end m-1') < log.indexOf('start m-3'));
  assert.ok(log.indexOf('end m-2') < log.indexOf('start m-4'));
  const requests = n.streams[0].requests.slice(1);
  const acked = requests.flatMap((r) => ('ack' in r ? r.ack.receipts.map(String) : []));
  const nacked = requests.flatMap((r) => ('nack' in r ? r.nack.receipts.map(String) : []));
  assert.deepEqual([acked.sort(), nacked], [['r-1', 'r-2', 'r-3'], ['r-4']]);
});

test('close nacks messages not handed out, sends pending acks and ends the stream', async () => {
  const n = await node();
  const sub = subscriber([n.endpoint], { ackBatchDelay: 60_000 });
  await until(() => n.streams.length === 1);
  send(n.streams[0].call, received(1), received(2));
  const [m] = await take(sub[Symbol.asyncIterator](), 1);
  m.ack();
  await sleep(20);
  assert.equal(n.streams[0].requests.length, 1, 'the ack waits for its batch');
  await sub.close();
  const requests = n.streams[0].requests.slice(1);
  assert.deepEqual(requests.map((r) => Object.keys(r)[0]), ['ack', 'nack']);
  assert.ok(n.streams[0].ended);
  assert.deepEqual(await sub[Symbol.asyncIterator]().next(), { done: true, value: undefined });
  await sub.done();
});

test('messages of a receipt run are acked by spans, the rest by receipt; nacks stay per receipt', async () => {
  const n = await node();
  const sub = subscriber([n.endpoint], { ackBatchDelay: 60_000 });
  await until(() => n.streams.length === 1);
  // run-0: messages 0-2; run-4: messages 4-5; message 3 in no run.
  n.streams[0].call.write({ messages: { messages: [0, 1, 2, 3, 4, 5].map((i) => received(i)), runs: [
    { run: Buffer.from('run-0'), first_message: 0, count: 3 }, { run: Buffer.from('run-4'), first_message: 4, count: 2 }] } });
  const messages = await take(sub[Symbol.asyncIterator](), 6);
  for (const i of [2, 0, 3, 5, 1]) messages[i].ack(); // out of order
  messages[4].nack();
  await sub.close();
  const requests = n.streams[0].requests.slice(1);
  const ack = requests.find((r) => 'ack' in r) as { ack: Acks };
  assert.deepEqual((ack.ack.spans ?? []).map((s) => [String(s.run), s.first, s.count]), [['run-0', 0, 3]]);
  assert.deepEqual(ack.ack.receipts.map(String), ['r-3', 'r-5']);
  assert.deepEqual(requests.flatMap((r) => ('nack' in r ? r.nack.receipts.map(String) : [])), ['r-4']);
  assert.deepEqual([sub.stats().acksSent, sub.stats().nacksSent], [5, 1]);
});

test('a span the node refuses as a whole is one failure report, counted for each of its messages', async () => {
  const n = await node();
  const failures: FerryError[] = [];
  const sub = subscriber([n.endpoint], { onReceiptFailure: (e) => failures.push(e) });
  await until(() => n.streams.length === 1);
  const call = n.streams[0].call;
  call.write({ messages: { messages: [0, 1, 2].map((i) => received(i)),
    runs: [{ run: Buffer.from('run-0'), first_message: 0, count: 3 }] } });
  for (const m of await take(sub[Symbol.asyncIterator](), 3)) m.ack();
  await until(() => n.streams[0].requests.length === 2);
  const span = (n.streams[0].requests[1] as { ack: Acks }).ack.spans![0];
  assert.deepEqual([span.first, span.count], [0, 3]);
  call.write({ receipt_results: { results: [{ receipt: Buffer.alloc(0), span,
    status: { code: Status.FAILED_PRECONDITION, message: 'run issued on another stream', retryable: false } }] } });
  await until(() => failures.length === 1);
  await sleep(20);
  assert.deepEqual([failures.length, failures[0].code, sub.stats().receiptFailures], [1, Status.FAILED_PRECONDITION, 3]);
});
