/**
 * One request to the API server, in named steps: the credentials
 * (`credentials.ts`), the time limits and the current HTTP client
 * (`connection.ts`), the fetch, and what a failure means (`errors.ts`). A
 * 401 is retried once when the token re-read differs; a connection-level
 * failure or a timeout moves new requests to a new client. The API
 * operations on top are `client.ts`'s.
 *
 * @module
 */

import type { ApiConnection } from "./kubeconfig.ts";
import type { ApiObserver } from "./observer.ts";
import { answerError, ApiError, ApiTlsError, connectError } from "./errors.ts";
import { Connections, type CreateHttpClient, type Generation, InFlight } from "./connection.ts";
import { Credentials } from "./credentials.ts";
import type { Query } from "./ports.ts";
import type { Clock } from "../base/clock.ts";

/** What {@linkcode Transport.send} is asked to do beyond method and path. */
export interface SendInit {
  readonly query?: Query;
  readonly body?: string;
  readonly contentType?: string;
  /** No response headers within this long fails the request. */
  readonly headersMs: number;
  /** The whole request must end within this long; the caller reads the body. */
  readonly totalMs?: number;
  /** This is the retry after a 401 with a re-read token. */
  readonly retried?: boolean;
  /** The reason a timeout reports when it replaces the client. @default "timeout" */
  readonly purpose?: string;
}

/** A request whose headers arrived with a 2xx status; `done` once its body was read. */
export interface Sent {
  readonly res: Response;
  readonly gen: Generation;
  /** The caller's signal, or a time limit. */
  readonly signal: AbortSignal;
  readonly done: () => void;
}

/** Options of {@linkcode Transport}. */
export interface TransportOptions {
  readonly clock: Clock;
  readonly fetch: typeof fetch;
  readonly createHttpClient: CreateHttpClient;
  /** Told when the credentials are refused and when the connection is replaced. */
  readonly observer?: ApiObserver;
}

function withQuery(base: string, path: string, query: Query): string {
  const url = new URL(base + path);
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined) url.searchParams.set(k, String(v));
  }
  return url.toString();
}

/** Sends requests to one API server over its current HTTP client. */
export class Transport {
  /** The HTTP clients the requests go over. */
  readonly connections: Connections;
  readonly #conn: ApiConnection;
  readonly #fetch: typeof fetch;
  readonly #credentials: Credentials;

  constructor(conn: ApiConnection, options: TransportOptions) {
    this.#conn = conn;
    this.#fetch = options.fetch;
    this.#credentials = new Credentials(conn, options.observer);
    this.connections = new Connections(conn, {
      clock: options.clock,
      createHttpClient: options.createHttpClient,
      observer: options.observer,
    });
  }

  /** Why the API server refuses the credentials, while it does; see `Credentials.problem`. */
  get authProblem(): string | undefined {
    return this.#credentials.problem;
  }

  /**
   * Sends one request over the current client and resolves once the headers
   * of a 2xx answer arrived; the returned `done` must be called when the body
   * was read. Any other answer is thrown as {@linkcode ApiError}, after one
   * retry of a 401 with a re-read token.
   */
  async send(method: string, path: string, init: SendInit, signal: AbortSignal): Promise<Sent> {
    const what = `${method} ${path}`;
    const headers = this.#credentials.headers(init.contentType);
    const req = this.connections.begin(what, init, signal);
    let res: Response;
    try {
      res = await this.#fetch(withQuery(this.#conn.server, path, init.query ?? {}), {
        method,
        headers,
        body: init.body,
        client: req.gen.client,
        signal: req.signal,
      });
    } catch (cause) {
      req.done();
      throw this.#fetchFailed(cause, what, req, init, signal);
    } finally {
      req.answered();
    }
    if (res.ok) {
      this.#credentials.accepted();
      return { res, gen: req.gen, signal: req.signal, done: () => req.done() };
    }
    const body = await res.text().catch(() => "");
    req.done();
    if (res.status === 401 && !init.retried && this.#credentials.renewed(headers)) {
      return this.send(method, path, { ...init, retried: true }, signal);
    }
    const err = answerError(what, res, body);
    if (res.status === 401 || res.status === 403) {
      this.#credentials.refused(res.status, err.message);
    } else this.#credentials.accepted();
    throw err;
  }

  /**
   * What a failed fetch throws: the caller's abort reason; after a time limit,
   * a connection error (the client replaced); else a TLS error, or a
   * connection error (the client replaced).
   */
  #fetchFailed(
    cause: unknown,
    what: string,
    req: InFlight,
    init: SendInit,
    signal: AbortSignal,
  ): unknown {
    if (signal.aborted) return signal.reason ?? cause;
    if (req.timedOut) {
      const seconds = init.headersMs / 1000;
      this.connections.replace(
        req.gen,
        init.purpose ?? "timeout",
        `${what}: no answer in ${seconds}s`,
      );
      return new ApiError(
        `${what}: no answer from ${this.#conn.server} in ${seconds}s`,
        undefined,
        {
          cause,
          connection: true,
        },
      );
    }
    const err = connectError(this.#conn, cause);
    if (!(err instanceof ApiTlsError)) this.connections.replace(req.gen, "error", err.message);
    return err;
  }
}
