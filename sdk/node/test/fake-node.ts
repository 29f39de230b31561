// An in-process ferryd stand-in: a real gRPC server on 127.0.0.1:0 serving the
// Publisher and Subscriber services from the same .proto files, with the
// behaviour scripted by each test.
import * as grpc from '@grpc/grpc-js';
import { adminService, services } from '../src/wire';
import type { ClientSettings, GetClientConfigResponse, PublishRequest, PublishResponse, ReceivedMessage, SubscribeRequest, SubscribeResponse } from '../src/wire';

export type PublishAnswer = PublishResponse | { code: grpc.status; details: string };
export type ServerStream = grpc.ServerDuplexStream<SubscribeRequest, SubscribeResponse>;

export class FakeNode {
  readonly server = new grpc.Server();
  endpoint = '';
  /** Every Publish request, in arrival order. */
  readonly publishes: PublishRequest[] = [];
  /**
   * Answers a Publish request; default: every message OK at the next offset.
   * Like ferryd, the node sends an all-OK answer in the compact form when the
   * request asks for it, unless `oldNode` (a node that predates compact_results).
   */
  onPublish: (request: PublishRequest) => PublishAnswer | Promise<PublishAnswer> = (r) => ok(r, this);
  nextOffset = 0;
  oldNode = false;
  /** Subscribe streams in arrival order, with the requests each received. */
  readonly streams: { call: ServerStream; requests: SubscribeRequest[]; ended: boolean }[] = [];
  onSubscribe: (stream: FakeNode['streams'][number]) => void = () => {};
  /** With `admin`, the node also serves Admin.GetClientConfig with these settings. */
  clientSettings: ClientSettings | null = null;
  /** The refresh interval GetClientConfig names. */
  refreshInterval = { seconds: 0, nanos: 50e6 };
  configFetches = 0;

  constructor(private readonly admin = false) {}

  async start(): Promise<this> {
    const { Publisher, Subscriber } = services();
    this.server.addService(Publisher.service, {
      Publish: (call: grpc.ServerUnaryCall<PublishRequest, PublishResponse>, callback: grpc.sendUnaryData<PublishResponse>) => {
        this.publishes.push(call.request);
        void Promise.resolve(this.onPublish(call.request)).then((answer) => {
          if ('code' in answer) callback({ code: answer.code, details: answer.details });
          else callback(null, call.request.compact_results && !this.oldNode ? compactIfAllOk(answer) : answer);
        });
      },
    });
    this.server.addService(Subscriber.service, {
      Subscribe: (call: ServerStream) => {
        const stream = { call, requests: [] as SubscribeRequest[], ended: false };
        this.streams.push(stream);
        call.on('data', (r: SubscribeRequest) => stream.requests.push(r));
        call.on('end', () => {
          stream.ended = true;
          call.end();
        });
        call.on('error', () => {});
        this.onSubscribe(stream);
      },
    });
    if (this.admin) {
      this.server.addService(adminService().service, {
        GetClientConfig: (_call: unknown, callback: grpc.sendUnaryData<GetClientConfigResponse>) => {
          this.configFetches++;
          callback(null, { settings: this.clientSettings, refresh_interval: this.refreshInterval });
        },
      });
    }
    const port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    this.endpoint = `127.0.0.1:${port}`;
    return this;
  }

  stop(): void {
    this.server.forceShutdown();
  }
}

/** The record timestamp the fake gives a message at `offset`: 1.7e12 ms + offset. */
export const timestampMsAt = (offset: number) => 1_700_000_000_000 + offset;

/** Every message of `request` OK, at consecutive offsets of partition 0. */
export function ok(request: PublishRequest, node: { nextOffset: number }): PublishResponse {
  return {
    results: request.messages.map((m) => {
      const offset = node.nextOffset++;
      const ms = timestampMsAt(offset);
      return {
        status: { code: 0, message: '', retryable: false }, cluster: 'main', partition: 0,
        offset, id: m.id, timestamp: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 },
      };
    }),
  };
}

/** What ferryd sends for `answer` when the request set compact_results. */
function compactIfAllOk(answer: PublishResponse): PublishResponse {
  const results = answer.results ?? [];
  if (answer.compact || results.length === 0 || results.some((r) => (r.status?.code ?? 0) !== 0)) return answer;
  return {
    results: [],
    compact: {
      cluster: results[0].cluster, partitions: results.map((r) => r.partition), offsets: results.map((r) => r.offset),
      timestamps_ms: results.map((r) => (r.timestamp ? r.timestamp.seconds * 1000 + r.timestamp.nanos / 1e6 : 0)),
    },
  };
}

/** Ends a Subscribe stream with an error status, as a node does. */
export function failStream(call: ServerStream, code: grpc.status, details: string): void {
  call.emit('error', { code, details });
}

/** A received message as the node would send it. */
export function received(n: number, fields: Partial<ReceivedMessage> = {}): ReceivedMessage {
  return {
    receipt: Buffer.from(`r-${n}`), topic: 't', partition: 0, offset: n, key: Buffer.alloc(0),
    value: Buffer.from(`m-${n}`), headers: [], publish_time: null, delivery_attempt: 1, cluster: 'main', id: `id-${n}`,
    ...fields,
  };
}

/** Resolves when `condition` holds, polling every 5 ms; fails after `ms`. */
export async function until(condition: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
