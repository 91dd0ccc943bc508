/**
 * A small Kubernetes API client for LIST, WATCH and plain JSON requests, on
 * Deno's fetch with the TLS material of an {@linkcode ApiConnection}.
 * Responses are parsed and handed over one object at a time; nothing is
 * cached here.
 *
 * Every request goes through one place (`Transport.send`, `transport.ts`),
 * in named steps: the credentials (`credentials.ts`: the token looked up per
 * request, re-read and retried once on 401, refusals reported for
 * {@linkcode KubeApi.authProblem}); the time limits and the HTTP client
 * (`connection.ts`: no response headers within 30 s fails a request, a LIST
 * must end within 60 s, a fresh `Deno.HttpClient` after a connection-level
 * error, a timeout, a broken watch stream or a stalled watch); and the
 * translation of failures (`errors.ts`: TLS problems, `Retry-After` of 429
 * and 503 carried on the {@linkcode ApiError}). While watches are open, a
 * liveness probe (`probe.ts`) proves their connection alive or replaces it;
 * watch streams are read as JSON lines (`watch_stream.ts`).
 *
 * @module
 */

import type { ApiConnection } from "./kubeconfig.ts";
import type { ApiObserver } from "./observer.ts";
import { ApiError, innermost } from "./errors.ts";
import type { CreateHttpClient } from "./connection.ts";
import { Transport } from "./transport.ts";
import { LivenessProbe, type OpenWatch } from "./probe.ts";
import { watchEvents } from "./watch_stream.ts";
import type { JsonApi, JsonMethod, ListWatchApi, Query, WatchEvent } from "./ports.ts";
import { systemClock } from "../base/system_clock.ts";
import type { Clock } from "../base/clock.ts";

/** Timing of the client. Every field has a default; tests shorten them. */
export interface KubeApiOptions {
  /** Timers of timeouts and the liveness probe. @default systemClock */
  readonly clock?: Clock;
  /** No response headers within this long fails a request (the connect timeout). @default 30_000 */
  readonly headersTimeoutMs?: number;
  /** A LIST (headers and body) must end within this long. @default 60_000 */
  readonly listTimeoutMs?: number;
  /** The liveness probe's period while watches are open; 0 disables. @default 30_000 */
  readonly probeIntervalMs?: number;
  /** The liveness probe's timeout. @default 15_000 */
  readonly probeTimeoutMs?: number;
  /** What the probe GETs: needs no RBAC beyond `system:public-info-viewer`. @default "/version" */
  readonly probePath?: string;
  /** Told when the credentials are refused and when the connection is replaced. */
  readonly observer?: ApiObserver;
  /** Seams for unit tests: the fetch and the HTTP client factory. */
  readonly fetch?: typeof fetch;
  readonly createHttpClient?: CreateHttpClient;
}

/** Options of {@linkcode KubeApi.request}. */
export interface RequestOptions {
  readonly query?: Query;
  /** A JSON body: an object is serialized; a string is sent as is. */
  readonly body?: unknown;
  /** @default "application/json" when there is a body */
  readonly contentType?: string;
  /** The whole request, body included, must end within this long. @default headersTimeoutMs */
  readonly timeoutMs?: number;
}

/** LIST, WATCH and JSON requests against one API server. */
export class KubeApi implements ListWatchApi, JsonApi {
  readonly #conn: ApiConnection;
  readonly #clock: Clock;
  readonly #headersTimeoutMs: number;
  readonly #listTimeoutMs: number;
  readonly #transport: Transport;
  readonly #probe: LivenessProbe;

  constructor(conn: ApiConnection, options: KubeApiOptions = {}) {
    this.#conn = conn;
    this.#clock = options.clock ?? systemClock;
    this.#headersTimeoutMs = options.headersTimeoutMs ?? 30_000;
    this.#listTimeoutMs = options.listTimeoutMs ?? 60_000;
    this.#transport = new Transport(conn, {
      clock: this.#clock,
      fetch: options.fetch ?? fetch,
      createHttpClient: options.createHttpClient ?? Deno.createHttpClient,
      observer: options.observer,
    });
    const probePath = options.probePath ?? "/version";
    const probeTimeoutMs = options.probeTimeoutMs ?? 15_000;
    this.#probe = new LivenessProbe({
      clock: this.#clock,
      connections: this.#transport.connections,
      server: conn.server,
      intervalMs: options.probeIntervalMs ?? 30_000,
      path: probePath,
      send: async () => {
        const sent = await this.#transport.send("GET", probePath, {
          headersMs: probeTimeoutMs,
          totalMs: probeTimeoutMs,
          purpose: "probe",
        }, new AbortController().signal);
        await sent.res.body?.cancel().catch(() => {});
        sent.done();
      },
    });
  }

  /** Where the API server is. */
  get server(): string {
    return this.#conn.server;
  }

  /**
   * Why the API server refuses kube-gw, while its last answers were 401 or
   * 403 (and none succeeded since); undefined otherwise. For `/readyz`.
   */
  get authProblem(): string | undefined {
    return this.#transport.authProblem;
  }

  /**
   * The connection looks dead (a watch went silent): new requests go over a
   * new connection, unless one was made in the last 5 s (by another watch's
   * report, or an error).
   */
  reset(why: string): void {
    this.#transport.connections.reset(why);
  }

  /** One page of a LIST: parsed JSON of the whole response, within the LIST timeout. */
  async list(path: string, query: Query, signal: AbortSignal): Promise<Record<string, unknown>> {
    const sent = await this.#transport.send("GET", path, {
      query,
      headersMs: Math.min(this.#headersTimeoutMs, this.#listTimeoutMs),
      totalMs: this.#listTimeoutMs,
    }, signal);
    let text: string;
    try {
      text = await sent.res.text();
    } catch (cause) {
      if (signal.aborted) throw signal.reason ?? cause;
      const timedOut = sent.signal.aborted;
      this.#transport.connections.replace(
        sent.gen,
        timedOut ? "timeout" : "error",
        `GET ${path}: list broke off`,
      );
      throw new ApiError(
        timedOut
          ? `GET ${path}: the list did not complete in ${this.#listTimeoutMs / 1000}s`
          : `GET ${path}: the list broke off: ${innermost(cause)}`,
        undefined,
        { cause, connection: true },
      );
    } finally {
      sent.done();
    }
    try {
      return JSON.parse(text);
    } catch (cause) {
      throw new ApiError(
        `GET ${path}: the list is not JSON: ${(cause as Error).message}`,
        undefined,
        { cause },
      );
    }
  }

  /**
   * One JSON request (GET, POST, PUT, PATCH, DELETE) over the same connection
   * handling as LIST and WATCH: timeouts, a new connection after a
   * connection-level error, the token re-read on 401, `Retry-After` on the
   * error. Resolves with the response, its body already read (so the
   * connection is released); throws {@linkcode ApiError} for an error status.
   */
  async request(
    method: string,
    path: string,
    options: RequestOptions,
    signal: AbortSignal,
  ): Promise<Response> {
    const body = options.body === undefined
      ? undefined
      : typeof options.body === "string"
      ? options.body
      : JSON.stringify(options.body);
    const timeoutMs = options.timeoutMs ?? this.#headersTimeoutMs;
    const sent = await this.#transport.send(method, path, {
      query: options.query,
      body,
      contentType: body === undefined ? undefined : options.contentType ?? "application/json",
      headersMs: timeoutMs,
      totalMs: timeoutMs,
    }, signal);
    try {
      const text = await sent.res.text();
      return new Response(text, { status: sent.res.status, headers: sent.res.headers });
    } catch (cause) {
      if (signal.aborted) throw signal.reason ?? cause;
      this.#transport.connections.replace(
        sent.gen,
        "timeout",
        `${method} ${path}: body not complete`,
      );
      throw new ApiError(
        `${method} ${path}: the answer broke off: ${innermost(cause)}`,
        undefined,
        { cause, connection: true },
      );
    } finally {
      sent.done();
    }
  }

  /**
   * Opens a WATCH and yields its events. `onData` runs on every chunk, so a
   * caller can tell a live but quiet stream from a stalled one; `onCurrent`
   * runs when a liveness probe over the same client was answered.
   */
  async *watch(
    path: string,
    query: Query,
    signal: AbortSignal,
    onData?: () => void,
    onCurrent?: () => void,
  ): AsyncGenerator<WatchEvent> {
    const mine = new AbortController();
    const both = AbortSignal.any([signal, mine.signal]);
    const sent = await this.#transport.send("GET", path, {
      query: { ...query, watch: true },
      headersMs: this.#headersTimeoutMs,
    }, both).catch((err) => {
      if (mine.signal.aborted && !signal.aborted) throw mine.signal.reason;
      throw err;
    });
    const open: OpenWatch = {
      gen: sent.gen,
      current: onCurrent,
      abort: (reason) => mine.abort(reason),
    };
    this.#probe.opened(open);
    const read = () => {
      sent.gen.lastRead = this.#clock.now();
      onData?.();
    };
    try {
      onData?.();
      if (!sent.res.body) return;
      yield* watchEvents(sent.res.body, `GET ${path}`, read);
    } catch (cause) {
      if (signal.aborted) throw signal.reason ?? cause;
      if (mine.signal.aborted) throw mine.signal.reason;
      if (cause instanceof ApiError) throw cause;
      // A stream that breaks may be a connection that broke: the next requests get a new one.
      this.#transport.connections.replace(sent.gen, "error", `watch ${path} broke`);
      throw new ApiError(`GET ${path}: watch stream broke: ${innermost(cause)}`, undefined, {
        cause,
        connection: true,
      });
    } finally {
      this.#probe.closed(open);
      sent.done();
      mine.abort();
    }
  }

  /** Releases the connection pool and stops the probe. */
  close(): void {
    this.#probe.stop();
    this.#transport.connections.close();
  }

  /**
   * One JSON request for the LoadBalancer controller's `JsonApi` (lib/kube/ports.ts):
   * PATCH is a JSON merge patch. Resolves with the parsed response body.
   *
   * @throws {ApiError} with the HTTP status for any answer but 2xx (409 is a
   *   failed resourceVersion precondition, 404 a missing object).
   */
  async json(
    method: JsonMethod,
    path: string,
    body: unknown,
    signal: AbortSignal,
  ): Promise<unknown> {
    const res = await this.request(method, path, {
      body,
      contentType: method === "PATCH" ? "application/merge-patch+json" : "application/json",
    }, signal);
    const text = await res.text();
    try {
      return text ? JSON.parse(text) : undefined;
    } catch (cause) {
      throw new ApiError(`${method} ${path}: the answer is not JSON`, undefined, { cause });
    }
  }
}
