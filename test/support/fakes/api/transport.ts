/**
 * How the fake listens: `Deno.serve` (HTTP/1.1 in clear; over TLS it offers
 * HTTP/2 and HTTP/1.1 by ALPN, as kube-apiserver does), or `node:https` when a
 * client certificate is required (Deno.serve cannot ask for one; HTTP/1.1
 * only). Both run one request handler that answers with a body, a stream, or
 * never; a stream can end cleanly or be cut. Each request carries the id of
 * its connection (the client's address and port).
 *
 * @module
 */

import http from "node:http";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import type { StreamSink } from "./watch.ts";

/** A request as the handler sees it. */
export interface IncomingRequest {
  readonly method: string;
  readonly url: URL;
  readonly headers: Headers;
  /** `address:port` of the client's connection. */
  readonly connection: string;
  /** Aborted when the response is done or failed (Deno: only once an answer was given). */
  readonly signal: AbortSignal;
  /** Whether a client certificate signed by the CA was presented (node transport only). */
  readonly clientCertOk?: boolean;
  text(): Promise<string>;
}

/** An answer: a whole body, or a stream fed by `open` (which returns a cleanup for when the client leaves). */
export type Reply =
  | { readonly status: number; readonly headers?: Record<string, string>; readonly body: string }
  | {
    readonly status: number;
    readonly headers?: Record<string, string>;
    readonly open: (sink: StreamSink) => () => void;
  };

/** The request handler. */
export type Handler = (req: IncomingRequest) => Promise<Reply>;

/** A listening server. */
export interface Listening {
  readonly port: number;
  /** Stops listening and drops every connection. */
  close(): Promise<void>;
}

/** TLS material (PEM). */
export interface TlsOptions {
  readonly cert: string;
  readonly key: string;
  readonly ca?: string;
}

const encoder = new TextEncoder();

/** Serves with `Deno.serve` on 127.0.0.1. */
export function serveDeno(handler: Handler, port: number, tls?: TlsOptions): Promise<Listening> {
  const ac = new AbortController();
  return new Promise((resolve, reject) => {
    let server: Deno.HttpServer<Deno.NetAddr>;
    const serve = (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) =>
      answer(req, info).catch(() => new Response(null, { status: 500 }));
    const answer = async (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => {
      // Not req.signal: with Deno's legacy abort it also fires on success, and warns.
      const gone = new AbortController();
      info.completed.then(() => gone.abort(), () => gone.abort());
      const reply = await handler({
        method: req.method,
        url: new URL(req.url),
        headers: req.headers,
        connection: `${info.remoteAddr.hostname}:${info.remoteAddr.port}`,
        signal: gone.signal,
        text: () => req.text(),
      });
      if ("body" in reply) {
        return new Response(reply.body, { status: reply.status, headers: reply.headers });
      }
      let cleanup = () => {};
      let done = false;
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          const sink: StreamSink = {
            write(text) {
              if (!done) c.enqueue(encoder.encode(text));
            },
            end() {
              if (!done) c.close();
              done = true;
            },
            cut() {
              // Deno prints the reason once; make it say what happened.
              if (!done) c.error("fake API server: stream cut on purpose");
              done = true;
            },
          };
          cleanup = reply.open(sink);
        },
        cancel() {
          done = true;
          cleanup();
        },
      });
      gone.signal.addEventListener("abort", () => {
        done = true;
        cleanup();
      }, { once: true });
      return new Response(body, { status: reply.status, headers: reply.headers });
    };
    try {
      server = Deno.serve({
        hostname: "127.0.0.1",
        port,
        signal: ac.signal,
        ...(tls ? { cert: tls.cert, key: tls.key } : {}),
        onListen: () => {},
        onError: () => new Response(null, { status: 500 }),
      }, serve);
    } catch (err) {
      reject(err);
      return;
    }
    resolve({
      port: server.addr.port,
      async close() {
        ac.abort();
        await server.finished;
      },
    });
  });
}

/** Serves with `node:https` (or `node:http`), asking for a client certificate when `requireClientCert`. */
export function serveNode(
  handler: Handler,
  port: number,
  tls?: TlsOptions,
  requireClientCert = false,
): Promise<Listening> {
  const sockets = new Set<Socket>();
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const ac = new AbortController();
    res.on("close", () => ac.abort());
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) {
      if (typeof v === "string") headers.set(k, v);
      else if (Array.isArray(v)) headers.set(k, v.join(", "));
    }
    const sock = req.socket as TLSSocket;
    handler({
      method: req.method ?? "GET",
      url: new URL(req.url ?? "/", "http://127.0.0.1"),
      headers,
      connection: `${sock.remoteAddress}:${sock.remotePort}`,
      signal: ac.signal,
      clientCertOk: tls ? sock.authorized === true : undefined,
      text: () =>
        new Promise((resolve, reject) => {
          let body = "";
          req.setEncoding("utf8");
          req.on("data", (c: string) => body += c);
          req.on("end", () => resolve(body));
          req.on("error", reject);
        }),
    }).then((reply) => {
      if (res.destroyed) return;
      if ("body" in reply) {
        const bytes = encoder.encode(reply.body);
        res.writeHead(reply.status, { ...reply.headers, "content-length": bytes.length });
        res.end(bytes);
        return;
      }
      res.writeHead(reply.status, reply.headers);
      res.flushHeaders();
      let done = false;
      const cleanup = reply.open({
        write(text) {
          if (!done) res.write(text);
        },
        end() {
          if (!done) res.end();
          done = true;
        },
        cut() {
          done = true;
          res.socket?.destroy();
        },
      });
      res.on("close", () => {
        done = true;
        cleanup();
      });
    }, () => res.destroy());
  };
  const server = tls
    ? https.createServer({
      cert: tls.cert,
      key: tls.key,
      ca: tls.ca,
      requestCert: requireClientCert,
      rejectUnauthorized: false,
    }, onRequest)
    : http.createServer(onRequest);
  const track = (sock: Socket) => {
    sock.setNoDelay(true);
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
  };
  server.on("connection", track);
  server.on("secureConnection", track);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      resolve({
        port: (server.address() as AddressInfo).port,
        close() {
          const closed = new Promise<void>((r) => server.close(() => r()));
          for (const s of sockets) s.destroy();
          sockets.clear();
          return closed;
        },
      });
    });
  });
}
