import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { PendingAcks, placeInRuns } from '../../src/ack-spans';
import type { Acks } from '../../src/wire';

// A batch of 8 messages: run A = messages 0-3, run B = 5-7, message 4 in none.
function ackInOrder(...order: number[]): Acks | null {
  const places = placeInRuns(8, [
    { run: Buffer.from('A'), first_message: 0, count: 4 },
    { run: Buffer.from('B'), first_message: 5, count: 3 },
  ], { seq: 0 });
  const pending = new PendingAcks();
  for (const i of order) pending.add(places[i], Buffer.from(`r-${i}`));
  return pending.take();
}

const spans = (acks: Acks | null) => (acks?.spans ?? []).map((s) => `${s.run}:${s.first}+${s.count}`);
const receipts = (acks: Acks | null) => (acks?.receipts ?? []).map(String);

test('acks in order go as one span per run, a message in no run by its receipt', () => {
  const acks = ackInOrder(0, 1, 2, 3, 4, 5, 6, 7);
  assert.deepEqual(spans(acks), ['A:0+4', 'B:0+3']);
  assert.deepEqual(receipts(acks), ['r-4']);
});

test('acks out of order are joined into spans', () => {
  const acks = ackInOrder(6, 2, 0, 7, 3, 5, 1);
  assert.deepEqual(spans(acks), ['A:0+4', 'B:0+3']);
  assert.deepEqual(receipts(acks), []);
});

test('holey acks take a span per contiguous piece and receipts for lone messages', () => {
  const acks = ackInOrder(3, 0, 1, 7, 5); // A: 0-1 and 3; B: 0 and 2
  assert.deepEqual(spans(acks), ['A:0+2']);
  assert.deepEqual(receipts(acks), ['r-3', 'r-5', 'r-7']);
});

test('take empties the pending acks; a later ack of a run is a piece of its own', () => {
  const places = placeInRuns(3, [{ run: Buffer.from('A'), first_message: 0, count: 3 }], { seq: 0 });
  const pending = new PendingAcks();
  pending.add(places[0], Buffer.from('r-0'));
  pending.add(places[1], Buffer.from('r-1'));
  assert.deepEqual(spans(pending.take()), ['A:0+2']);
  assert.equal(pending.take(), null);
  pending.add(places[2], Buffer.from('r-2'));
  assert.deepEqual(receipts(pending.take()), ['r-2']);
});

test('runs that do not fit the batch are ignored: their messages go by receipt', () => {
  const places = placeInRuns(6, [
    { run: Buffer.from('empty'), first_message: 0, count: 0 },
    { run: Buffer.from('past-the-end'), first_message: 4, count: 3 },
    { run: Buffer.from('ok'), first_message: 1, count: 2 },
    { run: Buffer.from('overlaps'), first_message: 2, count: 2 },
    { run: Buffer.from('encloses'), first_message: 0, count: 5 },
  ], { seq: 0 });
  assert.deepEqual(places.map((p) => (p ? `${p.run.token}:${p.index}` : null)), [null, 'ok:0', 'ok:1', null, null, null]);
});
