// The wire contract: the package's proto/ferry/v1/*.proto (copied from the
// repository's proto/ at build time) loaded at run time by @grpc/proto-loader,
// and TypeScript shapes for the fields this SDK reads and writes. Decoding
// options: snake_case field names as in the .proto files, int64 as number
// (offsets stay far below 2^53), unset fields filled with their defaults and
// the name of the set oneof field in `request` / `response`.
import * as path from 'path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const PROTO_DIR = path.join(__dirname, '..', '..', 'proto');

export interface WireStatus { code: number; message: string; retryable: boolean }
export interface WireHeader { key: string; value: Buffer }
export interface Timestamp { seconds: number; nanos: number }
export type Duration = Timestamp;

export interface OutgoingMessage {
  key: Buffer; value: Buffer; headers: WireHeader[]; ordering_key: Buffer; id: string;
  timestamp?: Timestamp | null;
}
export interface PublishRequest { topic: string; messages: OutgoingMessage[]; compact_results?: boolean }
export interface PublishResult {
  status: WireStatus | null; cluster: string; partition: number; offset: number; id: string;
  timestamp: Timestamp | null;
}
/** Where each message of a fully written batch went: the i-th entry of each array is the i-th message's. */
export interface CompactPublishResults {
  cluster: string; partitions: number[]; offsets: number[]; timestamps_ms: number[];
}
export interface PublishResponse { results: PublishResult[]; compact?: CompactPublishResults | null }

export interface FlowControl { max_outstanding_messages: number; max_outstanding_bytes: number }
export type Position = { earliest: true } | { latest: true } | { timestamp: Timestamp };
export interface SubscriptionOpen {
  group: string; topics: string[]; ordering: number; ack_deadline: Duration; flow: FlowControl;
  start: Position; filter: string; max_delivery_attempts: number; dead_letter_topic: string;
  client_id: string;
}
export type SubscribeRequest =
  | { open: SubscriptionOpen }
  | { ack: Acks }
  | { nack: { receipts: Buffer[]; delay: Duration } }
  | { extend: { receipts: Buffer[]; deadline: Duration } }
  | { flow: FlowControl };

export interface ReceivedMessage {
  receipt: Buffer; topic: string; partition: number; offset: number; key: Buffer; value: Buffer;
  headers: WireHeader[]; publish_time: Timestamp | null; delivery_attempt: number; cluster: string;
  id: string;
}
export interface ReceiptSpan { run: Buffer; first: number; count: number }
export interface Acks { receipts: Buffer[]; spans?: ReceiptSpan[] }
/** Messages [first_message, first_message + count) of a batch, acked together by a ReceiptSpan. */
export interface ReceiptRun { run: Buffer; first_message: number; count: number }
export interface ReceiptResult { receipt: Buffer; status: WireStatus | null; span?: ReceiptSpan | null }
export interface SubscribeResponse {
  response?: 'opened' | 'messages' | 'receipt_results';
  opened?: { node_id: string; stream_id: string } | null;
  messages?: { messages: ReceivedMessage[]; runs?: ReceiptRun[] } | null;
  receipt_results?: { results: ReceiptResult[] } | null;
}

export type Callback<T> = (error: grpc.ServiceError | null, response?: T) => void;
export interface PublisherClient extends grpc.Client {
  Publish(request: PublishRequest, options: grpc.CallOptions, callback: Callback<PublishResponse>): grpc.ClientUnaryCall;
}
export interface SubscriberClient extends grpc.Client {
  Subscribe(options?: grpc.CallOptions): grpc.ClientDuplexStream<SubscribeRequest, SubscribeResponse>;
}

export interface ClientSettings {
  linger: Duration | null; max_batch_messages: number; max_batch_bytes: number;
  request_timeout: Duration | null; delivery_timeout: Duration | null;
}
export interface GetClientConfigResponse { settings: ClientSettings | null; refresh_interval: Duration | null }
export interface AdminClient extends grpc.Client {
  GetClientConfig(request: { topics: string[] }, options: grpc.CallOptions,
                  callback: Callback<GetClientConfigResponse>): grpc.ClientUnaryCall;
}

export interface ClientConstructor<C> {
  new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions): C;
  /** For servers (the tests' fake node). */
  service: grpc.ServiceDefinition;
}
export interface FerryServices {
  Publisher: ClientConstructor<PublisherClient>;
  Subscriber: ClientConstructor<SubscriberClient>;
}

export const LOADER_OPTIONS: protoLoader.Options = {
  includeDirs: [PROTO_DIR], keepCase: true, longs: Number, enums: Number, defaults: true, oneofs: true,
};

let loaded: FerryServices | undefined;

let admin: ClientConstructor<AdminClient> | undefined;

/** The ferry.v1 Admin service (client configuration), loaded on first use. */
export function adminService(): ClientConstructor<AdminClient> {
  if (!admin) {
    const definition = protoLoader.loadSync(['ferry/v1/admin.proto'], LOADER_OPTIONS);
    const root = grpc.loadPackageDefinition(definition) as unknown as { ferry: { v1: { Admin: ClientConstructor<AdminClient> } } };
    admin = root.ferry.v1.Admin;
  }
  return admin;
}

/** The ferry.v1 services, loaded once. */
export function services(): FerryServices {
  if (!loaded) {
    const definition = protoLoader.loadSync(
      ['ferry/v1/publisher.proto', 'ferry/v1/subscriber.proto'], LOADER_OPTIONS);
    const root = grpc.loadPackageDefinition(definition) as unknown as { ferry: { v1: FerryServices } };
    loaded = root.ferry.v1;
  }
  return loaded;
}

export function durationOf(ms: number): Duration {
  const whole = Math.floor(ms);
  return { seconds: Math.floor(whole / 1000), nanos: (whole % 1000) * 1e6 };
}

export function timestampOf(date: Date): Timestamp {
  return durationOf(date.getTime());
}

/** Channel options shared by both clients; `extra` wins. */
export function channelOptions(extra: grpc.ChannelOptions = {}): grpc.ChannelOptions {
  return {
    'grpc.max_receive_message_length': 64 << 20,
    'grpc.max_send_message_length': 300 << 20,
    'grpc.keepalive_time_ms': 30000,
    'grpc.keepalive_timeout_ms': 10000,
    // gRPC's own reconnect backoff grows to 2 minutes; keep it near ours so a
    // node that is back is used again soon.
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 2000,
    ...extra,
  };
}
