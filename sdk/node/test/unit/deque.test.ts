import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Deque } from '../../src/deque';

test('the deque behaves as an array under random push, shift and unshift across growth', () => {
  let state = 7;
  const random = () => ((state = (state * 1103515245 + 12345) % 2147483648) / 2147483648);
  const deque = new Deque<number>();
  const model: number[] = [];
  for (let i = 0; i < 5000; i++) {
    const r = random();
    if (r < 0.45) {
      deque.push(i, i + 0.5);
      model.push(i, i + 0.5);
    } else if (r < 0.6) {
      deque.unshift(i, i + 0.25);
      model.unshift(i, i + 0.25);
    } else {
      assert.equal(deque.shift(), model.shift());
    }
    assert.equal(deque.length, model.length);
    assert.equal(deque.first(), model[0]);
  }
  assert.deepEqual([...deque], model);
});
