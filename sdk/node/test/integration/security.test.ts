// TLS and tokens end to end: nodes with listen.tls and auth.enabled on an
// embedded store, certificates from a throwaway CA made with the openssl CLI,
// tokens from `ferry token create` (as sdk/cpp's tls and auth tests).
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FerryError, Publisher, Security, Status, Subscriber, credentials } from '../../src';
import { FERRYD, Ferryd, unique } from './harness';

const ACL = `auth:
  enabled: true
  acl:
    - { principal: tenant-a, resource: "topic:a.*", operations: [publish, subscribe, describe] }
    - { principal: tenant-a, resource: "group:a-*", operations: [subscribe, describe] }
    - { principal: tenant-b, resource: "topic:b.*", operations: [publish, subscribe, describe] }
    - { principal: tenant-b, resource: "group:b-*", operations: [subscribe, describe] }
    - { principal: "*", resource: cluster, operations: [describe] }
routes:
  - { topic: "*", write: [main], auto_create_topics: true }
`;

/** A CA in a fresh directory and certificates it issues. */
class TestPki {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-node-pki-'));
  readonly ca = path.join(this.dir, 'ca.pem');
  private readonly caKey = path.join(this.dir, 'ca.key');

  constructor() {
    this.openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
      '-subj', '/CN=ferry node test CA', '-keyout', this.caKey, '-out', this.ca);
  }

  issue(commonName: string, subjectAltName = ''): { cert: string; key: string } {
    const stem = path.join(this.dir, commonName);
    fs.writeFileSync(`${stem}.ext`, subjectAltName ? `subjectAltName=${subjectAltName}\n` : '');
    this.openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj',
      `/CN=${commonName}`, '-keyout', `${stem}.key`, '-out', `${stem}.csr`);
    this.openssl('x509', '-req', '-in', `${stem}.csr`, '-CA', this.ca, '-CAkey', this.caKey, '-CAcreateserial',
      '-days', '2', '-out', `${stem}.pem`, '-extfile', `${stem}.ext`);
    return { cert: `${stem}.pem`, key: `${stem}.key` };
  }

  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private openssl(...args: string[]): void {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  }
}

/** `ferry token create`: the token and its tokens-file line. */
function newToken(principal: string): { token: string; line: string } {
  const cli = process.env.FERRY_CLI_BIN || path.join(path.dirname(FERRYD), '..', 'cli', 'ferry');
  const [token, line] = execFileSync(cli, ['token', 'create', '--principal', principal], { encoding: 'utf8' })
    .trim().split('\n');
  assert.ok(token && line, 'ferry token create printed a token and a line');
  return { token, line };
}

async function publishOne(endpoint: string, security: Security, topic: string, value: string): Promise<void> {
  const publisher = new Publisher([endpoint], { credentials: credentials(security), deliveryTimeout: 4000 });
  try {
    await publisher.publish(topic, value);
  } finally {
    await publisher.close();
  }
}

/** The first message's value; rejects with the error that stopped the subscriber. */
async function receiveOne(endpoint: string, security: Security, group: string, topic: string): Promise<string> {
  const sub = new Subscriber([endpoint], group, [topic], { credentials: credentials(security), start: 'earliest' });
  try {
    const next = await Promise.race([sub[Symbol.asyncIterator]().next(),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no message within 20 s')), 20_000))]);
    next.value.ack();
    return next.value.value.toString();
  } finally {
    await sub.close().catch(() => undefined);
  }
}

const isCode = (code: Status, text: string) => (e: unknown) =>
  e instanceof FerryError && e.code === code && e.message.includes(text);

describe('TLS and tokens against real ferryd', () => {
  const pki = new TestPki();
  const server = pki.issue('ferryd', 'DNS:localhost,IP:127.0.0.1');
  const tenantA = pki.issue('tenant-a');
  const tokenB = newToken('tenant-b');
  const revoked = newToken('tenant-b');
  let mutual: Ferryd;
  let tokens: Ferryd;

  // Mutual: the node verifies client certificates of the test CA (with auth
  // on, a client without one passes the handshake and gets UNAUTHENTICATED);
  // else principals come from tokens.
  const startNode = async (mutualTls: boolean) => {
    const config = path.join(pki.dir, unique('ferry') + '.yaml');
    fs.writeFileSync(config, ACL);
    const args = ['--config', config, '--set', `listen.tls.cert=${server.cert}`, '--set', `listen.tls.key=${server.key}`];
    if (mutualTls) {
      args.push('--set', `listen.tls.client_ca=${pki.ca}`);
    } else {
      const tokensFile = path.join(pki.dir, unique('tokens'));
      fs.writeFileSync(tokensFile, `${tokenB.line}\n`);
      args.push('--set', `auth.tokens_file=${tokensFile}`);
    }
    const tls = { ca: fs.readFileSync(pki.ca), ...(mutualTls
      ? { cert: fs.readFileSync(tenantA.cert), key: fs.readFileSync(tenantA.key) } : {}) };
    return (await Ferryd.create('embedded', unique('secure'), { args, tls })).start();
  };

  before(async () => {
    mutual = await startNode(true);
    tokens = await startNode(false);
  });
  after(async () => {
    await Promise.all([mutual?.stop(), tokens?.stop()]);
    pki.remove();
  });

  test('mutual TLS: the client certificate publishes and consumes as its principal', async () => {
    const a: Security = { caFile: pki.ca, certFile: tenantA.cert, keyFile: tenantA.key };
    await publishOne(mutual.endpoint, a, 'a.orders', 'over mutual TLS');
    assert.equal(await receiveOne(mutual.endpoint, a, 'a-g', 'a.orders'), 'over mutual TLS');
    await assert.rejects(publishOne(mutual.endpoint, a, 'b.orders', 'x'),
      isCode(Status.PERMISSION_DENIED, 'permission denied: publish on topic:b.orders'));
  });

  test('mutual TLS: a client without a certificate, or with one of another CA, is refused', async () => {
    await assert.rejects(publishOne(mutual.endpoint, { caFile: pki.ca }, 'a.orders', 'x'),
      isCode(Status.UNAUTHENTICATED, 'no credentials'));
    const stranger = new TestPki();
    try {
      const foreign = stranger.issue('tenant-a');
      const refused = (e: unknown) => e instanceof FerryError && [Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED].includes(e.code);
      await assert.rejects(publishOne(mutual.endpoint, { caFile: pki.ca, certFile: foreign.cert, keyFile: foreign.key },
        'a.orders', 'x'), refused);
    } finally {
      stranger.remove();
    }
  });

  test('a token is a principal the ACL allows or denies', async () => {
    const b: Security = { caFile: pki.ca, token: tokenB.token };
    await publishOne(tokens.endpoint, b, 'b.orders', 'with a token');
    assert.equal(await receiveOne(tokens.endpoint, b, 'b-g', 'b.orders'), 'with a token');
    await assert.rejects(publishOne(tokens.endpoint, b, 'a.orders', 'x'),
      isCode(Status.PERMISSION_DENIED, 'permission denied: publish on topic:a.orders'));
    // The subscriber stops on PERMISSION_DENIED instead of retrying.
    await assert.rejects(receiveOne(tokens.endpoint, b, 'a-g', 'b.orders'),
      isCode(Status.PERMISSION_DENIED, 'permission denied: subscribe on group:a-g'));
    await assert.rejects(publishOne(tokens.endpoint, { caFile: pki.ca, token: revoked.token }, 'b.orders', 'x'),
      isCode(Status.UNAUTHENTICATED, 'unknown or revoked bearer token'));
    await assert.rejects(publishOne(tokens.endpoint, { caFile: pki.ca }, 'b.orders', 'x'),
      isCode(Status.UNAUTHENTICATED, 'no credentials'));
  });
});
