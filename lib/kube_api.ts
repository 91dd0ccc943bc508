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

/** Reads a watch stream as JSON lines; a seam kept pure for tests. */
export async function* jsonLines(
  body: ReadableStream<Uint8Array>,
  onChunk?: () => void,
): AsyncGenerator<unknown> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of body) {
    onChunk?.();
    buffered += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line) yield JSON.parse(line);
    }
  }
  const rest = (buffered + decoder.decode()).trim();
  if (rest) yield JSON.parse(rest);
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
    try {
      res = await fetch(withQuery(this.#conn.server, path, query), {
        headers: this.#headers(),
        client: this.#client,
        signal,
      });
    } catch (cause) {
      if (signal.aborted) throw signal.reason ?? cause;
      throw new ApiError(
        `Cannot reach ${this.#conn.server}: ${(cause as Error).message}`,
        undefined,
        {
          cause,
        },
      );
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
}
