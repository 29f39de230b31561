// Real Kafka brokers (scripts/kafka/kafka) and real ferryd processes
// (build/src/server/ferryd, or $FERRYD_BIN) for the integration tests, as the
// Python SDK's tests start them (sdk/python/tests/conftest.py).
import { ChildProcess, execFileSync, spawn } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { Callback, ClientConstructor, LOADER_OPTIONS } from '../../src/wire';

export const REPO = path.resolve(__dirname, '..', '..', '..', '..', '..');
const KAFKA_SCRIPT = path.join(REPO, 'scripts', 'kafka', 'kafka');
export const FERRYD = process.env.FERRYD_BIN || path.join(REPO, 'build', 'src', 'server', 'ferryd');

/** Logs and embedded stores of this test process; removed at exit unless $FERRY_KEEP_LOGS is set. */
const WORK = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-node-sdk-'));
process.on('exit', () => {
  if (!process.env.FERRY_KEEP_LOGS) fs.rmSync(WORK, { recursive: true, force: true });
});

export const unique = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A free TCP port on 127.0.0.1, and the next one free too (a broker's controller). */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await listenOnce(0);
    if (port < 65535 && (await listenOnce(port + 1).then(() => true, () => false))) return port;
  }
}

function listenOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const { port: bound } = server.address() as net.AddressInfo;
      server.close(() => resolve(bound));
    });
  });
}

export class KafkaBroker {
  private constructor(readonly name: string, readonly bootstrap: string, private readonly owned: boolean) {}

  /** $FERRY_TEST_KAFKA (a running broker's bootstrap), else a fresh broker. */
  static async start(): Promise<KafkaBroker> {
    if (process.env.FERRY_TEST_KAFKA) return new KafkaBroker('', process.env.FERRY_TEST_KAFKA, false);
    const name = unique(`nodesdk-${process.pid}`);
    const port = await freePort();
    execFileSync(KAFKA_SCRIPT, ['start', name, String(port)], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 180_000 });
    return new KafkaBroker(name, `127.0.0.1:${port}`, true);
  }

  wipe(): void {
    if (this.owned) execFileSync(KAFKA_SCRIPT, ['wipe', this.name], { stdio: 'ignore', timeout: 120_000 });
  }
}

/** PEM contents: the CA of the node's certificate and, for mutual TLS, a client certificate and key. */
export interface HealthTls {
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** A ferryd process on free ports, on Kafka or on an embedded store of its own. */
export class Ferryd {
  readonly logPath: string;
  private proc: ChildProcess | null = null;
  private started = false;

  private constructor(readonly name: string, private readonly args: string[], private httpPort: number, private grpcPort: number,
    private readonly tls?: HealthTls) {
    this.logPath = path.join(WORK, `ferryd-${name}.log`);
  }

  get endpoint(): string {
    return `127.0.0.1:${this.grpcPort}`;
  }

  /** `extra`: more ferryd arguments, and what the health check presents to a node with listen.tls. */
  static async create(backend: { kafka: string } | 'embedded', name = unique('node'),
    extra: { args?: string[]; tls?: HealthTls } = {}): Promise<Ferryd> {
    if (!fs.existsSync(FERRYD)) throw new Error(`ferryd not built: run scripts/build (looked for ${FERRYD})`);
    const [grpcPort, httpPort] = [await freePort(), await freePort()];
    const cluster = backend === 'embedded'
      ? ['clusters.main.type=embedded', `clusters.main.path=${fs.mkdtempSync(path.join(WORK, 'embedded-'))}`]
      : ['clusters.main.type=kafka', `clusters.main.bootstrap=${backend.kafka}`];
    const settings = [...cluster, `node.id=${name}`, 'subscribe.commit_interval=100ms', 'subscribe.session_timeout=6s',
      'shutdown.grace=2s'];
    return new Ferryd(name, [...(extra.args ?? []), ...settings.flatMap((s) => ['--set', s])], httpPort, grpcPort, extra.tls);
  }

  /**
   * Starts the node and waits until it is healthy. A free port can be taken by
   * another process between freePort() and ferryd's bind (CI runs suites side
   * by side), so a first start refused its listen address picks new ports and
   * tries again; a restart keeps its ports, which clients already know.
   */
  async start(timeout = 30_000): Promise<this> {
    const deadline = Date.now() + timeout;
    for (let attempt = 1; ; attempt++) {
      const exitCode = await this.startOnce(deadline);
      if (exitCode === null) {
        this.started = true;
        return this;
      }
      const lostPort = /cannot listen on/.test(this.tail());
      if (this.started || !lostPort || attempt === 3) throw new Error(`ferryd exited with ${exitCode}:\n${this.tail()}`);
      [this.grpcPort, this.httpPort] = [await freePort(), await freePort()];
    }
  }

  /** null once healthy, else the exit code of a ferryd that stopped first. */
  private async startOnce(deadline: number): Promise<number | null> {
    const listen = ['--set', `listen.grpc=127.0.0.1:${this.grpcPort}`, '--set', `listen.http=127.0.0.1:${this.httpPort}`];
    const log = fs.openSync(this.logPath, 'a');
    this.proc = spawn(FERRYD, [...this.args, ...listen], { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) return this.proc.exitCode;
      if (await this.healthy()) return null;
      await sleep(100);
    }
    throw new Error(`ferryd did not become healthy:\n${this.tail()}`);
  }

  kill9(): void {
    this.proc?.kill('SIGKILL');
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    if (!(await Promise.race([exited.then(() => true), sleep(15_000).then(() => false)]))) this.kill9();
  }

  private healthy(): Promise<boolean> {
    const get = this.tls ? https.get : http.get;
    return new Promise((resolve) => {
      const req = get({ host: '127.0.0.1', port: this.httpPort, path: '/healthz', timeout: 1000, ...this.tls }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('error', () => resolve(false));
      req.on('timeout', () => req.destroy());
    });
  }

  private tail(): string {
    return fs.readFileSync(this.logPath, 'utf8').slice(-3000);
  }
}

interface AdminClient extends grpc.Client {
  CreateTopic(request: { name: string; partitions: number }, options: grpc.CallOptions, callback: Callback<unknown>): grpc.ClientUnaryCall;
}

/** Creates a topic through the Admin service (which the SDK itself does not use). */
export function createTopic(endpoint: string, name: string, partitions = 3): Promise<string> {
  const root = grpc.loadPackageDefinition(protoLoader.loadSync('ferry/v1/admin.proto', LOADER_OPTIONS)) as unknown as
    { ferry: { v1: { Admin: ClientConstructor<AdminClient> } } };
  const admin = new root.ferry.v1.Admin(endpoint, grpc.credentials.createInsecure());
  return new Promise<string>((resolve, reject) => {
    admin.CreateTopic({ name, partitions }, { deadline: Date.now() + 30_000 }, (error) => {
      admin.close();
      if (error) reject(error);
      else resolve(name);
    });
  });
}
