/**
 * The leader-election loop: every retry period, read the Lease (through
 * `lease_api.ts`), let `decision.ts` decide, write what it says, and tell the
 * controller when it starts or stops leading. A leader that cannot renew
 * stops at its renew deadline by a timer of its own, even while a request
 * hangs, so it stops writing before its Lease can expire.
 * {@linkcode LeaderElector.release} gives the Lease up on a clean stop.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { LeaseClient } from "./lease_api.ts";
import {
  checkTimings,
  DEFAULT_TIMINGS,
  type ElectionState,
  INITIAL_ELECTION,
  type LeaseAction,
  type LeaseTarget,
  type LeaseTimings,
  leaseWritten,
  nextLeaseAction,
  renewDeadlinePassed,
} from "./decision.ts";
import { ApiError } from "../../kube/errors.ts";
import { type Clock, sleep, type TimerId } from "../../base/clock.ts";

const log = getLogger(["kube-gw", "leader"]);

/**
 * A standby's retry period is drawn from [1, 1 + this] times the retry period
 * (2 s to 2.5 s by default): enough to keep candidates apart, and smaller
 * than client-go's jitter of 1.2, so a dead leader is replaced within about
 * the lease duration plus one retry period after the standby saw its last renew.
 */
const STANDBY_RETRY_JITTER = 0.25;

/** Options of {@linkcode LeaderElector}. */
export interface LeaderElectorOptions {
  readonly client: LeaseClient;
  readonly clock: Clock;
  readonly target: LeaseTarget;
  /** @default DEFAULT_TIMINGS (15 s, 10 s, 2 s) */
  readonly timings?: LeaseTimings;
  /** In [0, 1), for the standby's jitter. @default Math.random */
  readonly random?: () => number;
  /** This process now leads and may write. */
  readonly onStartedLeading: () => void;
  /** This process no longer leads and must stop writing at once. */
  readonly onStoppedLeading: (why: "renew_deadline" | "lost" | "released") => void;
}

/** Runs one candidate of the election. */
export class LeaderElector {
  readonly #o: LeaderElectorOptions;
  readonly #timings: LeaseTimings;
  #state: ElectionState = INITIAL_ELECTION;
  #deadline: TimerId | undefined;

  /** @throws {RangeError} when the timings are not client-go's consistent ones (see `checkTimings`). */
  constructor(options: LeaderElectorOptions) {
    this.#o = options;
    this.#timings = options.timings ?? DEFAULT_TIMINGS;
    checkTimings(this.#timings);
  }

  /** Whether this process leads now. */
  get leading(): boolean {
    return this.#state.leading;
  }

  #stop(why: "renew_deadline" | "lost" | "released"): void {
    this.#o.clock.clearTimeout(this.#deadline);
    this.#deadline = undefined;
    if (!this.#state.leading) return;
    this.#state = { ...this.#state, leading: false };
    log.warn("stopped leading ({why}); no more writes", { why });
    this.#o.onStoppedLeading(why);
  }

  #armDeadline(): void {
    const clock = this.#o.clock;
    clock.clearTimeout(this.#deadline);
    this.#deadline = clock.setTimeout(() => {
      if (renewDeadlinePassed(this.#state, clock.now(), this.#timings)) {
        this.#stop("renew_deadline");
      }
    }, this.#timings.renewDeadlineMs);
  }

  /** A signal that aborts with `outer` or after `ms` on the clock. */
  #bounded(outer: AbortSignal, ms: number): { signal: AbortSignal; done: () => void } {
    const local = new AbortController();
    const t = this.#o.clock.setTimeout(
      () => local.abort(new ApiError(`Lease request took over ${ms}ms`)),
      ms,
    );
    return {
      signal: AbortSignal.any([outer, local.signal]),
      done: () => this.#o.clock.clearTimeout(t),
    };
  }

  /** One retry period's work: read, decide, write. Never throws for API trouble. */
  async step(signal: AbortSignal): Promise<void> {
    const { clock, client, target } = this.#o;
    const req = this.#bounded(signal, this.#timings.renewDeadlineMs / 2);
    try {
      const lease = await client.get(req.signal);
      const { action, state } = nextLeaseAction(
        lease,
        this.#state,
        clock.now(),
        target,
        this.#timings,
      );
      if (action.kind === "stop") {
        // #stop tells the controller, once, and ends the term.
        this.#state = { ...state, leading: true };
        this.#stop(action.why);
        return;
      }
      this.#state = state;
      if (action.kind === "create" || action.kind === "acquire" || action.kind === "renew") {
        await this.#write(action, req.signal);
      }
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof ApiError && err.status === 409) {
        log.debug("Lease changed under us; reading it again at the next retry");
      } else {
        log.warn("Lease {namespace}/{name}: {error}", {
          namespace: target.namespace,
          name: target.name,
          error: (err as Error).message,
        });
      }
      if (renewDeadlinePassed(this.#state, clock.now(), this.#timings)) {
        this.#stop("renew_deadline");
      }
    } finally {
      req.done();
    }
  }

  async #write(
    action: LeaseAction & { kind: "create" | "acquire" | "renew" },
    signal: AbortSignal,
  ): Promise<void> {
    const before = this.#state.leading;
    const rv = await this.#o.client.write(
      action.kind === "create" ? "create" : "update",
      action.body,
      signal,
    );
    // The deadline timer may have stopped us while the write was in flight: a renew then
    // does not make us leader again without a fresh decision.
    if (action.kind === "renew" && !this.#state.leading && before) return;
    this.#state = leaseWritten(this.#state, action, this.#o.clock.now(), rv);
    this.#armDeadline();
    if (!before) {
      log.info("became leader as {identity}", { identity: this.#o.target.identity });
      this.#o.onStartedLeading();
    }
  }

  /** Runs until `signal` aborts. Does not release the Lease: call {@linkcode release}. */
  async run(signal: AbortSignal): Promise<void> {
    const random = this.#o.random ?? Math.random;
    while (!signal.aborted) {
      await this.step(signal);
      const base = this.#timings.retryPeriodMs;
      const delay = this.#state.leading ? base : base * (1 + random() * STANDBY_RETRY_JITTER);
      try {
        await sleep(this.#o.clock, delay, signal);
      } catch {
        break;
      }
    }
  }

  /**
   * Stops leading (the controller is told first, so it writes nothing more),
   * then gives the Lease up if this process holds it. Never throws.
   */
  async release(signal: AbortSignal): Promise<void> {
    const held = this.#state.leading;
    this.#stop("released");
    this.#o.clock.clearTimeout(this.#deadline);
    if (!held) return;
    try {
      const lease = await this.#o.client.get(signal);
      const { action } = nextLeaseAction(
        lease,
        { ...this.#state, leading: true },
        this.#o.clock.now(),
        this.#o.target,
        this.#timings,
        { stopping: true },
      );
      if (action.kind === "release") {
        await this.#o.client.write("update", action.body, signal);
        log.info("released the Lease");
      }
    } catch (err) {
      log.warn("cannot release the Lease: {error}", { error: (err as Error).message });
    }
  }
}
