/**
 * The controller's work queue: keys (Services) waiting to be decided, and the
 * workers that decide them. Pure but for the injected {@linkcode Clock}.
 *
 * - A key queued while it waits is queued once, with the time it was first
 *   queued (for the latency metric).
 * - Keys are taken oldest first, by at most `concurrency` workers; one key is
 *   never processed twice at once: a key queued again while it is processed
 *   waits for that to end, then is processed again.
 * - A key can be queued again later after a backoff of its own
 *   ({@linkcode WorkQueue.retryLater}), which grows until the key
 *   {@linkcode WorkQueue.succeeded}.
 * - The queue works only between {@linkcode WorkQueue.start} and
 *   {@linkcode WorkQueue.stop} (a leader term): stopped, it queues nothing,
 *   forgets what waits and what would be retried.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { Backoff } from "../base/backoff.ts";
import type { Clock, TimerId } from "../base/clock.ts";

const log = getLogger(["kube-gw", "controller"]);

/** Options of {@linkcode WorkQueue}. */
export interface WorkQueueOptions {
  readonly clock: Clock;
  /**
   * Processes one key. `queuedAt`: clock time (ms) at which the key was
   * queued; `signal`: the one given to {@linkcode WorkQueue.start}. An error
   * is logged, unless the signal has aborted.
   */
  readonly process: (key: string, queuedAt: number, signal: AbortSignal) => Promise<void>;
  /** Keys processed at once. @default 16 */
  readonly concurrency?: number;
  /** Delay before a key given to {@linkcode WorkQueue.retryLater} is queued again. @default 1 s doubling to 30 s */
  readonly retry?: { readonly initialMs: number; readonly maxMs: number };
}

/** Keys to process, by a few workers, one key at a time. */
export class WorkQueue {
  readonly #o: WorkQueueOptions;
  readonly #concurrency: number;
  /** Queued key → when it was queued (clock ms); in queue order. */
  readonly #queue = new Map<string, number>();
  /** Keys a worker is processing now. */
  readonly #inFlight = new Set<string>();
  readonly #retries = new Map<string, { timer: TimerId; backoff: Backoff }>();
  /** The signal of the current run; `undefined` when stopped. */
  #signal: AbortSignal | undefined;
  #workers = 0;
  #idleWaiters: (() => void)[] = [];

  constructor(options: WorkQueueOptions) {
    this.#o = options;
    this.#concurrency = options.concurrency ?? 16;
  }

  /** Starts working; `signal` is passed to each {@linkcode WorkQueueOptions.process}. */
  start(signal: AbortSignal): void {
    this.#signal = signal;
  }

  /**
   * Stops working: forgets queued keys and pending retries. Keys being
   * processed finish (the caller aborts their signal); no worker takes another.
   */
  stop(): void {
    this.#signal = undefined;
    this.#queue.clear();
    for (const r of this.#retries.values()) this.#o.clock.clearTimeout(r.timer);
    this.#retries.clear();
  }

  /** Queues `key` (once, however often it is added before it is taken). Ignored when stopped. */
  add(key: string): void {
    if (!this.#signal) return;
    if (!this.#queue.has(key)) this.#queue.set(key, this.#o.clock.now());
    this.#kick();
  }

  /** Queues `key` again after its backoff, which grows with each call; returns the delay (ms). */
  retryLater(key: string): number {
    const clock = this.#o.clock;
    const r = this.#retries.get(key) ??
      { timer: 0, backoff: new Backoff(this.#o.retry ?? { initialMs: 1000, maxMs: 30_000 }) };
    clock.clearTimeout(r.timer);
    const delay = r.backoff.next();
    r.timer = clock.setTimeout(() => this.add(key), delay);
    this.#retries.set(key, r);
    return delay;
  }

  /** Cancels the retry of `key`, if any, and starts its backoff over. */
  succeeded(key: string): void {
    const retry = this.#retries.get(key);
    if (retry) this.#o.clock.clearTimeout(retry.timer);
    this.#retries.delete(key);
  }

  /** Resolves once nothing is queued or being processed (for tests and benchmarks). */
  idle(): Promise<void> {
    if (this.#workers === 0 && (this.#queue.size === 0 || !this.#signal)) return Promise.resolve();
    return new Promise((r) => this.#idleWaiters.push(r));
  }

  #kick(): void {
    const signal = this.#signal;
    if (!signal) return;
    // Not `queue.size > inFlight.size`: a key in flight is usually not queued, and that test
    // would leave a new key waiting behind a slow one while workers are free.
    while (this.#workers < this.#concurrency) {
      const key = this.#nextKey();
      if (key === undefined) break;
      this.#workers++;
      void this.#work(key, signal);
    }
  }

  /**
   * The oldest queued key that no worker is processing now. Skips at most
   * `concurrency` keys (those in flight that were queued again).
   */
  #nextKey(): string | undefined {
    for (const key of this.#queue.keys()) if (!this.#inFlight.has(key)) return key;
    return undefined;
  }

  /** One worker: processes keys until none is free or the run ends. */
  async #work(first: string, signal: AbortSignal): Promise<void> {
    let key: string | undefined = first;
    try {
      while (key !== undefined && this.#signal === signal) {
        const queuedAt = this.#queue.get(key)!;
        this.#queue.delete(key);
        this.#inFlight.add(key);
        try {
          await this.#o.process(key, queuedAt, signal);
        } catch (err) {
          if (signal.aborted) break;
          log.error("deciding {key} failed: {error}", { key, error: (err as Error).message });
        } finally {
          this.#inFlight.delete(key);
        }
        key = this.#nextKey();
      }
    } finally {
      this.#workers--;
      if (this.#queue.size > 0 && this.#signal) this.#kick();
      if (this.#workers === 0) { for (const w of this.#idleWaiters.splice(0)) w(); }
    }
  }
}
