/**
 * A fake Kubernetes API server that speaks the real wire protocol and keeps
 * the real server's unkind habits, for tests and benchmarks. The pieces live
 * in `fake_api/` (one concern each); this file is the one class tests use.
 *
 * What it serves: Services (with the status subresource), EndpointSlices,
 * ConfigMaps, Leases and events.k8s.io Events, namespaced, with one global
 * resourceVersion counter; LIST (limit/continue, label and field selectors),
 * WATCH (JSON lines from a resourceVersion, bookmarks only when the
 * resourceVersion moved, `timeoutSeconds`), GET, POST, PUT (resourceVersion
 * precondition), merge PATCH, DELETE; plain HTTP/1.1, or TLS offering HTTP/2
 * by ALPN (node:https with HTTP/1.1 only when a client certificate is required).
 *
 * Faults, each a named method: failures and 429 with Retry-After for the next
 * requests or a path, malformed 200 LISTs, requests and connections that are
 * never answered (wedged), watch streams stalled, closed or cut, connections
 * refused, 410 for compacted versions and expired continue tokens, 504 "Too
 * large resource version" after {@linkcode FakeApiServer.restore}, tokens that
 * expire, are revoked or rotated. Black holes and connection cuts in front of
 * the server are `tcp_proxy.ts`'s.
 *
 * @module
 */

import { Tokens } from "./api/auth.ts";
import { Faults, type MalformedList, type PathMatch } from "./api/faults.ts";
import { apiHandler, type HandlerState, type SeenRequest } from "./api/handler.ts";
import { type ResourceName, storedNamespace } from "./api/resources.ts";
import { serviceObject, type ServiceSpec } from "./api/services.ts";
import { type K8sObject, type Snapshot, Store } from "./api/store.ts";
import { type Listening, serveDeno, serveNode, type TlsOptions } from "./api/transport.ts";
import { Watches } from "./api/watch.ts";
import { Writer, type WriteResult } from "./api/writes.ts";

export { parseSelector } from "./api/selectors.ts";
export type {
  K8sObject,
  MalformedList,
  PathMatch,
  ResourceName,
  SeenRequest,
  ServiceSpec,
  Snapshot,
};

/** Options for {@linkcode FakeApiServer.start}. */
export interface FakeApiServerOptions {
  /** Serve HTTPS with this certificate and key (PEM); HTTP/2 and HTTP/1.1 are offered by ALPN. */
  readonly tls?: TlsOptions;
  /** Require a client certificate signed by `tls.ca` (served by node:https, HTTP/1.1 only). */
  readonly requireClientCert?: boolean;
  /** Require `Authorization: Bearer <token>`. */
  readonly token?: string;
  /** `token` stops working this long after start. */
  readonly tokenExpiresInMs?: number;
  /**
   * How often a watch may get a BOOKMARK (only when the resourceVersion moved
   * past what it last saw; one more 2 s before its timeout); 0 = only then.
   * @default 60_000
   */
  readonly bookmarkIntervalMs?: number;
  /** How a compacted resourceVersion is reported on a watch. @default "event" */
  readonly goneAs?: "event" | "status";
  /** How "Too large resource version" is reported on a watch. @default "status" (HTTP 504) */
  readonly tooLargeAs?: "event" | "status";
  /** How long a LIST or WATCH for a resourceVersion above the current one waits before 504. @default 3000 */
  readonly tooLargeWaitMs?: number;
  /** Continue tokens expire (410 Expired) this long after they were issued; 0 = only by compaction. @default 0 */
  readonly continueTtlMs?: number;
  /** Keep this many changes for watches to replay (older versions get 410); 0 = all since compaction. @default 0 */
  readonly historyLimit?: number;
  /** A watch without `timeoutSeconds` ends after a random 1–2× this. @default 1800 */
  readonly minRequestTimeoutSeconds?: number;
  /** Send etcd progress notifications this often (moving every watch cache); 0 = never. @default 0 */
  readonly progressNotifyIntervalMs?: number;
  /** `deno` (Deno.serve) or `node` (node:http/https, HTTP/1.1). @default "deno", "node" with requireClientCert */
  readonly transport?: "deno" | "node";
  /** Port to listen on; 0 picks one. */
  readonly port?: number;
}

/** Which client writes {@linkcode FakeApiServer.clientWrites} returns. */
export interface WriteFilter {
  readonly resource?: ResourceName;
  readonly namespace?: string;
  readonly name?: string;
  /** `"status"` for status writes, `""` for writes to the main resource. */
  readonly subresource?: string;
  readonly verb?: "create" | "update" | "patch" | "delete";
}

function check(result: WriteResult, what: string): K8sObject {
  if (!result.ok) throw new Error(`${what}: ${String(result.status.message)}`);
  return result.object;
}

/** The fake API server. */
export class FakeApiServer {
  readonly #opts: FakeApiServerOptions;
  readonly #store = new Store();
  readonly #writer = new Writer(this.#store);
  readonly #watches: Watches;
  readonly #faults = new Faults();
  readonly #tokens = new Tokens();
  readonly #state: HandlerState;
  #listening: Listening | undefined;
  #port = 0;
  #progressTimer?: ReturnType<typeof setInterval>;
  /** Every request, in order. */
  readonly requests: SeenRequest[] = [];

  private constructor(opts: FakeApiServerOptions) {
    this.#opts = opts;
    this.#store.historyLimit = opts.historyLimit ?? 0;
    this.#watches = new Watches(this.#store, {
      bookmarkIntervalMs: opts.bookmarkIntervalMs ?? 60_000,
      minRequestTimeoutSeconds: opts.minRequestTimeoutSeconds ?? 1800,
    });
    if (opts.token !== undefined) this.#tokens.accept(opts.token, opts.tokenExpiresInMs);
    this.#state = {
      store: this.#store,
      writer: this.#writer,
      watches: this.#watches,
      faults: this.#faults,
      tokens: this.#tokens,
      opts: {
        goneAs: opts.goneAs ?? "event",
        tooLargeAs: opts.tooLargeAs ?? "status",
        tooLargeWaitMs: opts.tooLargeWaitMs ?? 3000,
        continueTtlMs: opts.continueTtlMs ?? 0,
        requireClientCert: opts.requireClientCert ?? false,
      },
      requests: this.requests,
      connections: new Set(),
      held: new Set(),
      stall: false,
      continueEpoch: 0,
    };
  }

  /** Starts a server on 127.0.0.1. */
  static async start(opts: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    const s = new FakeApiServer(opts);
    await s.listen(opts.port ?? 0);
    const every = opts.progressNotifyIntervalMs ?? 0;
    if (every > 0) s.#progressTimer = setInterval(() => s.progressNotify(), every);
    return s;
  }

  /** (Re)starts listening; with the previous port after {@linkcode stop}. */
  async listen(port = this.#port): Promise<void> {
    const handler = apiHandler(this.#state);
    const node = this.#opts.transport === "node" ||
      (this.#opts.transport === undefined && this.#opts.requireClientCert);
    this.#listening = node
      ? await serveNode(handler, port, this.#opts.tls, this.#opts.requireClientCert)
      : await serveDeno(handler, port, this.#opts.tls);
    this.#port = this.#listening.port;
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
    return String(this.#store.rv);
  }

  /** Open watch streams. */
  get watchCount(): number {
    return this.#watches.size;
  }

  /** Requests that asked for a watch. */
  get watchRequests(): number {
    return this.requests.filter((r) => r.watch).length;
  }

  /** Requests that listed (every GET that is not a watch, as before). */
  get listRequests(): number {
    return this.requests.filter((r) => !r.watch && r.method === "GET").length;
  }

  /** Called when each request arrives (its `code` is filled in when answered). */
  set onRequest(fn: ((r: SeenRequest) => void) | undefined) {
    this.#state.onRequest = fn;
  }

  /** Called right after each watch event (not bookmarks or errors) is written to a stream. */
  set onEventWritten(fn: ((type: string, object: K8sObject, at: number) => void) | undefined) {
    this.#watches.onEventWritten = fn;
  }

  /** Requests per path, e.g. to count requests per hour on a quiet cluster. */
  requestsPerPath(): Map<string, number> {
    const out = new Map<string, number>();
    for (const r of this.requests) out.set(r.path, (out.get(r.path) ?? 0) + 1);
    return out;
  }

  /** Requests per connection (`address:port`), in order of first use. */
  requestsPerConnection(): Map<string, number> {
    const out = new Map<string, number>();
    for (const r of this.requests) out.set(r.connection, (out.get(r.connection) ?? 0) + 1);
    return out;
  }

  /** Distinct connections that made a request. */
  get connectionCount(): number {
    return this.#state.connections.size;
  }

  /** Successful writes by clients (not the tests' own), in order, with their bodies. */
  clientWrites(f: WriteFilter = {}): SeenRequest[] {
    return this.requests.filter((r) =>
      ["create", "update", "patch", "delete"].includes(r.verb) && r.code >= 200 &&
      r.code < 300 && (f.resource === undefined || r.resource === f.resource) &&
      (f.namespace === undefined || r.namespace === f.namespace) &&
      (f.name === undefined || r.name === f.name) &&
      (f.subresource === undefined || (r.subresource ?? "") === f.subresource) &&
      (f.verb === undefined || r.verb === f.verb)
    );
  }

  // ---- Services, in the tests' short form --------------------------------

  /** Creates a Service; fails if it exists. */
  create(spec: ServiceSpec): K8sObject {
    const ns = spec.namespace ?? "default";
    if (this.#store.get("services", ns, spec.name)) {
      throw new Error(`service ${ns}/${spec.name} exists`);
    }
    const obj = serviceObject(spec);
    const created = check(this.#writer.create("services", ns, obj), "create");
    if (spec.status) return this.setStatus("services", spec.name, spec.status, ns);
    return created;
  }

  /** Replaces a Service (keeping its status unless `spec.status` is given); fails if it does not exist. */
  update(spec: ServiceSpec): K8sObject {
    const ns = spec.namespace ?? "default";
    if (!this.#store.get("services", ns, spec.name)) {
      throw new Error(`service ${ns}/${spec.name} not found`);
    }
    const updated = check(
      this.#writer.update("services", ns, spec.name, serviceObject(spec), { preconditions: false }),
      "update",
    );
    if (spec.status) return this.setStatus("services", spec.name, spec.status, ns);
    return updated;
  }

  /** Creates or updates a Service. */
  apply(spec: ServiceSpec): K8sObject {
    const ns = spec.namespace ?? "default";
    return this.#store.get("services", ns, spec.name) ? this.update(spec) : this.create(spec);
  }

  /** Deletes a Service; returns whether it existed. */
  delete(name: string, namespace = "default"): boolean {
    return this.#writer.delete("services", namespace, name).ok;
  }

  /** Loads many Services at once without per-object events (an existing cluster). */
  seed(specs: Iterable<ServiceSpec>): void {
    const objs: K8sObject[] = [];
    for (const spec of specs) objs.push(serviceObject(spec));
    this.#writer.seed("services", objs);
  }

  /** Number of Services stored. */
  get size(): number {
    return this.#store.count("services");
  }

  // ---- any resource --------------------------------------------------------

  /** One stored object, or undefined. */
  get(resource: ResourceName, name: string, namespace = "default"): K8sObject | undefined {
    return this.#store.get(resource, storedNamespace(resource, namespace), name);
  }

  /** Stored objects of `resource` (in one namespace if given), in etcd order. */
  objects(resource: ResourceName, namespace?: string): K8sObject[] {
    const out: K8sObject[] = [];
    for (const k of this.#store.sortedKeys(resource)) {
      if (namespace && !k.startsWith(`${namespace}/`)) continue;
      out.push(this.#store.byKey(resource, k)!);
    }
    return out;
  }

  /** Number of stored objects of `resource`. */
  count(resource: ResourceName): number {
    return this.#store.count(resource);
  }

  /** Creates an object (namespace from its metadata, default `default`); throws on a conflict. */
  createObject(resource: ResourceName, obj: Record<string, unknown>): K8sObject {
    return check(
      this.#writer.create(resource, nsOf(obj), structuredClone(obj)),
      `create ${resource}`,
    );
  }

  /** Replaces an object without a resourceVersion precondition; throws if it does not exist. */
  replaceObject(resource: ResourceName, obj: Record<string, unknown>): K8sObject {
    const ns = nsOf(obj);
    const name = String((obj.metadata as Record<string, unknown>).name);
    return check(
      this.#writer.update(resource, ns, name, structuredClone(obj), { preconditions: false }),
      `replace ${resource}`,
    );
  }

  /** Creates or replaces an object. */
  applyObject(resource: ResourceName, obj: Record<string, unknown>): K8sObject {
    const name = String((obj.metadata as Record<string, unknown>).name);
    return this.#store.get(resource, nsOf(obj), name)
      ? this.replaceObject(resource, obj)
      : this.createObject(resource, obj);
  }

  /** Merge-patches an object (RFC 7386) without a precondition. */
  patchObject(
    resource: ResourceName,
    name: string,
    patch: Record<string, unknown>,
    namespace = "default",
  ): K8sObject {
    return check(
      this.#writer.patch(resource, namespace, name, patch, { preconditions: false }),
      `patch ${resource}`,
    );
  }

  /** Replaces the status of an object that has a status subresource. */
  setStatus(
    resource: ResourceName,
    name: string,
    status: Record<string, unknown>,
    namespace = "default",
  ): K8sObject {
    const prior = this.#store.get(resource, storedNamespace(resource, namespace), name);
    if (!prior) throw new Error(`${resource} ${namespace}/${name} not found`);
    return check(
      this.#writer.update(
        resource,
        namespace,
        name,
        { ...prior, status: structuredClone(status) },
        {
          subresource: "status",
          preconditions: false,
        },
      ),
      `status of ${resource}`,
    );
  }

  /** Deletes an object; returns whether it existed. */
  deleteObject(resource: ResourceName, name: string, namespace = "default"): boolean {
    return this.#writer.delete(resource, namespace, name).ok;
  }

  /** Loads objects without events (an existing cluster); history is compacted. */
  seedObjects(resource: ResourceName, objs: Iterable<Record<string, unknown>>): void {
    this.#writer.seed(resource, [...objs].map((o) => structuredClone(o)));
  }

  // ---- history and resourceVersions ----------------------------------------

  /** Forgets history: watches from any older resource version get 410 Gone. */
  compact(): void {
    this.#store.compact();
  }

  /** The store as it is now, to {@linkcode restore} later. */
  snapshot(): Snapshot {
    return this.#store.snapshot();
  }

  /**
   * An etcd restore: the store goes back to `to` (a snapshot, or just the
   * counter to a lower resourceVersion), history is gone, and open watches
   * end as the restarted API server's do. Clients that ask for their newer
   * resourceVersion get 504 "Too large resource version" until they relist.
   */
  restore(to: Snapshot | number): void {
    this.#store.restore(to);
    this.#state.continueEpoch++;
    this.closeWatches();
  }

  /** An etcd progress notification: every watch cache reaches the current resourceVersion. */
  progressNotify(): void {
    this.#store.progressNotify();
  }

  /** Sends a bookmark now on every watch that asked for them and is behind; returns how many. */
  bookmarkNow(): number {
    let n = 0;
    for (const w of this.#watches.all()) if (this.#watches.bookmark(w)) n++;
    return n;
  }

  /** Every continue token issued so far gets 410 Expired. */
  expireContinueTokens(): void {
    this.#state.continueEpoch++;
  }

  // ---- credentials -----------------------------------------------------------

  /** Accepts `token` as well (until `expiresInMs` from now if given). */
  acceptToken(token: string, expiresInMs?: number): void {
    this.#tokens.accept(token, expiresInMs);
  }

  /** `token` gets 401 from now on. */
  revokeToken(token: string): void {
    this.#tokens.revoke(token);
  }

  /** Accepts `next`; every other token stops working after `oldValidForMs` (default at once). */
  rotateToken(next: string, oldValidForMs = 0): void {
    this.#tokens.rotate(next, oldValidForMs);
  }

  // ---- fault injection -------------------------------------------------------

  /** The next `n` requests get HTTP `code` (default 500). */
  failNext(n: number, code = 500): void {
    this.#faults.failNext(n, code);
  }

  /**
   * 429 Too Many Requests with `Retry-After`: for the next `requests` requests
   * (default 1; Infinity until {@linkcode clearThrottle}) on `path` (a prefix
   * or pattern; default every path).
   */
  throttle(opts: { retryAfterSeconds?: number; requests?: number; path?: PathMatch } = {}): void {
    this.#faults.throttle(opts.path, opts.retryAfterSeconds ?? 1, opts.requests ?? 1);
  }

  /** Ends every 429 rule. */
  clearThrottle(): void {
    this.#faults.clearThrottle();
  }

  /** The next `count` LISTs (default 1) on `path` (default any) get a 200 with a malformed body. */
  malformNextList(shape: MalformedList, opts: { path?: PathMatch; count?: number } = {}): void {
    this.#faults.malformList(shape, opts.path, opts.count ?? 1);
  }

  /** Requests on `path` (default all) are accepted and never answered, until {@linkcode releaseHeld}. */
  hangRequests(path?: PathMatch): void {
    this.#faults.hang.push(path);
  }

  /** Ends {@linkcode hangRequests} and {@linkcode wedgeConnections}; held requests are reset. */
  releaseHeld(): void {
    this.#faults.hang = [];
    this.#faults.wedged.clear();
    for (const w of this.#watches.all()) w.stalled = false;
    for (const release of [...this.#state.held]) release();
  }

  /**
   * Every connection open now wedges: its requests are never answered and its
   * watch streams stop without closing. New connections are served.
   */
  wedgeConnections(): void {
    for (const c of this.#state.connections) this.#faults.wedged.add(c);
    for (const w of this.#watches.all()) {
      if (this.#faults.wedged.has(w.connection)) w.stalled = true;
    }
  }

  /** Requests held unanswered now. */
  get heldCount(): number {
    return this.#state.held.size;
  }

  /** Stall new watches before the headers, or existing and new ones in the body; false resumes. */
  stall(mode: false | "headers" | "body"): void {
    this.#state.stall = mode;
    if (mode === "body") { for (const w of this.#watches.all()) w.stalled = true; }
    if (mode === false) {
      for (const w of this.#watches.all()) {
        if (!this.#faults.wedged.has(w.connection)) w.stalled = false;
      }
      for (const release of [...this.#state.held]) release();
    }
  }

  /** Ends every open watch cleanly, as a server timeout does. */
  closeWatches(): void {
    for (const w of this.#watches.all()) this.#watches.end(w);
  }

  /** Cuts every open watch mid-stream (premature close; on HTTP/1.1 the connection closes). */
  cutWatches(): void {
    for (const w of this.#watches.all()) this.#watches.cut(w);
  }

  /** Stops listening and drops every connection: clients get "connection refused". */
  async stop(): Promise<void> {
    for (const w of this.#watches.all()) this.#watches.drop(w);
    for (const release of [...this.#state.held]) release();
    const l = this.#listening;
    this.#listening = undefined;
    if (l) await l.close();
  }

  /** Stops the server for good. */
  close(): Promise<void> {
    clearInterval(this.#progressTimer);
    return this.stop();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function nsOf(obj: Record<string, unknown>): string {
  const meta = obj.metadata as Record<string, unknown> | undefined;
  return typeof meta?.namespace === "string" ? meta.namespace : "default";
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
