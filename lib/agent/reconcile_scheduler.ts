/**
 * When reconciles run: a burst of changes within the coalescing window
 * becomes one reconcile, changes that arrive while one runs are picked up by
 * the next, a failure is retried with backoff, and a periodic resync re-reads
 * the interface. Nothing runs before {@linkcode ReconcileScheduler.start}
 * (the first complete list). Time runs on an injected {@linkcode Clock}.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { Backoff, type BackoffOptions } from "../base/backoff.ts";
import type { Clock, TimerId } from "../base/clock.ts";
import { InterruptedError, type Plan } from "../kernel/address_store.ts";
import type { AgentObserver } from "./observer.ts";
import { isEmptyPlan } from "./plan.ts";

const log = getLogger(["kube-gw", "reconciler"]);

/** Options for {@linkcode ReconcileScheduler}. */
export interface ReconcileSchedulerOptions {
  readonly clock: Clock;
  /** Coalescing window in milliseconds. */
  readonly windowMs: number;
  /** Resync this often, in milliseconds; 0 disables. */
  readonly resyncMs: number;
  /** Delays before retrying a failed reconcile. */
  readonly retryBackoff: BackoffOptions;
  /** Told each reconcile's result and duration. */
  readonly observer: AgentObserver;
  /** One reconcile; returns the plan applied (empty when nothing changed). */
  readonly reconcile: () => Promise<Plan>;
  /** Asks for a re-read of the interface at the next reconcile (the resync). */
  readonly reread: () => void;
}

/** Runs reconciles: coalesced, one at a time, retried, resynced. */
export class ReconcileScheduler {
  readonly #o: ReconcileSchedulerOptions;
  readonly #retry: Backoff;
  #started = false;
  #stopped = false;
  #timer: TimerId | undefined;
  #resyncTimer: TimerId | undefined;
  #running: Promise<void> | undefined;
  #dirty = false;
  /** Undefined before the first reconcile; then the last one's error, or null. */
  #lastError: string | null | undefined;

  constructor(options: ReconcileSchedulerOptions) {
    this.#o = options;
    this.#retry = new Backoff(options.retryBackoff);
  }

  /** Whether {@linkcode start} was called. */
  get started(): boolean {
    return this.#started;
  }

  /** Undefined before the first reconcile ended; then the last one's error, or null. */
  get lastError(): string | null | undefined {
    return this.#lastError;
  }

  /** From now on reconciles run: the first at once. Starts the periodic resync. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    if (this.#o.resyncMs > 0) {
      this.#resyncTimer = this.#o.clock.setInterval(() => this.resync(), this.#o.resyncMs);
    }
    this.schedule(0);
  }

  /** Re-reads the interface at the next reconcile, which runs at once, and repairs any drift. */
  resync(): void {
    this.#o.reread();
    this.schedule(0);
  }

  /**
   * A reconcile after `delay` ms (the coalescing window unless told), or after
   * the running one; nothing before {@linkcode start} or after {@linkcode stop}.
   */
  schedule(delay: number = this.#o.windowMs): void {
    if (this.#stopped || !this.#started) return;
    if (this.#running) {
      this.#dirty = true;
      return;
    }
    if (this.#timer !== undefined) return;
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#reconcile().finally(() => {
        this.#running = undefined;
        if (this.#dirty) {
          this.#dirty = false;
          this.schedule();
        }
      });
    }, delay);
  }

  async #reconcile(): Promise<void> {
    const clock = this.#o.clock;
    const started = clock.now();
    const seconds = () => (clock.now() - started) / 1000;
    try {
      const applied = await this.#o.reconcile();
      this.#lastError = null;
      this.#retry.reset();
      this.#o.observer.reconciled(isEmptyPlan(applied) ? "noop" : "changed", seconds());
    } catch (err) {
      this.#lastError = (err as Error).message;
      this.#o.observer.reconciled("error", seconds());
      const interrupted = err instanceof InterruptedError;
      if (this.#stopped) {
        // A stop is not an error: what `ip` left half done is read at the next start.
        if (interrupted) log.info("stopped while ip ran; the next start re-reads the interface");
        else log.info("stopped; the last reconcile failed: {error}", { error: this.#lastError });
        return;
      }
      const delay = this.#retry.next();
      // A signal that killed `ip` is most often a stop on its way (systemd signals the whole
      // unit at once): say so only if no stop came before the retry.
      if (!interrupted) {
        log.error("reconcile failed: {error}; retrying in {delay}ms", {
          error: this.#lastError,
          delay,
        });
      }
      if (this.#timer === undefined) {
        this.#timer = clock.setTimeout(() => {
          this.#timer = undefined;
          if (interrupted) {
            log.warn("the last reconcile was interrupted: {error}; retrying now", {
              error: (err as Error).message,
            });
          }
          this.schedule(0);
        }, delay);
      }
    }
  }

  /**
   * Stops scheduling and waits for a running reconcile to finish: after
   * `graceMs` it is interrupted (`interrupt` stops its `ip`).
   */
  async stop(options: { graceMs: number; interrupt: () => void }): Promise<void> {
    this.#stopped = true;
    const clock = this.#o.clock;
    clock.clearTimeout(this.#timer);
    clock.clearInterval(this.#resyncTimer);
    const running = this.#running;
    if (!running) return;
    const grace = clock.setTimeout(() => {
      log.info("ip still runs {grace}ms after the stop; stopping it", { grace: options.graceMs });
      options.interrupt();
    }, options.graceMs);
    try {
      await running;
    } finally {
      clock.clearTimeout(grace);
    }
  }
}
