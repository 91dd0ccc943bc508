/**
 * The renewal loop of `--address-lifetime`: every third of the lifetime (on
 * the injected {@linkcode Clock}) it asks for one renewal of the held
 * addresses, which the reconciler runs as one `ip -batch` of `address replace`
 * lines, never beside a plan. A failure is logged once until a renewal
 * succeeds again, and every renewal is reported to the observer.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type AgentObserver, quietObserver } from "./observer.ts";
import { type AddressStore } from "../kernel/address_store.ts";
import { type Clock, sleep } from "../base/clock.ts";

const log = getLogger(["kube-gw", "renewer"]);

/** Options for {@linkcode Renewer}. */
export interface RenewerOptions {
  /** One renewal; resolves with the number of addresses renewed (`Reconciler.renew`). */
  readonly renew: () => Promise<number>;
  /** Between the starts of two renewals: `renewalIntervalMs(lifetime)`. */
  readonly intervalMs: number;
  /** The lifetime in seconds, for the log. */
  readonly lifetimeSeconds: number;
  readonly clock: Clock;
  /** @default quietObserver */
  readonly observer?: AgentObserver;
}

/** Renews address lifetimes at a fixed interval until stopped. */
export class Renewer {
  readonly #o: RenewerOptions;
  readonly #observer: AgentObserver;
  #ok = 0;
  #failed = 0;
  #failing = false;

  constructor(options: RenewerOptions) {
    this.#o = options;
    this.#observer = options.observer ?? quietObserver;
  }

  /** Renewals that succeeded. */
  get renewals(): number {
    return this.#ok;
  }

  /** Renewals that failed. */
  get failures(): number {
    return this.#failed;
  }

  /**
   * Renews at once (so a restart, or a first start with the option, gives
   * the addresses already held a full lifetime), then every interval, until
   * `signal` aborts; resolves then, after a renewal in flight ends.
   */
  async run(signal: AbortSignal): Promise<void> {
    const clock = this.#o.clock;
    log.info("renewing address lifetimes of {lifetime}s every {interval}ms", {
      lifetime: this.#o.lifetimeSeconds,
      interval: this.#o.intervalMs,
    });
    let next = clock.now();
    while (!signal.aborted) {
      try {
        await sleep(clock, Math.max(0, next - clock.now()), signal);
      } catch {
        break;
      }
      next += this.#o.intervalMs;
      // Late (a long renewal, a suspended process): start over from now, do not catch up.
      if (next <= clock.now()) next = clock.now() + this.#o.intervalMs;
      await this.#renewOnce();
    }
  }

  async #renewOnce(): Promise<void> {
    const clock = this.#o.clock;
    const started = clock.now();
    try {
      const count = await this.#o.renew();
      this.#ok++;
      this.#observer.renewed("ok", (clock.now() - started) / 1000);
      if (this.#failing) {
        this.#failing = false;
        log.info("renewing address lifetimes works again ({count} addresses)", { count });
      } else {
        log.debug("renewed {count} address lifetimes", { count });
      }
    } catch (err) {
      this.#failed++;
      this.#observer.renewed("error", (clock.now() - started) / 1000);
      if (!this.#failing) {
        this.#failing = true;
        log.warn(
          "cannot renew address lifetimes; the kernel removes the addresses {lifetime}s after their last renewal: {error}",
          { lifetime: this.#o.lifetimeSeconds, error: (err as Error).message },
        );
      }
    }
  }
}

/**
 * With `--address-lifetime` off: makes permanent the managed addresses that
 * still carry a lifetime from a run with the option (they would expire, and
 * come back only at the next resync). One store run, only when there are any.
 * Call before anything is planned. Returns how many were made permanent.
 */
export async function makePermanent(
  store: AddressStore,
  managed: ReadonlySet<string>,
): Promise<number> {
  if (!store.renew) return 0;
  const expiring = (await store.read()).filter((a) => a.expires && managed.has(a.local))
    .map((a) => a.local);
  if (expiring.length === 0) return 0;
  log.warn(
    "{count} managed addresses carry a lifetime (--address-lifetime is off now): making them permanent",
    { count: expiring.length },
  );
  try {
    await store.renew(expiring);
  } catch (err) {
    log.warn("cannot make the addresses permanent; they expire: {error}", {
      error: (err as Error).message,
    });
    return 0;
  }
  return expiring.length;
}
