/**
 * The interfaces the core needs from the world, and their small types: the
 * address store (iproute2), the list-watch API (the Kubernetes API server),
 * the clock, and kube-proxy's health. Adapters implement them (`iproute2.ts`, `kube_api.ts`,
 * `system_clock.ts`); tests fake them (`test/support/`). Nothing here does I/O.
 *
 * @module
 */

import type { HealthState } from "./proxy_health.ts";

/** One address as read from the interface. */
export interface InterfaceAddress {
  readonly family: 4 | 6;
  readonly local: string;
  readonly prefixlen: number;
  /** The address has a finite lifetime (`--address-lifetime`, or added so by hand). */
  readonly expires?: boolean;
}

/** What to change on the interface. Addresses are canonical texts. */
export interface Plan {
  readonly add: readonly string[];
  readonly remove: readonly string[];
}

/** Reads and changes the addresses of one interface. */
export interface AddressStore {
  /** Every address on the interface. */
  read(): Promise<InterfaceAddress[]>;
  /** Applies a plan; on failure the interface may hold part of it. */
  apply(plan: Plan): Promise<void>;
  /**
   * Renews the lifetime of addresses already held (`--address-lifetime`), in
   * one run, without removing any; a store without a lifetime makes them
   * permanent. Optional: stores without lifetimes may leave it out.
   */
  renew?(addresses: Iterable<string>): Promise<void>;
}

/** One event of a watch stream, as the API server sent it. */
export interface WatchEvent {
  readonly type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  readonly object: Record<string, unknown>;
}

/** Query parameters; undefined values are left out. */
export type Query = Record<string, string | number | boolean | undefined>;

/** An HTTP or API-level failure, with the status code when there was one. */
export class ApiError extends Error {
  constructor(message: string, readonly status?: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "ApiError";
  }

  /** The resource version asked for is gone (410): relist. */
  get gone(): boolean {
    return this.status === 410;
  }
}

/**
 * LIST and WATCH of one collection. Both throw {@linkcode ApiError} for API
 * trouble, and the signal's reason once it aborts.
 */
export interface ListWatchApi {
  /** One page of a LIST: the parsed JSON of the whole response. */
  list(path: string, query: Query, signal: AbortSignal): Promise<Record<string, unknown>>;
  /** The events of one WATCH; `onData` runs on every chunk, bookmarks included. */
  watch(
    path: string,
    query: Query,
    signal: AbortSignal,
    onData?: () => void,
  ): AsyncIterable<WatchEvent>;
}

/** A timer handle of a {@linkcode Clock}: opaque, only handed back to it. */
export type TimerId = number | object;

/**
 * Time, as the core sees it: a monotonic `now()` in milliseconds and timers.
 * The real clock is `systemClock` (lib/system_clock.ts); tests use a fake one.
 */
export interface Clock {
  /** Milliseconds on a monotonic scale (only differences mean anything). */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerId;
  clearTimeout(id: TimerId | undefined): void;
  setInterval(fn: () => void, ms: number): TimerId;
  clearInterval(id: TimerId | undefined): void;
}

/** Resolves after `ms` on `clock`, or rejects with the signal's reason once it aborts. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clock.clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * kube-proxy's health as the agent reads it (the poller of
 * `--kube-proxy-health`): it runs until its signal aborts and reports every
 * change of state.
 */
export interface HealthSource {
  /** Polls until `signal` aborts; never rejects for a failed poll. */
  run(signal: AbortSignal): Promise<void>;
  /** The state now (before the first poll: the initial state). */
  readonly state: HealthState;
}

/** What a {@linkcode HealthSource} is built from. */
export interface HealthSourceOptions {
  /** The health endpoint (validated). */
  readonly url: string;
  readonly clock: Clock;
  /** The interface held managed addresses at start (a restart, not a boot). */
  readonly startedWithAddresses: boolean;
  /** Called on every change of state. */
  onChange(state: HealthState): void;
}

/** Builds the {@linkcode HealthSource} for `--kube-proxy-health` (the adapter's constructor). */
export type HealthSourceFactory = (options: HealthSourceOptions) => HealthSource;
