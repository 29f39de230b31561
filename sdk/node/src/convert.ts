// Conversions between the SDK's friendly types and the wire shapes.
import { randomUUID } from 'crypto';
import type { OutgoingMessage, Timestamp, WireHeader } from './wire';
import { timestampOf } from './wire';

/** Bytes as the application may give them; strings are UTF-8. */
export type Bytes = Buffer | Uint8Array | string;
/** Headers as a record, or as pairs when a key repeats or order matters. */
export type Headers = Record<string, Bytes> | Array<[string, Bytes]>;

export interface PublishOptions {
  /** Partitioning key (murmur2, as Java producers): same key, same partition, kept in order. */
  key?: Bytes;
  headers?: Headers;
  /** Partition and order by this instead of `key` (the key is still stored). */
  orderingKey?: Bytes;
  /** The message id stored as header `ferry.id`; a random UUID when absent. */
  id?: string;
  /** Record timestamp; the node's clock when absent. */
  timestamp?: Date;
}

export function toBuffer(value: Bytes | undefined | null, what: string): Buffer {
  if (value === undefined || value === null) return Buffer.alloc(0);
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw new TypeError(`${what} must be a Buffer, Uint8Array or string`);
}

function toHeaders(headers: Headers | undefined): WireHeader[] {
  if (!headers) return [];
  const pairs = Array.isArray(headers) ? headers : Object.entries(headers);
  return pairs.map(([key, value]) => {
    if (typeof key !== 'string') throw new TypeError('header names must be strings');
    return { key, value: toBuffer(value, `header ${key}`) };
  });
}

/**
 * The wire message, the bytes it counts against batch and outstanding limits
 * (payload plus a small fixed overhead, as the other SDKs), and its ordering
 * key as a latin1 string (a Map key), or null when it has none.
 */
export function buildMessage(value: Bytes, options: PublishOptions):
    { message: OutgoingMessage; size: number; orderKey: string | null } {
  const key = toBuffer(options.key, 'key');
  const orderingKey = toBuffer(options.orderingKey, 'orderingKey');
  const headers = toHeaders(options.headers);
  if (options.id !== undefined && typeof options.id !== 'string') throw new TypeError('id must be a string');
  const id = options.id ?? randomUUID();
  const timestamp: Timestamp | null = options.timestamp ? timestampOf(options.timestamp) : null;
  const message = { key, value: toBuffer(value, 'value'), headers, ordering_key: orderingKey, id, timestamp };
  const size = key.length + message.value.length + orderingKey.length + id.length + 16 +
    headers.reduce((sum, h) => sum + h.key.length + h.value.length + 4, 0);
  const order = orderingKey.length > 0 ? orderingKey : key;
  return { message, size, orderKey: order.length > 0 ? order.toString('latin1') : null };
}

export function dateOf(timestamp: Timestamp | null | undefined): Date | null {
  if (!timestamp) return null;
  return new Date(Number(timestamp.seconds) * 1000 + Math.floor(timestamp.nanos / 1e6));
}

export function checkEndpoints(endpoints: string | string[]): string[] {
  const list = typeof endpoints === 'string' ? [endpoints] : [...(endpoints ?? [])];
  if (list.length === 0 || !list.every((e) => typeof e === 'string' && e.length > 0)) {
    throw new TypeError("endpoints must be a non-empty list of 'host:port' strings");
  }
  return list;
}

/** Options with undefined values dropped, so they do not override defaults. */
export function stripUndefined<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Partial<T>;
}
