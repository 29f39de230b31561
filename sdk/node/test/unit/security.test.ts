// The refusals credentials() makes by itself; real TLS and tokens against
// ferryd are in test/integration/security.test.ts.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { FerryError, Status, credentials } from '../../src';

const invalid = (text: string) => (e: unknown) =>
  e instanceof FerryError && e.code === Status.INVALID_ARGUMENT && e.message.includes(text);

test('a token without TLS is refused as the CLI and the other SDKs refuse it', () => {
  assert.throws(() => credentials({ token: 'id.secret' }),
    invalid("a token needs TLS (give the CA file of the node's certificate): tokens never travel in clear text"));
});

test('a certificate needs its key, and files must be readable', () => {
  assert.throws(() => credentials({ certFile: 'client.pem' }), invalid('a client certificate needs its key file'));
  assert.throws(() => credentials({ tls: true, keyFile: 'client.key' }), invalid('a client certificate needs its key file'));
  assert.throws(() => credentials({ caFile: '/nonexistent/ca.pem' }), invalid('CA file "/nonexistent/ca.pem": cannot read'));
});

test('nothing set is plain text; tls alone uses the system CAs', () => {
  assert.equal(credentials({})._isSecure(), false);
  assert.equal(credentials({ tls: true })._isSecure(), true);
  assert.equal(credentials({ tls: true, token: 't' })._isSecure(), true);
  assert.ok(credentials() instanceof grpc.ChannelCredentials);
});
