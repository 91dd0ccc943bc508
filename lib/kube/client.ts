/**
 * A small Kubernetes API client for LIST, WATCH and plain JSON requests, on
 * Deno's fetch with the TLS material of an {@linkcode ApiConnection}.
 * Responses are parsed and handed over one object at a time; nothing is
 * cached here.
 *
 * Every request goes through one place (`#send`), which owns the connection:
 * - timeouts: no response headers within 30 s (a connect that never
 *   completes, a server that never answers) fails the request; a LIST must
 *   end within 60 s; Deno's fetch has no connect timeout, so a timer aborts it;
 * - a fresh `Deno.HttpClient` (new connections) after a connection-level
 *   error, a timeout, a broken watch stream or a stalled watch; the old one
 *   is closed once its last request ends;
 * - a liveness probe: Deno's fetch sends no HTTP/2 pings, so while watches
 *   are open a cheap `GET /version` goes over the same client every 30 s with
 *   a 15 s timeout, unless a watch read data on it within those 30 s (as
 *   client-go pings only an idle connection); an answer proves the connection
 *   alive (the watches on it are current), no answer replaces the client and
 *   ends every watch on it;
 * - credentials: the token is looked up per request (its source re-reads
 *   token files at most every minute) and re-read at once on 401; repeated
 *   401/403 are logged once and reported ({@linkcode KubeApi.authProblem});
 * - `Retry-After` of 429 and 503 is carried on the {@linkcode ApiError}.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ApiConnection } from "./kubeconfig.ts";
import type { JsonMethod } from "./ports.ts";
import type { ApiObserver } from "../agent/observer.ts";
export type { ApiObserver } from "../agent/observer.ts";
import { systemClock } from "../base/system_clock.ts";
import { ApiError, statusReasons } from "./errors.ts";
import { type Clock, type TimerId } from "../base/clock.ts";
import { type ListWatchApi, type Query, type WatchEvent } from "./ports.ts";

export { ApiError, type Query, type WatchEvent };

const log = getLogger(["kube-gw", "api"]);

function withQuery(base: string, path: string, query: Query): string {
  const url = new URL(base + path);
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined) url.searchParams.set(k, String(v));
  }
  return url.toString();
}

/** The message of a Status body, its reason and causes, or the start of the text. */
function statusOf(status: number, body: string): {
  message: string;
  reason?: string;
  causes: string[];
} {
  try {
    const s = JSON.parse(body) as { message?: unknown };
    const why = statusReasons(s);
    if (typeof s.message === "string") return { message: s.message.slice(0, 300), ...why };
    return { message: `HTTP ${status}`, ...why };
  } catch {
    // Not a Status object.
  }
  return { message: body.trim().slice(0, 200) || `HTTP ${status}`, causes: [] };
}

/** The longest `Retry-After` kept: 10 minutes (the engine caps what it honours lower). */
const MAX_RETRY_AFTER_MS = 600_000;

/**
 * A `Retry-After` header in milliseconds: delay-seconds or an HTTP date;
 * undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | null, nowMs = Date.now()): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d{1,9}$/.test(v)) return Math.min(Number(v) * 1000, MAX_RETRY_AFTER_MS);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.min(Math.max(0, at - nowMs), MAX_RETRY_AFTER_MS);
}

/**
 * The longest line of a watch stream kube-gw reads: 16 MiB. One line is one
 * event holding one object; the API server refuses requests over 3 MiB and
 * etcd stores objects up to about 1.5 MiB, so a real Service is far below
 * this. A longer line (a hostile or broken server) aborts the stream with
 * {@linkcode WatchLineTooLong}, before it is held in memory.
 */
export const MAX_WATCH_LINE_BYTES = 16 * 1024 * 1024;

/** A line of a watch stream exceeded the bound; the watch is restarted. */
export class WatchLineTooLong extends ApiError {
  constructor(readonly limit: number) {
    super(
      `a watch event is longer than ${limit} bytes (kube-gw's bound on one event; the API server keeps objects under 3 MiB): stream aborted`,
    );
    this.name = "WatchLineTooLong";
  }
}

const NEWLINE = 0x0a;
const lineDecoder = new TextDecoder();

function concat(parts: readonly Uint8Array[], size: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Bytes read at once from a watch stream, into one buffer reused for the stream's life. */
const READ_BUFFER_BYTES = 64 * 1024;

/**
 * The chunks of a byte stream, read into one reused buffer (a BYOB reader),
 * or as the stream hands them out when it is not a byte stream. Each chunk is
 * valid only until the next is asked for. Without this, Deno allocates a
 * fresh 64 KiB buffer for every chunk of a fetch body, however small: one per
 * watch event, gigabytes of short-lived memory outside the V8 heap.
 */
async function* chunksOf(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  let reader: ReadableStreamBYOBReader;
  try {
    reader = body.getReader({ mode: "byob" });
  } catch {
    yield* body;
    return;
  }
  let buffer = new Uint8Array(READ_BUFFER_BYTES);
  try {
    while (true) {
      const { value, done } = await reader.read(buffer);
      if (done || !value) return;
      yield value;
      buffer = new Uint8Array(value.buffer);
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * Reads a watch stream as JSON lines; a seam kept pure for tests. Linear in
 * the stream's length: each byte is looked at once for a newline and copied
 * at most once.
 *
 * @param maxLineBytes the longest line accepted. @default MAX_WATCH_LINE_BYTES (16 MiB)
 * @throws {WatchLineTooLong} as soon as a line grows past `maxLineBytes`.
 * @throws {SyntaxError} on a line that is not JSON.
 */
export async function* jsonLines(
  body: ReadableStream<Uint8Array>,
  onChunk?: () => void,
  maxLineBytes = MAX_WATCH_LINE_BYTES,
): AsyncGenerator<unknown> {
  let parts: Uint8Array[] = [];
  let size = 0;
  const line = (last: Uint8Array): string => {
    if (size + last.length > maxLineBytes) throw new WatchLineTooLong(maxLineBytes);
    parts.push(last);
    const bytes = concat(parts, size + last.length);
    parts = [];
    size = 0;
    // A line ends at a newline byte, which never splits a UTF-8 sequence.
    return lineDecoder.decode(bytes).trim();
  };
  for await (const chunk of chunksOf(body)) {
    onChunk?.();
    let start = 0;
    let nl: number;
    while ((nl = chunk.indexOf(NEWLINE, start)) >= 0) {
      const text = line(chunk.subarray(start, nl));
      start = nl + 1;
      if (text) yield JSON.parse(text);
    }
    if (start < chunk.length) {
      size += chunk.length - start;
      if (size > maxLineBytes) throw new WatchLineTooLong(maxLineBytes);
      parts.push(chunk.slice(start)); // the reader reuses its buffer: keep a copy
    }
  }
  const rest = line(new Uint8Array(0));
  if (rest) yield JSON.parse(rest);
}

/** TLS verification of the API server failed: a CA or name problem, not a dead server. */
export class ApiTlsError extends ApiError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, undefined, options);
    this.name = "ApiTlsError";
  }
}

/** The innermost message of an error chain, without the request URL fetch puts in front. */
function innermost(err: unknown): string {
  let e = err as { message?: unknown; cause?: unknown } | undefined;
  let text = "";
  for (let depth = 0; e && depth < 8; depth++) {
    if (typeof e.message === "string" && e.message) text = e.message;
    e = e.cause as typeof e;
  }
  return text.replace(/^error sending request for url \([^)]*\): /, "");
}

const TLS_PROBLEM = /certificate|UnknownIssuer|NotValidForName|handshake|\btls\b/i;

/** Tells a TLS verification failure (naming the CA source) from a connection failure. */
function connectError(conn: ApiConnection, cause: unknown): ApiError {
  const detail = innermost(cause);
  if (TLS_PROBLEM.test(detail)) {
    const ca = conn.caSource ?? "the system's CA store";
    return new ApiTlsError(
      `TLS verification of ${conn.server} failed (${detail}): the server's certificate is not signed by a CA in ${ca}, or is not issued for this host name`,
      { cause },
    );
  }
  return new ApiError(`Cannot reach ${conn.server}: ${detail}`, undefined, { cause });
}

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
  readonly createHttpClient?: (
    options: Parameters<typeof Deno.createHttpClient>[0],
  ) => Deno.HttpClient;
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

/** One `Deno.HttpClient` and the requests in flight on it. */
interface Generation {
  readonly id: number;
  readonly client: Deno.HttpClient;
  inflight: number;
  retired: boolean;
  readonly created: number;
  /** When a watch on it last read data (the probe is skipped within a period of it). */
  lastRead: number;
}

/** An open watch, for the probe. */
interface OpenWatch {
  readonly gen: Generation;
  readonly current?: () => void;
  readonly abort: (reason: ApiError) => void;
}

/** More watches than this on one connection get a line in the log. */
const MANY_WATCHES = 50;

/** A reset asked for within this long of the client's creation is already done. */
const RESET_GRACE_MS = 5_000;

/** LIST, WATCH and JSON requests against one API server. */
export class KubeApi implements ListWatchApi {
  readonly #conn: ApiConnection;
  readonly #clock: Clock;
  readonly #headersTimeoutMs: number;
  readonly #listTimeoutMs: number;
  readonly #probeIntervalMs: number;
  readonly #probeTimeoutMs: number;
  readonly #probePath: string;
  readonly #observer?: ApiObserver;
  readonly #fetch: typeof fetch;
  readonly #createClient: (options: Parameters<typeof Deno.createHttpClient>[0]) => Deno.HttpClient;
  #gen: Generation;
  #generations = 0;
  readonly #watches = new Set<OpenWatch>();
  #probeTimer: TimerId | undefined;
  #probing = false;
  #manyWarned = false;
  #authStreak = 0;
  #authLast: string | undefined;
  #closed = false;

  constructor(conn: ApiConnection, options: KubeApiOptions = {}) {
    this.#conn = conn;
    this.#clock = options.clock ?? systemClock;
    this.#headersTimeoutMs = options.headersTimeoutMs ?? 30_000;
    this.#listTimeoutMs = options.listTimeoutMs ?? 60_000;
    this.#probeIntervalMs = options.probeIntervalMs ?? 30_000;
    this.#probeTimeoutMs = options.probeTimeoutMs ?? 15_000;
    this.#probePath = options.probePath ?? "/version";
    this.#observer = options.observer;
    this.#fetch = options.fetch ?? fetch;
    this.#createClient = options.createHttpClient ?? Deno.createHttpClient;
    this.#gen = this.#newGeneration();
  }

  /** Where the API server is. */
  get server(): string {
    return this.#conn.server;
  }

  /** How many HTTP clients (sets of connections) were made so far. */
  get clientsCreated(): number {
    return this.#generations;
  }

  /**
   * Why the API server refuses kube-gw, while its last answers were 401 or
   * 403 (and none succeeded since); undefined otherwise. For `/readyz`.
   */
  get authProblem(): string | undefined {
    return this.#authStreak > 0 ? this.#authLast : undefined;
  }

  #newGeneration(): Generation {
    const client = this.#createClient({
      caCerts: this.#conn.caCerts ? [...this.#conn.caCerts] : undefined,
      cert: this.#conn.cert,
      key: this.#conn.key,
    });
    return {
      id: ++this.#generations,
      client,
      inflight: 0,
      retired: false,
      created: this.#clock.now(),
      lastRead: -Infinity,
    };
  }

  /** Retires `gen` (if it is still the current one): new requests get a new client. */
  #replace(gen: Generation, reason: string, detail: string): void {
    if (gen !== this.#gen || this.#closed) return;
    this.#gen = this.#newGeneration();
    this.#retire(gen);
    this.#observer?.connectionReplaced(reason);
    log.info("new connection to {server} for the next requests ({detail})", {
      server: this.#conn.server,
      detail,
    });
  }

  #retire(gen: Generation): void {
    gen.retired = true;
    if (gen.inflight === 0) gen.client.close();
  }

  #release(gen: Generation): void {
    gen.inflight--;
    if (gen.retired && gen.inflight === 0) gen.client.close();
  }

  /**
   * The connection looks dead (a watch went silent): new requests go over a
   * new connection, unless one was made in the last 5 s (by another watch's
   * report, or an error).
   */
  reset(why: string): void {
    if (this.#clock.now() - this.#gen.created < RESET_GRACE_MS) return;
    this.#replace(this.#gen, "stall", why);
  }

  #headers(): Headers {
    const h = new Headers({ accept: "application/json" });
    const token = this.#conn.token?.();
    if (token) h.set("authorization", `Bearer ${token}`);
    else if (this.#conn.basic) h.set("authorization", `Basic ${btoa(this.#conn.basic)}`);
    return h;
  }

  #authFailed(status: number, what: string): void {
    this.#observer?.authFailed(status);
    this.#authStreak++;
    this.#authLast = `the API server refuses kube-gw's credentials: ${what}`;
    if (this.#authStreak === 1) {
      log.warn(
        "{server} answers {status}: {what} (logged once until a request succeeds; see /readyz and kubegw_api_auth_failures_total)",
        { server: this.#conn.server, status, what },
      );
    }
  }

  #authOk(): void {
    if (this.#authStreak > 0) {
      log.info("{server} accepts kube-gw's credentials again", { server: this.#conn.server });
    }
    this.#authStreak = 0;
    this.#authLast = undefined;
  }

  /**
   * Sends one request over the current client and resolves with its response
   * once the headers arrived (an error status is thrown as {@linkcode ApiError}).
   * `headersMs` bounds the wait for the headers; `totalMs`, if given, the whole
   * request: the returned `done` must be called when the body was read.
   */
  async #send(
    method: string,
    path: string,
    init: {
      query?: Query;
      body?: string;
      contentType?: string;
      headersMs: number;
      totalMs?: number;
      retried?: boolean;
      /** The reason a timeout reports when it replaces the client. @default "timeout" */
      purpose?: string;
    },
    signal: AbortSignal,
  ): Promise<{ res: Response; gen: Generation; signal: AbortSignal; done: () => void }> {
    const what = `${method} ${path}`;
    let headers: Headers;
    try {
      headers = this.#headers();
    } catch {
      // The TypeError quotes the header value, the secret itself: not kept as the cause.
      throw new ApiError("the credentials cannot be sent in an HTTP header (not shown)");
    }
    if (init.contentType) headers.set("content-type", init.contentType);
    const sentToken = headers.get("authorization");
    const gen = this.#gen;
    const timeout = new AbortController();
    const both = AbortSignal.any([signal, timeout.signal]);
    let timedOut: "headers" | "total" | undefined;
    const headersTimer = this.#clock.setTimeout(() => {
      timedOut = "headers";
      timeout.abort(new ApiError(`${what}: no answer in ${init.headersMs / 1000}s`));
    }, init.headersMs);
    const totalTimer = init.totalMs === undefined ? undefined : this.#clock.setTimeout(() => {
      timedOut ??= "total";
      timeout.abort(new ApiError(`${what}: not complete in ${init.totalMs! / 1000}s`));
    }, init.totalMs);
    gen.inflight++;
    let released = false;
    const done = () => {
      if (released) return;
      released = true;
      this.#clock.clearTimeout(headersTimer);
      this.#clock.clearTimeout(totalTimer);
      this.#release(gen);
    };
    let res: Response;
    try {
      res = await this.#fetch(withQuery(this.#conn.server, path, init.query ?? {}), {
        method,
        headers,
        body: init.body,
        client: gen.client,
        signal: both,
      });
    } catch (cause) {
      done();
      if (signal.aborted) throw signal.reason ?? cause;
      if (timedOut) {
        this.#replace(
          gen,
          init.purpose ?? "timeout",
          `${what}: no answer in ${init.headersMs / 1000}s`,
        );
        throw new ApiError(
          `${what}: no answer from ${this.#conn.server} in ${init.headersMs / 1000}s`,
          undefined,
          { cause, connection: true },
        );
      }
      const err = connectError(this.#conn, cause);
      if (!(err instanceof ApiTlsError)) this.#replace(gen, "error", err.message);
      throw err;
    } finally {
      this.#clock.clearTimeout(headersTimer);
    }
    if (res.ok) {
      this.#authOk();
      return { res, gen, signal: both, done };
    }
    const body = await res.text().catch(() => "");
    done();
    const st = statusOf(res.status, body);
    if (res.status === 401 && this.#conn.refreshToken && !init.retried) {
      // The token may have been rotated: read it again, and try once more if it changed.
      this.#conn.refreshToken();
      let fresh: string | null = null;
      try {
        fresh = this.#headers().get("authorization");
      } catch { /* unusable: no retry */ }
      if (fresh && fresh !== sentToken) {
        return this.#send(method, path, { ...init, retried: true }, signal);
      }
    }
    if (res.status === 401 || res.status === 403) {
      this.#authFailed(res.status, `${what}: ${res.status} ${st.message}`);
    } else {
      this.#authOk();
    }
    const retryAfterMs = res.status === 429 || res.status === 503
      ? parseRetryAfter(res.headers.get("retry-after"))
      : undefined;
    throw new ApiError(`${what}: ${res.status} ${st.message}`, res.status, {
      reason: st.reason,
      causes: st.causes,
      retryAfterMs,
    });
  }

  /** One page of a LIST: parsed JSON of the whole response, within the LIST timeout. */
  async list(path: string, query: Query, signal: AbortSignal): Promise<Record<string, unknown>> {
    const sent = await this.#send("GET", path, {
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
      this.#replace(sent.gen, timedOut ? "timeout" : "error", `GET ${path}: list broke off`);
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
        {
          cause,
        },
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
    const sent = await this.#send(method, path, {
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
      this.#replace(sent.gen, "timeout", `${method} ${path}: body not complete`);
      throw new ApiError(
        `${method} ${path}: the answer broke off: ${innermost(cause)}`,
        undefined,
        {
          cause,
          connection: true,
        },
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
    const sent = await this.#send("GET", path, {
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
    this.#opened(open);
    const read = () => {
      sent.gen.lastRead = this.#clock.now();
      onData?.();
    };
    try {
      onData?.();
      if (!sent.res.body) return;
      for await (const ev of jsonLines(sent.res.body, read)) {
        const e = ev as Partial<WatchEvent>;
        if (typeof e?.type !== "string" || typeof e.object !== "object" || e.object === null) {
          throw new ApiError(`GET ${path}: malformed watch event`);
        }
        yield e as WatchEvent;
      }
    } catch (cause) {
      if (signal.aborted) throw signal.reason ?? cause;
      if (mine.signal.aborted) throw mine.signal.reason;
      if (cause instanceof ApiError) throw cause;
      // A stream that breaks may be a connection that broke: the next requests get a new one.
      this.#replace(sent.gen, "error", `watch ${path} broke`);
      throw new ApiError(`GET ${path}: watch stream broke: ${innermost(cause)}`, undefined, {
        cause,
        connection: true,
      });
    } finally {
      this.#closedWatch(open);
      sent.done();
      mine.abort();
    }
  }

  #opened(w: OpenWatch): void {
    this.#watches.add(w);
    if (this.#watches.size > MANY_WATCHES && !this.#manyWarned) {
      this.#manyWarned = true;
      log.info(
        "{count} watches are open to {server}: over HTTP/2 they share one connection, and a server allows a bounded number of streams per connection (Go's default 250)",
        { count: this.#watches.size, server: this.#conn.server },
      );
    }
    if (this.#probeTimer === undefined && this.#probeIntervalMs > 0 && !this.#closed) {
      this.#probeTimer = this.#clock.setInterval(() => this.#probe(), this.#probeIntervalMs);
    }
  }

  #closedWatch(w: OpenWatch): void {
    this.#watches.delete(w);
    if (this.#watches.size === 0) {
      this.#clock.clearInterval(this.#probeTimer);
      this.#probeTimer = undefined;
    }
  }

  /**
   * The liveness probe: a cheap GET over the current client. Any answer
   * proves the connection alive, and the watches open on it current; no
   * answer in time (or a connection error) replaces the client and ends
   * every watch on the old one, to be reopened over a new connection.
   */
  async #probe(): Promise<void> {
    if (this.#probing || this.#closed) return;
    const gen = this.#gen;
    if (this.#clock.now() - gen.lastRead < this.#probeIntervalMs) {
      // A watch read data on this client within the period (client-go pings only
      // after 30 s without a read): the connection is alive.
      this.#alive(gen);
      return;
    }
    this.#probing = true;
    try {
      const sent = await this.#send("GET", this.#probePath, {
        headersMs: this.#probeTimeoutMs,
        totalMs: this.#probeTimeoutMs,
        purpose: "probe",
      }, new AbortController().signal);
      await sent.res.body?.cancel().catch(() => {});
      sent.done();
      this.#alive(gen);
    } catch (err) {
      if (err instanceof ApiError && err.status !== undefined) {
        // An HTTP answer, even an error: the connection carries requests.
        this.#alive(gen);
        return;
      }
      const why = `the liveness probe (GET ${this.#probePath}) failed: ${(err as Error).message}`;
      this.#replace(gen, "probe", why);
      const dead = new ApiError(`connection to ${this.#conn.server} is dead: ${why}`, undefined, {
        connection: true,
      });
      for (const w of [...this.#watches]) if (w.gen === gen) w.abort(dead);
    } finally {
      this.#probing = false;
    }
  }

  #alive(gen: Generation): void {
    for (const w of this.#watches) if (w.gen === gen) w.current?.();
  }

  /** Releases the connection pool and stops the probe. */
  close(): void {
    this.#closed = true;
    this.#clock.clearInterval(this.#probeTimer);
    this.#probeTimer = undefined;
    this.#retire(this.#gen);
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
