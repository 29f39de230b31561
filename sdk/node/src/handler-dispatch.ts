// Runs the subscriber's handler on delivered messages: at most `concurrency`
// at once, and serially per chain key (a key in key mode, a partition in
// partition mode), so a key's messages are handled in delivery order.
import { Message } from './message';

export type Handler = (message: Message) => void | Promise<void>;

export interface DispatchOptions {
  concurrency: number;
  /** A handler that returns without settling acks its message (one that throws nacks it). */
  autoAck: boolean;
  /** Messages with the same non-null chain key run one after another. */
  chainKeyOf(message: Message): string | null;
  onHandlerError(error: unknown, message: Message): void;
}

export class HandlerDispatch {
  private running = 0;
  /** Not started, in delivery order. */
  private waiting: Message[] = [];
  /** Chain keys with a running handler -> their messages waiting behind it. */
  private readonly chains = new Map<string, Message[]>();
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly handler: Handler, private readonly options: DispatchOptions) {}

  push(message: Message): void {
    this.waiting.push(message);
    this.pump();
  }

  /** Starts nothing more; returns the messages that were not started (to be nacked). */
  stop(): Message[] {
    this.stopped = true;
    const left = [...this.waiting, ...[...this.chains.values()].flat()];
    this.waiting = [];
    for (const chain of this.chains.values()) chain.length = 0;
    return left;
  }

  /** Resolves when no handler runs. */
  whenIdle(): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (!this.stopped && this.running < this.options.concurrency && this.waiting.length > 0) {
      const message = this.waiting.shift()!;
      if (message.settled) continue; // its stream broke: the node redelivers it
      const key = this.options.chainKeyOf(message);
      if (key !== null) {
        const chain = this.chains.get(key);
        if (chain) {
          chain.push(message);
          continue;
        }
        this.chains.set(key, []);
      }
      this.running++;
      void this.run(message, key);
    }
  }

  private async run(first: Message, key: string | null): Promise<void> {
    for (let message: Message | undefined = first; message; message = this.nextOf(key)) {
      if (message.settled) continue;
      try {
        await this.handler(message);
        if (this.options.autoAck && !message.settled) message.ack();
      } catch (error) {
        message.nack();
        this.options.onHandlerError(error, message);
      }
    }
    if (key !== null) this.chains.delete(key);
    this.running--;
    this.pump();
    if (this.running === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private nextOf(key: string | null): Message | undefined {
    return key === null ? undefined : this.chains.get(key)?.shift();
  }
}
