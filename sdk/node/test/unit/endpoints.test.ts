import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Backoff, EndpointSelector } from '../../src/endpoints';
import { FerryError, Status, errorFromCall } from '../../src/errors';
import { isFatalStreamCode, isNodeFailure, isRetryable } from '../../src/retry';

test('backoff doubles per attempt up to its maximum', () => {
  const backoff = new Backoff(50, 300);
  assert.deepEqual([1, 2, 3, 4, 5].map((n) => backoff.delay(n)), [50, 100, 200, 300, 300]);
});

test('the selector goes round-robin and skips a failed endpoint until its period ends', () => {
  const s = new EndpointSelector(3, new Backoff(100, 1000));
  assert.deepEqual([s.pick(0), s.pick(0), s.pick(0), s.pick(0)], [0, 1, 2, 0]);
  s.reportFailure(1, 0);
  assert.deepEqual([s.pick(10), s.pick(10), s.pick(10)], [2, 0, 2]);
  assert.equal(s.pick(100), 0);
  assert.equal(s.pick(100), 1, 'healthy again after its period');
});

test('a retry avoids the endpoint it failed on unless no other is healthy', () => {
  const s = new EndpointSelector(2, new Backoff(100, 1000));
  assert.equal(s.pick(0, 0), 1);
  assert.equal(s.pick(0, 0), 1);
  s.reportFailure(1, 0);
  assert.equal(s.pick(0, 0), 0, 'the other one is down');
});

test('when every endpoint failed, the one that recovers first is used; failures in one burst count once', () => {
  const s = new EndpointSelector(2, new Backoff(100, 1000));
  s.reportFailure(0, 0);
  s.reportFailure(0, 0);
  s.reportFailure(1, 50);
  assert.equal(s.pick(60), 0, 'its period (100, counted once) ends first');
  s.reportSuccess(1);
  assert.equal(s.pick(60), 1);
});

test('one retry table: the node decides when it answered, the code otherwise', () => {
  const retryableCodes = [Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED, Status.RESOURCE_EXHAUSTED, Status.ABORTED, Status.CANCELLED];
  for (let code = 0; code <= 16; code++) {
    assert.equal(isRetryable(code), retryableCodes.includes(code), `code ${Status[code]}`);
    assert.equal(isRetryable(code, true), code !== Status.OK);
    assert.equal(isRetryable(code, false), false);
  }
  assert.equal(isRetryable(99), false, 'unknown codes are not retryable');
  assert.deepEqual([14, 4, 1, 8].map(isNodeFailure), [true, true, true, false]);
  assert.deepEqual([3, 5, 12, 14].map(isFatalStreamCode), [true, true, true, false]);
});

test('errors carry code, name and retryability, also for unknown codes', () => {
  const e = errorFromCall({ code: Status.NOT_FOUND, details: 'no topic x' }, 'a:1');
  assert.ok(e instanceof FerryError && e instanceof Error);
  assert.deepEqual([e.code, e.codeName, e.retryable, e.endpoint, e.message], [5, 'NOT_FOUND', false, 'a:1', 'NOT_FOUND: no topic x']);
  assert.equal(new FerryError(Status.UNAVAILABLE, 'x').retryable, true);
  assert.equal(new FerryError(77 as Status, 'x').codeName, 'UNKNOWN');
  assert.equal(errorFromCall(new Error('boom')).code, Status.UNKNOWN);
});
