/**
 * The HTTP clients behind the API client, and the timeouts of each request
 * over them. A `Deno.HttpClient` is one set of connections; after a
 * connection-level error, a timeout, a broken watch stream, a stalled watch
 * or an unanswered liveness probe, new requests get a fresh one (a new
 * {@linkcode Generation}) and the old one is closed once its last request
 * ends. Deno's fetch has no connect timeout, so timers abort a request whose
 * headers, or whole answer, take too long.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ApiConnection } from "./kubeconfig.ts";
import type { ApiObserver } from "./observer.ts";
import { ApiError } from "./errors.ts";
import type { Clock, TimerId } from "../base/clock.ts";

const log = getLogger(["kube-gw", "api"]);

/** Makes a `Deno.HttpClient`; a seam for unit tests. */
export type CreateHttpClient = (
  options: Parameters<typeof Deno.createHttpClient>[0],
) => Deno.HttpClient;

/** One `Deno.HttpClient` and the requests in flight on it. */
export interface Generation {
  readonly id: number;
  readonly client: Deno.HttpClient;
  inflight: number;
  retired: boolean;
  readonly created: number;
  /** When a watch on it last read data (the probe is skipped within a period of it). */
  lastRead: number;
}

/** A reset asked for within this long of the client's creation is already done. */
const RESET_GRACE_MS = 5_000;

/** The time limits of one request. */
export interface RequestLimits {
  /** No response headers within this long aborts the request. */
  readonly headersMs: number;
  /** The whole request, body included, must end within this long; unbounded when absent. */
  readonly totalMs?: number;
}

/**
 * One request in flight on a {@linkcode Generation}, under its time limits.
 * `done` must be called once the answer was read (or the request failed):
 * it stops the timers and releases the client.
 */
export class InFlight {
  readonly gen: Generation;
  /** The caller's signal, or a timeout. */
  readonly signal: AbortSignal;
  readonly #clock: Clock;
  readonly #release: (gen: Generation) => void;
  #timedOut: "headers" | "total" | undefined;
  readonly #headersTimer: TimerId;
  readonly #totalTimer: TimerId | undefined;
  #released = false;

  constructor(
    gen: Generation,
    what: string,
    limits: RequestLimits,
    signal: AbortSignal,
    clock: Clock,
    release: (gen: Generation) => void,
  ) {
    this.gen = gen;
    this.#clock = clock;
    this.#release = release;
    const timeout = new AbortController();
    this.signal = AbortSignal.any([signal, timeout.signal]);
    this.#headersTimer = clock.setTimeout(() => {
      this.#timedOut = "headers";
      timeout.abort(new ApiError(`${what}: no answer in ${limits.headersMs / 1000}s`));
    }, limits.headersMs);
    const totalMs = limits.totalMs;
    this.#totalTimer = totalMs === undefined ? undefined : clock.setTimeout(() => {
      this.#timedOut ??= "total";
      timeout.abort(new ApiError(`${what}: not complete in ${totalMs / 1000}s`));
    }, totalMs);
    gen.inflight++;
  }

  /** Whether a time limit aborted the request. */
  get timedOut(): boolean {
    return this.#timedOut !== undefined;
  }

  /** The headers arrived (or the fetch failed): their time limit no longer applies. */
  answered(): void {
    this.#clock.clearTimeout(this.#headersTimer);
  }

  /** The request ended: stops its timers and releases its client; idempotent. */
  done(): void {
    if (this.#released) return;
    this.#released = true;
    this.#clock.clearTimeout(this.#headersTimer);
    this.#clock.clearTimeout(this.#totalTimer);
    this.#release(this.gen);
  }
}

/** Options of {@linkcode Connections}. */
export interface ConnectionsOptions {
  readonly clock: Clock;
  readonly createHttpClient: CreateHttpClient;
  /** Told when the connection is replaced. */
  readonly observer?: ApiObserver;
}

/** The current HTTP client to one API server, replaced when it looks dead. */
export class Connections {
  readonly #conn: ApiConnection;
  readonly #clock: Clock;
  readonly #create: CreateHttpClient;
  readonly #observer?: ApiObserver;
  #current: Generation;
  #made = 0;
  #closed = false;

  constructor(conn: ApiConnection, options: ConnectionsOptions) {
    this.#conn = conn;
    this.#clock = options.clock;
    this.#create = options.createHttpClient;
    this.#observer = options.observer;
    this.#current = this.#newGeneration();
  }

  /** The client new requests go over. */
  get current(): Generation {
    return this.#current;
  }

  /** Starts one request over the current client, under `limits`. */
  begin(what: string, limits: RequestLimits, signal: AbortSignal): InFlight {
    return new InFlight(this.#current, what, limits, signal, this.#clock, (gen) => {
      gen.inflight--;
      if (gen.retired && gen.inflight === 0) gen.client.close();
    });
  }

  /**
   * Retires `gen` (if it is still the current one): new requests get a new
   * client; the old one closes once its last request ended.
   *
   * @param reason for the observer: `error`, `timeout`, `probe`, `stall`.
   * @param detail for the log.
   */
  replace(gen: Generation, reason: string, detail: string): void {
    if (gen !== this.#current || this.#closed) return;
    this.#current = this.#newGeneration();
    this.#retire(gen);
    this.#observer?.connectionReplaced(reason);
    log.info("new connection to {server} for the next requests ({detail})", {
      server: this.#conn.server,
      detail,
    });
  }

  /**
   * The connection looks dead (a watch went silent): new requests go over a
   * new connection, unless one was made in the last 5 s (by another watch's
   * report, or an error).
   */
  reset(why: string): void {
    if (this.#clock.now() - this.#current.created < RESET_GRACE_MS) return;
    this.replace(this.#current, "stall", why);
  }

  /** No more replacements; the current client closes once its requests ended. */
  close(): void {
    this.#closed = true;
    this.#retire(this.#current);
  }

  #newGeneration(): Generation {
    const client = this.#create({
      caCerts: this.#conn.caCerts ? [...this.#conn.caCerts] : undefined,
      cert: this.#conn.cert,
      key: this.#conn.key,
    });
    return {
      id: ++this.#made,
      client,
      inflight: 0,
      retired: false,
      created: this.#clock.now(),
      lastRead: -Infinity,
    };
  }

  #retire(gen: Generation): void {
    gen.retired = true;
    if (gen.inflight === 0) gen.client.close();
  }
}
