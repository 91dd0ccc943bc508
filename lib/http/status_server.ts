/**
 * The HTTP listener for `/metrics`, `/healthz`, `/readyz` and `/status` (why
 * each address is announced or withheld, as JSON).
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { type ListenAddress } from "../base/flags.ts";

/** What the status server reports. */
export interface StatusSource {
  /** Prometheus text and its content type. */
  metrics(): Promise<{ body: string; contentType: string }>;
  /** `undefined` when ready, else why not. */
  notReady(): string | undefined;
  /**
   * Said after `ok` on a ready `/readyz`, e.g. that the announce gate is open
   * only because kube-proxy's health is unknown.
   */
  readyNote?(): string | undefined;
  /** Milliseconds since the agent's loop last ticked. */
  sinceTick(): number;
  /** What `/status` serves as JSON; without it `/status` is 404. */
  status?(): unknown;
}

/** Answers one request; pure routing, exported for tests. */
export async function handleStatus(req: Request, src: StatusSource): Promise<Response> {
  const path = new URL(req.url).pathname;
  if (req.method !== "GET" && req.method !== "HEAD") {
    return new Response("method not allowed\n", { status: 405 });
  }
  switch (path) {
    case "/metrics": {
      const m = await src.metrics();
      return new Response(m.body, { headers: { "content-type": m.contentType } });
    }
    case "/healthz": {
      const age = src.sinceTick();
      return age < 10_000
        ? new Response("ok\n")
        : new Response(`loop stalled for ${Math.round(age)}ms\n`, { status: 503 });
    }
    case "/readyz": {
      const why = src.notReady();
      if (why !== undefined) return new Response(`${why}\n`, { status: 503 });
      const note = src.readyNote?.();
      return new Response(note ? `ok: ${note}\n` : "ok\n");
    }
    case "/status":
      if (src.status) {
        return new Response(`${JSON.stringify(src.status())}\n`, {
          headers: { "content-type": "application/json" },
        });
      }
      return new Response("not found\n", { status: 404 });
    default:
      return new Response("not found\n", { status: 404 });
  }
}

/** The status listener cannot be opened; the message names the setting and its value. */
export class ListenError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ListenError";
  }
}

function listenProblem(err: unknown): string {
  if (err instanceof Deno.errors.AddrInUse) {
    return "the port is already in use by another process: choose another port, or off";
  }
  if (err instanceof Deno.errors.AddrNotAvailable) {
    return "the address is not on any interface of this host: use a local address such as 127.0.0.1";
  }
  if (err instanceof Deno.errors.PermissionDenied) {
    return `permission denied (${(err as Error).message})`;
  }
  return (err as Error).message;
}

/**
 * Starts the listener; resolves with the bound port.
 *
 * @throws {ListenError} naming `at.source` and the address when it cannot be bound.
 */
export function serveStatus(
  at: ListenAddress,
  src: StatusSource,
  signal: AbortSignal,
): Promise<{ port: number; finished: Promise<void> }> {
  let bound = 0;
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: at.hostname,
      port: at.port,
      signal,
      onListen: ({ port }) => bound = port,
      onError: () => new Response("internal error\n", { status: 500 }),
    }, (req) => handleStatus(req, src));
  } catch (cause) {
    const host = at.hostname.includes(":") ? `[${at.hostname}]` : at.hostname;
    return Promise.reject(
      new ListenError(
        `${at.source}: cannot listen on ${host}:${at.port}: ${listenProblem(cause)}`,
        { cause },
      ),
    );
  }
  return Promise.resolve({ port: bound || server.addr.port, finished: server.finished });
}

/** A metrics registry as the status server serves it (the agent's and the controller's). */
export interface RenderedMetrics {
  render(): Promise<string>;
  readonly contentType: string;
}

/**
 * Starts the status server when there is an address to listen on and metrics
 * to serve, and logs where it listens on `log`.
 *
 * @returns the bound port and when the server finished, or `undefined` when not started.
 * @throws {ListenError} as {@linkcode serveStatus}.
 */
export async function startStatusServer(
  at: ListenAddress | undefined,
  metrics: RenderedMetrics | undefined,
  src: Omit<StatusSource, "metrics">,
  signal: AbortSignal,
  log: Logger,
): Promise<{ port: number; finished: Promise<void> } | undefined> {
  if (!at || !metrics) return undefined;
  const status = await serveStatus(at, {
    ...src,
    metrics: async () => ({ body: await metrics.render(), contentType: metrics.contentType }),
  }, signal);
  log.info("serving metrics on {host}:{port}", { host: at.hostname, port: status.port });
  return status;
}
