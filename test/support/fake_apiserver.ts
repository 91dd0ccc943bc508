/**
 * A fake Kubernetes API server for Services that speaks the real wire
 * protocol, written from the API's documented behaviour:
 *
 * - LIST with `limit`/`continue` pages and a list `resourceVersion`;
 * - WATCH as a chunked stream of JSON lines from a `resourceVersion`, with
 *   `allowWatchBookmarks`, `timeoutSeconds` and label selectors (an object
 *   that stops matching is sent as DELETED, one that starts as ADDED);
 * - `410 Gone` for a compacted resource version (as an ERROR event on a 200
 *   stream, as the API server does, or as an HTTP status) and for an expired
 *   `continue` token;
 * - bearer tokens and TLS with a CA, optionally requiring a client certificate;
 * - create, update and delete over HTTP as well as in-process.
 *
 * Fault injection: 5xx responses, watch streams closed by the server or cut
 * mid-stream, stalls before headers or in the body, and stopping the listener
 * so that connections are refused.
 *
 * @module
 */

import http from "node:http";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { TLSSocket } from "node:tls";

/** A Service as the tests write it: the fields that matter. */
export interface ServiceSpec {
  readonly namespace?: string;
  readonly name: string;
  readonly labels?: Record<string, string>;
  readonly type?: string;
  readonly clusterIP?: string;
  readonly externalIPs?: readonly unknown[];
  readonly ports?: readonly Record<string, unknown>[];
  readonly selector?: Record<string, string>;
}

/** Options for {@linkcode FakeApiServer.start}. */
export interface FakeApiServerOptions {
  /** Serve HTTPS with this certificate and key (PEM). */
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca?: string };
  /** Require a client certificate signed by `tls.ca`. */
  readonly requireClientCert?: boolean;
  /** Require `Authorization: Bearer <token>`. */
  readonly token?: string;
  /**
   * Send a BOOKMARK on every watch this often (and before a timeout); 0 = only
   * before the timeout. Default 60 s, as API servers do.
   */
  readonly bookmarkIntervalMs?: number;
  /** How a compacted resource version is reported on a watch. */
  readonly goneAs?: "event" | "status";
  /** Port to listen on; 0 picks one. */
  readonly port?: number;
}

type K8sObject = Record<string, unknown> & {
  metadata: Record<string, unknown> & {
    name: string;
    namespace: string;
    resourceVersion: string;
    labels?: Record<string, string>;
  };
};

interface LogEntry {
  readonly rv: number;
  readonly type: "ADDED" | "MODIFIED" | "DELETED";
  readonly before?: K8sObject;
  readonly after: K8sObject;
}

interface Watcher {
  readonly res: http.ServerResponse;
  readonly namespace?: string;
  readonly selector: Selector;
  readonly bookmarks: boolean;
  timer?: ReturnType<typeof setTimeout>;
  bookmarkTimer?: ReturnType<typeof setInterval>;
}

/** One request as the server saw it. */
export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Record<string, string>;
  readonly watch: boolean;
  readonly at: number;
}

type Requirement = (labels: Record<string, string>) => boolean;
type Selector = Requirement[];

/** Parses the equality-based and set-based label selector forms the API accepts. */
export function parseSelector(text: string | null): Selector {
  if (!text) return [];
  const parts: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of text) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      parts.push(cur);
      cur = "";
    } else cur += ch;
  }
  parts.push(cur);
  return parts.map((raw) => {
    const p = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/.exec(p))) {
      const [, k, op, v] = m;
      return op === "!=" ? (l) => l[k] !== v : (l) => l[k] === v;
    }
    if ((m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(p))) {
      const [, k, op, list] = m;
      const values = list.split(",").map((s) => s.trim());
      return op === "in" ? (l) => values.includes(l[k]) : (l) => !values.includes(l[k]);
    }
    if ((m = /^!([\w./-]+)$/.exec(p))) {
      const k = m[1];
      return (l) => !(k in l);
    }
    if ((m = /^([\w./-]+)$/.exec(p))) {
      const k = m[1];
      return (l) => k in l;
    }
    throw new Error(`unable to parse requirement: ${p}`);
  });
}

function matches(sel: Selector, obj: K8sObject | undefined): boolean {
  if (!obj) return false;
  const labels = obj.metadata.labels ?? {};
  return sel.every((r) => r(labels));
}

const encoder = new TextEncoder();

function byteLength(text: string): number {
  return encoder.encode(text).length;
}

function status(code: number, reason: string, message: string): Record<string, unknown> {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    code,
  };
}

/** The fake API server. */
export class FakeApiServer {
  readonly #opts: FakeApiServerOptions;
  #server: http.Server | https.Server | undefined;
  #port = 0;
  #rv = 1000;
  #compactedBelow = 0;
  readonly #objects = new Map<string, K8sObject>();
  #sortedKeys: string[] | undefined;
  readonly #log: LogEntry[] = [];
  readonly #watchers = new Set<Watcher>();
  readonly #sockets = new Set<Socket>();
  #failures: number[] = [];
  #stall: false | "headers" | "body" = false;
  readonly #stalledRequests = new Set<http.ServerResponse>();
  #clusterIpSeq = 10;
  #uidSeq = 0;
  /** Every request, in order. */
  readonly requests: SeenRequest[] = [];
  /** Called right after each watch event is written to a stream. */
  onEventWritten?: (type: string, object: K8sObject, at: number) => void;

  private constructor(opts: FakeApiServerOptions) {
    this.#opts = opts;
  }

  /** Starts a server on 127.0.0.1. */
  static async start(opts: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    const s = new FakeApiServer(opts);
    await s.listen(opts.port ?? 0);
    return s;
  }

  /** (Re)starts listening; with the previous port after {@linkcode stop}. */
  listen(port = this.#port): Promise<void> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => this.#handle(req, res);
    const tls = this.#opts.tls;
    const server = tls
      ? https.createServer({
        cert: tls.cert,
        key: tls.key,
        ca: tls.ca,
        requestCert: this.#opts.requireClientCert ?? false,
        rejectUnauthorized: false,
      }, handler)
      : http.createServer(handler);
    server.on("connection", (sock: Socket) => {
      // Go's net/http, and so the real API server, disables Nagle: events leave at once.
      sock.setNoDelay(true);
      this.#sockets.add(sock);
      sock.on("close", () => this.#sockets.delete(sock));
    });
    server.on("secureConnection", (sock: Socket) => {
      this.#sockets.add(sock);
      sock.on("close", () => this.#sockets.delete(sock));
    });
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        this.#port = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  /** The base URL, e.g. `https://127.0.0.1:41234`. */
  get url(): string {
    return `${this.#opts.tls ? "https" : "http"}://127.0.0.1:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  /** The current resource version. */
  get resourceVersion(): string {
    return String(this.#rv);
  }

  /** Open watch streams. */
  get watchCount(): number {
    return this.#watchers.size;
  }

  /** Requests that asked for a watch. */
  get watchRequests(): number {
    return this.requests.filter((r) => r.watch).length;
  }

  /** Requests that listed. */
  get listRequests(): number {
    return this.requests.filter((r) => !r.watch && r.method === "GET").length;
  }

  // ---- object store -------------------------------------------------------

  #key(ns: string, name: string): string {
    return `${ns}/${name}`;
  }

  #build(spec: ServiceSpec, prior?: K8sObject): K8sObject {
    const namespace = spec.namespace ?? "default";
    const type = spec.type ?? "ClusterIP";
    const clusterIP = spec.clusterIP ??
      (prior?.spec as { clusterIP?: string } | undefined)?.clusterIP ??
      (type === "ExternalName"
        ? undefined
        : `10.96.${(this.#clusterIpSeq >> 8) & 255}.${this.#clusterIpSeq++ & 255}`);
    return {
      kind: "Service",
      apiVersion: "v1",
      metadata: {
        name: spec.name,
        namespace,
        uid: (prior?.metadata.uid as string | undefined) ?? `uid-${++this.#uidSeq}`,
        resourceVersion: "",
        creationTimestamp: (prior?.metadata.creationTimestamp as string | undefined) ??
          new Date().toISOString().replace(/\.\d+Z$/, "Z"),
        ...(spec.labels ? { labels: { ...spec.labels } } : {}),
      },
      spec: {
        type,
        ...(clusterIP ? { clusterIP, clusterIPs: [clusterIP] } : {}),
        ...(spec.externalIPs ? { externalIPs: [...spec.externalIPs] } : {}),
        ports: spec.ports
          ? spec.ports.map((p) => ({ ...p }))
          : [{ port: 80, protocol: "TCP", targetPort: 80 }],
        ...(spec.selector ? { selector: { ...spec.selector } } : {}),
        sessionAffinity: "None",
      },
      status: { loadBalancer: {} },
    };
  }

  #commit(type: LogEntry["type"], after: K8sObject, before?: K8sObject): void {
    this.#rv++;
    after.metadata.resourceVersion = String(this.#rv);
    const key = this.#key(after.metadata.namespace, after.metadata.name);
    if (type === "DELETED") this.#objects.delete(key);
    else this.#objects.set(key, after);
    if (type !== "MODIFIED") this.#sortedKeys = undefined;
    const entry: LogEntry = { rv: this.#rv, type, before, after };
    this.#log.push(entry);
    for (const w of this.#watchers) this.#send(w, entry);
  }

  /** Creates a Service; fails if it exists. */
  create(spec: ServiceSpec): K8sObject {
    const ns = spec.namespace ?? "default";
    if (this.#objects.has(this.#key(ns, spec.name))) {
      throw new Error(`service ${ns}/${spec.name} exists`);
    }
    const obj = this.#build(spec);
    this.#commit("ADDED", obj);
    return obj;
  }

  /** Replaces a Service; fails if it does not exist. */
  update(spec: ServiceSpec): K8sObject {
    const ns = spec.namespace ?? "default";
    const prior = this.#objects.get(this.#key(ns, spec.name));
    if (!prior) throw new Error(`service ${ns}/${spec.name} not found`);
    const obj = this.#build(spec, prior);
    this.#commit("MODIFIED", obj, prior);
    return obj;
  }

  /** Creates or updates a Service. */
  apply(spec: ServiceSpec): K8sObject {
    const ns = spec.namespace ?? "default";
    return this.#objects.has(this.#key(ns, spec.name)) ? this.update(spec) : this.create(spec);
  }

  /** Deletes a Service; returns whether it existed. */
  delete(name: string, namespace = "default"): boolean {
    const prior = this.#objects.get(this.#key(namespace, name));
    if (!prior) return false;
    const gone = structuredClone(prior);
    this.#commit("DELETED", gone, prior);
    return true;
  }

  /** Loads many Services at once without per-object events (an existing cluster). */
  seed(specs: Iterable<ServiceSpec>): void {
    for (const spec of specs) {
      const obj = this.#build(spec);
      this.#rv++;
      obj.metadata.resourceVersion = String(this.#rv);
      this.#objects.set(this.#key(obj.metadata.namespace, obj.metadata.name), obj);
    }
    this.#sortedKeys = undefined;
    this.compact();
  }

  /** Number of Services stored. */
  get size(): number {
    return this.#objects.size;
  }

  /** Forgets history: watches from any older resource version get 410 Gone. */
  compact(): void {
    this.#compactedBelow = this.#rv;
    this.#log.length = 0;
  }

  // ---- fault injection ----------------------------------------------------

  /** The next `n` requests get HTTP `code` (default 500). */
  failNext(n: number, code = 500): void {
    for (let i = 0; i < n; i++) this.#failures.push(code);
  }

  /** Stall new watches before the headers, or existing and new ones in the body; false resumes. */
  stall(mode: false | "headers" | "body"): void {
    this.#stall = mode;
    if (mode === false) {
      for (const res of this.#stalledRequests) res.destroy();
      this.#stalledRequests.clear();
    }
  }

  /** Ends every open watch cleanly, as a server timeout does. */
  closeWatches(): void {
    for (const w of [...this.#watchers]) this.#endWatch(w);
  }

  /** Cuts every open watch mid-stream (premature close). */
  cutWatches(): void {
    for (const w of [...this.#watchers]) {
      this.#dropWatcher(w);
      w.res.socket?.destroy();
    }
  }

  /** Stops listening and drops every connection: clients get "connection refused". */
  async stop(): Promise<void> {
    for (const w of [...this.#watchers]) this.#dropWatcher(w);
    for (const r of this.#stalledRequests) r.destroy();
    this.#stalledRequests.clear();
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    await closed;
  }

  /** Stops the server for good. */
  close(): Promise<void> {
    return this.stop();
  }

  // ---- HTTP ----------------------------------------------------------------

  #reply(res: http.ServerResponse, code: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(code, { "content-type": "application/json", "content-length": byteLength(text) });
    res.end(text);
  }

  #authorized(req: http.IncomingMessage): boolean {
    if (this.#opts.requireClientCert) {
      const sock = req.socket as TLSSocket;
      if (!sock.authorized) return false;
    }
    if (this.#opts.token !== undefined) {
      return req.headers.authorization === `Bearer ${this.#opts.token}`;
    }
    return true;
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://x");
    const query = Object.fromEntries(url.searchParams);
    const watch = query.watch === "true" || query.watch === "1";
    this.requests.push({
      method: req.method ?? "GET",
      path: url.pathname,
      query,
      watch,
      at: performance.now(),
    });
    if (!this.#authorized(req)) {
      return this.#reply(res, 401, status(401, "Unauthorized", "Unauthorized"));
    }
    const failure = this.#failures.shift();
    if (failure !== undefined) {
      return this.#reply(
        res,
        failure,
        status(failure, "InternalError", `injected failure ${failure}`),
      );
    }
    const m = /^\/api\/v1(?:\/namespaces\/([a-z0-9-]+))?\/services(?:\/([a-z0-9.-]+))?$/.exec(
      url.pathname,
    );
    if (!m) {
      return this.#reply(
        res,
        404,
        status(404, "NotFound", "the server could not find the requested resource"),
      );
    }
    const [, namespace, name] = m;
    const method = req.method ?? "GET";
    if (method === "GET" && !name) {
      let selector: Selector;
      try {
        selector = parseSelector(url.searchParams.get("labelSelector"));
      } catch (err) {
        return this.#reply(res, 400, status(400, "BadRequest", (err as Error).message));
      }
      return watch
        ? this.#watch(res, namespace, selector, url.searchParams)
        : this.#list(res, namespace, selector, url.searchParams);
    }
    if (method === "GET" && name && namespace) {
      const obj = this.#objects.get(this.#key(namespace, name));
      return obj
        ? this.#reply(res, 200, obj)
        : this.#reply(res, 404, status(404, "NotFound", `services "${name}" not found`));
    }
    if ((method === "POST" || method === "PUT") && namespace) {
      return this.#write(req, res, method, namespace, name);
    }
    if (method === "DELETE" && namespace && name) {
      return this.delete(name, namespace)
        ? this.#reply(res, 200, status(200, "", "deleted"))
        : this.#reply(res, 404, status(404, "NotFound", `services "${name}" not found`));
    }
    this.#reply(res, 405, status(405, "MethodNotAllowed", "method not allowed"));
  }

  #write(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    method: string,
    ns: string,
    name?: string,
  ): void {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => body += c);
    req.on("end", () => {
      try {
        const obj = JSON.parse(body) as {
          metadata?: Record<string, unknown>;
          spec?: Record<string, unknown>;
        };
        const spec: ServiceSpec = {
          namespace: ns,
          name: String(obj.metadata?.name ?? name),
          labels: obj.metadata?.labels as Record<string, string> | undefined,
          type: obj.spec?.type as string | undefined,
          clusterIP: obj.spec?.clusterIP as string | undefined,
          externalIPs: obj.spec?.externalIPs as unknown[] | undefined,
          ports: obj.spec?.ports as Record<string, unknown>[] | undefined,
          selector: obj.spec?.selector as Record<string, string> | undefined,
        };
        const out = method === "POST" ? this.create(spec) : this.update(spec);
        this.#reply(res, method === "POST" ? 201 : 200, out);
      } catch (err) {
        const msg = (err as Error).message;
        const code = msg.includes("exists") ? 409 : msg.includes("not found") ? 404 : 400;
        this.#reply(res, code, status(code, code === 409 ? "AlreadyExists" : "BadRequest", msg));
      }
    });
  }

  #sorted(): string[] {
    this.#sortedKeys ??= [...this.#objects.keys()].sort();
    return this.#sortedKeys;
  }

  #list(
    res: http.ServerResponse,
    namespace: string | undefined,
    sel: Selector,
    q: URLSearchParams,
  ): void {
    const limit = Number(q.get("limit") ?? 0);
    let after = "";
    let listRv = this.#rv;
    const cont = q.get("continue");
    if (cont) {
      try {
        const token = JSON.parse(atob(cont)) as { rv: number; after: string };
        after = token.after;
        listRv = token.rv;
      } catch {
        return this.#reply(res, 400, status(400, "BadRequest", "invalid continue token"));
      }
      if (listRv < this.#compactedBelow) {
        return this.#reply(
          res,
          410,
          status(
            410,
            "Expired",
            "The provided continue parameter is too old to display a consistent list result.",
          ),
        );
      }
    }
    const keys = this.#sorted();
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (keys[mid] <= after) lo = mid + 1;
      else hi = mid;
    }
    const items: string[] = [];
    let last = "";
    let more = false;
    for (let i = after ? lo : 0; i < keys.length; i++) {
      const obj = this.#objects.get(keys[i])!;
      if (namespace && obj.metadata.namespace !== namespace) continue;
      if (!matches(sel, obj)) continue;
      if (limit > 0 && items.length >= limit) {
        more = true;
        break;
      }
      const { kind: _k, apiVersion: _a, ...item } = obj;
      items.push(JSON.stringify(item));
      last = keys[i];
    }
    const metadata: Record<string, unknown> = { resourceVersion: String(listRv) };
    if (more) metadata.continue = btoa(JSON.stringify({ rv: listRv, after: last }));
    const text = `{"kind":"ServiceList","apiVersion":"v1","metadata":${
      JSON.stringify(metadata)
    },"items":[${items.join(",")}]}`;
    res.writeHead(200, { "content-type": "application/json", "content-length": byteLength(text) });
    res.end(text);
  }

  #watch(
    res: http.ServerResponse,
    namespace: string | undefined,
    sel: Selector,
    q: URLSearchParams,
  ): void {
    if (this.#stall === "headers") {
      this.#stalledRequests.add(res);
      return;
    }
    const rvText = q.get("resourceVersion");
    const from = rvText && rvText !== "0" ? Number(rvText) : undefined;
    if (from !== undefined && from < this.#compactedBelow && this.#opts.goneAs === "status") {
      return this.#reply(
        res,
        410,
        status(410, "Expired", `too old resource version: ${from} (${this.#compactedBelow})`),
      );
    }
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    res.flushHeaders();
    const w: Watcher = {
      res,
      namespace,
      selector: sel,
      bookmarks: q.get("allowWatchBookmarks") === "true",
    };
    if (from !== undefined && from < this.#compactedBelow) {
      this.#write1(w, {
        type: "ERROR",
        object: status(
          410,
          "Expired",
          `too old resource version: ${from} (${this.#compactedBelow})`,
        ),
      });
      res.end();
      return;
    }
    this.#watchers.add(w);
    res.on("close", () => this.#dropWatcher(w));
    if (from === undefined) {
      for (const key of this.#sorted()) {
        const obj = this.#objects.get(key)!;
        if (this.#inScope(w, obj)) this.#write1(w, { type: "ADDED", object: obj });
      }
    } else {
      for (const entry of this.#log) if (entry.rv > from) this.#send(w, entry);
    }
    const timeout = Number(q.get("timeoutSeconds") ?? 0);
    if (timeout > 0) w.timer = setTimeout(() => this.#endWatch(w), timeout * 1000);
    const every = this.#opts.bookmarkIntervalMs ?? 60_000;
    if (w.bookmarks && every > 0) w.bookmarkTimer = setInterval(() => this.#bookmark(w), every);
  }

  #inScope(w: Watcher, obj: K8sObject | undefined): boolean {
    return !!obj && (!w.namespace || obj.metadata.namespace === w.namespace) &&
      matches(w.selector, obj);
  }

  #send(w: Watcher, e: LogEntry): void {
    const was = e.type !== "ADDED" && this.#inScope(w, e.before);
    const is = e.type !== "DELETED" && this.#inScope(w, e.after);
    if (e.type === "DELETED") {
      if (this.#inScope(w, e.after)) this.#write1(w, { type: "DELETED", object: e.after });
      return;
    }
    if (was && is) this.#write1(w, { type: "MODIFIED", object: e.after });
    else if (!was && is) this.#write1(w, { type: "ADDED", object: e.after });
    else if (was && !is) this.#write1(w, { type: "DELETED", object: e.after });
  }

  #write1(w: Watcher, ev: { type: string; object: Record<string, unknown> }): void {
    if (this.#stall === "body") return;
    w.res.write(JSON.stringify(ev) + "\n");
    if (ev.type !== "BOOKMARK" && ev.type !== "ERROR") {
      this.onEventWritten?.(ev.type, ev.object as K8sObject, performance.now());
    }
  }

  #bookmark(w: Watcher): void {
    this.#write1(w, {
      type: "BOOKMARK",
      object: {
        kind: "Service",
        apiVersion: "v1",
        metadata: { resourceVersion: String(this.#rv) },
      },
    });
  }

  #endWatch(w: Watcher): void {
    if (w.bookmarks) this.#bookmark(w);
    this.#dropWatcher(w);
    w.res.end();
  }

  #dropWatcher(w: Watcher): void {
    clearTimeout(w.timer);
    clearInterval(w.bookmarkTimer);
    this.#watchers.delete(w);
  }
}

/** The prototype's demo Service: nginx on 10.0.100.30 and .31, ports 80 and 81→80. */
export const DEMO_SERVICE: ServiceSpec = {
  namespace: "default",
  name: "nginx",
  labels: { name: "nginx" },
  type: "ClusterIP",
  externalIPs: ["10.0.100.30", "10.0.100.31"],
  ports: [
    { name: "port1", port: 80, protocol: "TCP", targetPort: 80 },
    { name: "port2", port: 81, protocol: "TCP", targetPort: 80 },
  ],
  selector: { name: "nginx" },
};
