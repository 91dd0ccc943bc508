/**
 * When reconciles run: a change after a quiet spell runs at once, changes
 * that arrive while one runs are picked up by the next, at most one
 * reconcile starts per coalescing window, a failure is retried with backoff,
 * and a periodic resync checks the interface beside the reconciles (a
 * reconcile re-reads and repairs it only when the check finds drift).
 * Nothing runs before {@linkcode ReconcileScheduler.start} (the first
 * complete list). Time runs on an injected {@linkcode Clock}.
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
  /** Coalescing window in milliseconds: the least time from one reconcile's end to the next's start. */
  readonly windowMs: number;
  /** Resync this often, in milliseconds; 0 disables. */
  readonly resyncMs: number;
  /** Delays before retrying a failed reconcile. */
  readonly retryBackoff: BackoffOptions;
  /** Told each reconcile's result and duration. */
  readonly observer: AgentObserver;
  /** One reconcile; returns the plan applied (empty when nothing changed). */
  readonly reconcile: () => Promise<Plan>;
  /** Asks for a re-read of the interface at the next reconcile. */
  readonly reread: () => void;
  /**
   * The resync's check, run beside the reconciles: true when the interface
   * holds what was applied; false (or a throw) makes the next reconcile
   * re-read and repair it.
   */
  readonly verify: () => Promise<boolean>;
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
  #verifying: Promise<void> | undefined;
  /** When the last reconcile ended (clock time); undefined before the first. */
  #lastEnd: number | undefined;
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

  /**
   * Checks the interface beside the reconciles (one check at a time); when
   * it finds drift, or fails, a reconcile re-reads the interface at once and
   * repairs it.
   */
  resync(): void {
    if (this.#stopped || !this.#started || this.#verifying) return;
    const clock = this.#o.clock;
    const started = clock.now();
    this.#verifying = this.#o.verify().then(
      (clean) => clean ? undefined : "the interface differs from what was applied",
      (err: Error) => `the check failed: ${err.message}`,
    ).then((why) => {
      this.#verifying = undefined;
      const result = why === undefined
        ? "clean"
        : why.startsWith("the check failed")
        ? "error"
        : "drift";
      this.#o.observer.resynced(result, (clock.now() - started) / 1000);
      if (why === undefined || this.#stopped) return;
      log.info("resync: {why}; re-reading the interface", { why });
      this.#o.reread();
      this.schedule(0);
    });
  }

  /**
   * A reconcile after `delay` ms, or after the running one. By default at
   * once, unless the last reconcile ended less than the coalescing window
   * ago: then when the window has passed. Nothing before {@linkcode start}
   * or after {@linkcode stop}.
   */
  schedule(delay?: number): void {
    if (this.#stopped || !this.#started) return;
    if (this.#running) {
      this.#dirty = true;
      return;
    }
    if (this.#timer !== undefined) return;
    const clock = this.#o.clock;
    const wait = delay ??
      (this.#lastEnd === undefined
        ? 0
        : Math.max(0, this.#lastEnd + this.#o.windowMs - clock.now()));
    this.#timer = clock.setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#reconcile().finally(() => {
        this.#running = undefined;
        this.#lastEnd = clock.now();
        if (this.#dirty) {
          this.#dirty = false;
          this.schedule();
        }
      });
    }, wait);
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
    const pending = [this.#running, this.#verifying].filter((p) => p !== undefined);
    if (pending.length === 0) return;
    const grace = clock.setTimeout(() => {
      log.info("ip still runs {grace}ms after the stop; stopping it", { grace: options.graceMs });
      options.interrupt();
    }, options.graceMs);
    try {
      await Promise.all(pending);
    } finally {
      clock.clearTimeout(grace);
    }
  }
}
