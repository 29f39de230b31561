// Settings an operator pushes from the nodes (ferry client-settings set,
// ferryd's client.* keys), fetched with Admin.GetClientConfig at start, every
// refresh interval the node names, as soon as a node answers again, and when
// the publisher reconnects to a node.
import * as grpc from '@grpc/grpc-js';
import { AdminClient, ClientSettings, Duration, GetClientConfigResponse, adminService, channelOptions } from './wire';

/** The publisher options the nodes may push (ms and counts). */
export interface Settings {
  linger: number;
  maxBatchMessages: number;
  maxBatchBytes: number;
  requestTimeout: number;
  deliveryTimeout: number;
}

export const SETTING_NAMES: (keyof Settings)[] =
  ['linger', 'maxBatchMessages', 'maxBatchBytes', 'requestTimeout', 'deliveryTimeout'];

const msOf = (d: Duration | null | undefined): number | undefined =>
  d ? Number(d.seconds) * 1000 + Math.floor(d.nanos / 1e6) : undefined;

/** A ClientSettings message as Settings fields; unset ones are absent. */
export function pushedOf(s: ClientSettings | null | undefined): Partial<Settings> {
  if (!s) return {};
  const pushed: Partial<Settings> = {
    linger: msOf(s.linger),
    maxBatchMessages: Number(s.max_batch_messages) || undefined,
    maxBatchBytes: Number(s.max_batch_bytes) || undefined,
    requestTimeout: msOf(s.request_timeout),
    deliveryTimeout: msOf(s.delivery_timeout),
  };
  for (const name of SETTING_NAMES) if (pushed[name] === undefined) delete pushed[name];
  return pushed;
}

/**
 * Per setting: the application's own (`explicit`), else the pushed one, else
 * the SDK default.
 */
export function effectiveSettings(defaults: Settings, explicit: Partial<Settings>, pushed: Partial<Settings>): Settings {
  const s = { ...defaults };
  for (const name of SETTING_NAMES) s[name] = explicit[name] ?? pushed[name] ?? defaults[name];
  return s;
}

/** Bounds how often the configuration is fetched; tests lower it. */
export const timing = { minRefresh: 1000, retryDelay: 1000, fetchTimeout: 5000 };

/**
 * Asks the nodes for their configuration until stop(); hands each answer's
 * settings to `apply`. A node answering UNIMPLEMENTED (older ferryd) ends
 * it: the SDK keeps its own settings. Its timers do not keep the process
 * alive.
 */
export class SettingsFetcher {
  private readonly clients: AdminClient[];
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private fetching = false;
  private lastFetch = 0;

  constructor(targets: string[], credentials: grpc.ChannelCredentials, options: grpc.ChannelOptions | undefined,
              private readonly apply: (pushed: Partial<Settings>) => void) {
    const Admin = adminService();
    this.clients = targets.map((t) => new Admin(t, credentials, channelOptions(options)));
    void this.fetch();
  }

  /**
   * A node answered the publisher after a call to it had failed: the settings
   * may have changed meanwhile. Fetches now, or minRefresh after the last
   * fetch if that was sooner (a flapping node reconnects often).
   */
  reconnected(): void {
    if (this.stopped || this.fetching || !this.timer) return; // a fetch is under way, or ended for good
    clearTimeout(this.timer);
    const wait = Math.max(0, this.lastFetch + timing.minRefresh - Date.now());
    this.timer = setTimeout(() => void this.fetch(), wait);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const client of this.clients) client.close();
  }

  private async fetch(): Promise<void> {
    this.fetching = true;
    this.lastFetch = Date.now();
    try {
      await this.fetchRound();
    } finally {
      this.fetching = false;
    }
  }

  private async fetchRound(): Promise<void> {
    let delay = timing.retryDelay;
    for (const client of this.clients) {
      if (this.stopped) return;
      const result = await new Promise<{ error: grpc.ServiceError | null; response?: GetClientConfigResponse }>((resolve) =>
        client.GetClientConfig({ topics: [] }, { deadline: Date.now() + timing.fetchTimeout },
          (error, response) => resolve({ error, response })));
      if (this.stopped) return;
      if (!result.error) {
        this.apply(pushedOf(result.response!.settings));
        delay = Math.max(msOf(result.response!.refresh_interval) ?? 0, timing.minRefresh);
        break;
      }
      const code = result.error.code;
      if (code === grpc.status.UNIMPLEMENTED) {
        this.timer = null; // ends it: reconnects do not ask again either
        return;
      }
      if (code !== grpc.status.UNAVAILABLE && code !== grpc.status.DEADLINE_EXCEEDED) break;
    }
    this.timer = setTimeout(() => void this.fetch(), delay);
    this.timer.unref();
  }
}
