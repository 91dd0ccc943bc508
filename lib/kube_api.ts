/**
 * A small Kubernetes API client for LIST and WATCH, on Deno's fetch with the
 * TLS material of an {@linkcode ApiConnection}. Responses are parsed and
 * handed over one object at a time; nothing is cached here.
 *
 * @module
 */

import type { ApiConnection } from "./kubeconfig.ts";
import { ApiError, type ListWatchApi, type Query, type WatchEvent } from "./ports.ts";

export { ApiError, type Query, type WatchEvent };

function withQuery(base: string, path: string, query: Query): string {
  const url = new URL(base + path);
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined) url.searchParams.set(k, String(v));
  }
  return url.toString();
}

function statusMessage(status: number, body: string): string {
  try {
    const s = JSON.parse(body) as { message?: unknown; reason?: unknown };
    if (typeof s.message === "string") return s.message;
  } catch {
    // Not a Status object.
  }
  return body.trim().slice(0, 200) || `HTTP ${status}`;
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

/** LIST and WATCH against one API server. */
export class KubeApi implements ListWatchApi {
  readonly #conn: ApiConnection;
  readonly #client: Deno.HttpClient;

  constructor(conn: ApiConnection) {
    this.#conn = conn;
    this.#client = Deno.createHttpClient({
      caCerts: conn.caCerts ? [...conn.caCerts] : undefined,
      cert: conn.cert,
      key: conn.key,
    });
  }

  /** Where the API server is. */
  get server(): string {
    return this.#conn.server;
  }

  #headers(): Headers {
    const h = new Headers({ accept: "application/json" });
    const token = this.#conn.token?.();
    if (token) h.set("authorization", `Bearer ${token}`);
    else if (this.#conn.basic) h.set("authorization", `Basic ${btoa(this.#conn.basic)}`);
    return h;
  }

  async #get(path: string, query: Query, signal: AbortSignal): Promise<Response> {
    let res: Response;
    let headers: Headers;
    try {
      headers = this.#headers();
    } catch {
      // The TypeError quotes the header value, the secret itself: not kept as the cause.
      throw new ApiError("the credentials cannot be sent in an HTTP header (not shown)");
    }
    try {
      res = await fetch(withQuery(this.#conn.server, path, query), {
        headers,
        client: this.#client,
        signal,
      });
    } catch (cause) {
      if (signal.aborted) throw signal.reason ?? cause;
      throw connectError(this.#conn, cause);
    }
    if (!res.ok) {
      const body = await res.text().catch(() => "");
      throw new ApiError(
        `GET ${path}: ${res.status} ${statusMessage(res.status, body)}`,
        res.status,
      );
    }
    return res;
  }

  /** One page of a LIST: parsed JSON of the whole response. */
  async list(path: string, query: Query, signal: AbortSignal): Promise<Record<string, unknown>> {
    const res = await this.#get(path, query, signal);
    try {
      return await res.json();
    } catch (cause) {
      if (signal.aborted) throw signal.reason ?? cause;
      throw new ApiError(
        `GET ${path}: cannot read the list: ${(cause as Error).message}`,
        undefined,
        {
          cause,
        },
      );
    }
  }

  /**
   * Opens a WATCH and yields its events. `onData` runs on every chunk, so a
   * caller can tell a live but quiet stream from a stalled one.
   */
  async *watch(
    path: string,
    query: Query,
    signal: AbortSignal,
    onData?: () => void,
  ): AsyncGenerator<WatchEvent> {
    const res = await this.#get(path, { ...query, watch: true }, signal);
    onData?.();
    if (!res.body) return;
    try {
      for await (const ev of jsonLines(res.body, onData)) {
        const e = ev as Partial<WatchEvent>;
        if (typeof e?.type !== "string" || typeof e.object !== "object" || e.object === null) {
          throw new ApiError(`GET ${path}: malformed watch event`);
        }
        yield e as WatchEvent;
      }
    } catch (cause) {
      if (signal.aborted) throw signal.reason ?? cause;
      if (cause instanceof ApiError) throw cause;
      throw new ApiError(
        `GET ${path}: watch stream broke: ${(cause as Error).message}`,
        undefined,
        {
          cause,
        },
      );
    }
  }

  /** Releases the connection pool. */
  close(): void {
    this.#client.close();
  }

  // --- JSON requests (the LoadBalancer controller's writes; issue 11) ---

  /**
   * One JSON request (GET, POST, PUT, or PATCH as a merge patch) to `path`;
   * resolves with the parsed response body.
   *
   * @throws {ApiError} with the HTTP status for any answer but 2xx (409 is a
   *   failed resourceVersion precondition, 404 a missing object), or without
   *   one when the server cannot be reached.
   */
  async request(
    method: "GET" | "POST" | "PUT" | "PATCH",
    path: string,
    body: unknown,
    signal: AbortSignal,
  ): Promise<unknown> {
    let headers: Headers;
    try {
      headers = this.#headers();
    } catch {
      throw new ApiError("the credentials cannot be sent in an HTTP header (not shown)");
    }
    if (body !== undefined) {
      headers.set(
        "content-type",
        method === "PATCH" ? "application/merge-patch+json" : "application/json",
      );
    }
    let res: Response;
    try {
      res = await fetch(this.#conn.server + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        client: this.#client,
        signal,
      });
    } catch (cause) {
      if (signal.aborted) throw signal.reason ?? cause;
      throw connectError(this.#conn, cause);
    }
    const text = await res.text().catch(() => "");
    if (!res.ok) {
      throw new ApiError(
        `${method} ${path}: ${res.status} ${statusMessage(res.status, text)}`,
        res.status,
      );
    }
    try {
      return text ? JSON.parse(text) : undefined;
    } catch (cause) {
      throw new ApiError(`${method} ${path}: the answer is not JSON`, undefined, { cause });
    }
  }
}
