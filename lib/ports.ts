/**
 * The interfaces the core needs from the world, and their small types: the
 * address store (iproute2), the list-watch API (the Kubernetes API server),
 * the clock, and kube-proxy's health. Adapters implement them (`iproute2.ts`, `kube_api.ts`,
 * `system_clock.ts`); tests fake them (`test/support/`). Nothing here does I/O.
 *
 * @module
 */

import type { HealthState } from "./agent/kube_proxy_health.ts";

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

/**
 * Reads and changes the addresses of one interface. Once `signal` aborts, a
 * running call stops its process and rejects with {@linkcode InterruptedError}.
 */
export interface AddressStore {
  /** Every address on the interface. */
  read(signal?: AbortSignal): Promise<InterfaceAddress[]>;
  /** Applies a plan; on failure the interface may hold part of it. */
  apply(plan: Plan, signal?: AbortSignal): Promise<void>;
  /**
   * Renews the lifetime of addresses already held (`--address-lifetime`), in
   * one run, without removing any; a store without a lifetime makes them
   * permanent. Optional: stores without lifetimes may leave it out.
   */
  renew?(addresses: Iterable<string>): Promise<void>;
}

/**
 * The store's process ended by a signal before it finished: a stop (kube-gw's
 * own, or systemd's SIGTERM to the whole unit), or someone killed it. The
 * interface may hold part of the plan; it is read again before the next one.
 */
export class InterruptedError extends Error {
  constructor(message: string, readonly signal: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "InterruptedError";
  }
}

/** One event of a watch stream, as the API server sent it. */
export interface WatchEvent {
  readonly type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  readonly object: Record<string, unknown>;
}

/** Query parameters; undefined values are left out. */
export type Query = Record<string, string | number | boolean | undefined>;

/** What an {@linkcode ApiError} may carry beyond its message and status. */
export interface ApiErrorOptions extends ErrorOptions {
  /** How long the server asked the client to wait (`Retry-After`), in milliseconds. */
  readonly retryAfterMs?: number;
  /** The `Status` object's `reason`, e.g. `Expired`, `Timeout`. */
  readonly reason?: string;
  /** The `reason`s of the `Status` object's `details.causes`. */
  readonly causes?: readonly string[];
  /** The connection itself failed (refused, reset, timed out), not the request. */
  readonly connection?: boolean;
}

/** An HTTP or API-level failure, with the status code when there was one. */
export class ApiError extends Error {
  readonly retryAfterMs?: number;
  readonly reason?: string;
  readonly causes: readonly string[];
  readonly connection: boolean;

  constructor(message: string, readonly status?: number, options?: ApiErrorOptions) {
    super(message, options);
    this.name = "ApiError";
    this.retryAfterMs = options?.retryAfterMs;
    this.reason = options?.reason;
    this.causes = options?.causes ?? [];
    this.connection = options?.connection ?? false;
  }

  /** The resource version asked for is gone (410): relist. */
  get gone(): boolean {
    return this.status === 410;
  }

  /**
   * The resource version asked for is newer than the server's (504
   * `ResourceVersionTooLarge`, as after an etcd restore): relist, as
   * client-go's reflector does.
   */
  get tooLarge(): boolean {
    return this.status === 504 &&
      (this.causes.includes("ResourceVersionTooLarge") ||
        /too large resource version/i.test(this.message));
  }

  /** The server refused the credentials (401) or the permission (403). */
  get auth(): boolean {
    return this.status === 401 || this.status === 403;
  }
}

/** The `reason` and the `details.causes[].reason`s of a Status object, read defensively. */
export function statusReasons(body: unknown): { reason?: string; causes: string[] } {
  const s = (typeof body === "object" && body !== null ? body : {}) as {
    reason?: unknown;
    details?: { causes?: unknown };
  };
  const causes = Array.isArray(s.details?.causes) ? s.details.causes : [];
  return {
    reason: typeof s.reason === "string" ? s.reason.slice(0, 100) : undefined,
    causes: causes.flatMap((c) =>
      typeof c === "object" && c !== null && typeof (c as { reason?: unknown }).reason === "string"
        ? [String((c as { reason: string }).reason).slice(0, 100)]
        : []
    ).slice(0, 8),
  };
}

/**
 * LIST and WATCH of one collection. Both throw {@linkcode ApiError} for API
 * trouble, and the signal's reason once it aborts.
 */
export interface ListWatchApi {
  /** One page of a LIST: the parsed JSON of the whole response. */
  list(path: string, query: Query, signal: AbortSignal): Promise<Record<string, unknown>>;
  /**
   * The events of one WATCH; `onData` runs on every chunk, bookmarks included;
   * `onCurrent` runs when the client proved the watch's connection alive
   * another way (a liveness probe over the same connection).
   */
  watch(
    path: string,
    query: Query,
    signal: AbortSignal,
    onData?: () => void,
    onCurrent?: () => void,
  ): AsyncIterable<WatchEvent>;
  /**
   * The connection looks dead (a watch went silent): new requests should go
   * over a new connection. Optional; a no-op for fakes.
   */
  reset?(why: string): void;
}

/** A timer handle of a {@linkcode Clock}: opaque, only handed back to it. */
export type TimerId = number | object;

/**
 * Time, as the core sees it: a monotonic `now()` in milliseconds and timers.
 * The real clock is `systemClock` (lib/base/system_clock.ts); tests use a fake one.
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
