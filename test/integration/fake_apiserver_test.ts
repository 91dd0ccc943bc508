/**
 * The fake API server itself, spoken to with plain `fetch` as any client
 * would: what it stores, how it lists, watches and writes, and each fault it
 * injects, as seen on the wire.
 *
 * @module
 */

import assert from "node:assert/strict";
import { mergePatch } from "../support/fakes/api/merge_patch.ts";
import { FakeApiServer } from "../support/fakes/apiserver.ts";
import { TcpProxy } from "../support/fakes/tcp_proxy.ts";

const fixture = (name: string) =>
  Deno.readTextFileSync(new URL(`../fixtures/${name}`, import.meta.url));

/** Parsed JSON, loosely typed: the tests assert its shape. */
// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

async function call(
  api: { url: string },
  path: string,
  init: RequestInit & { json?: unknown; client?: Deno.HttpClient } = {},
): Promise<{ status: number; body: Json; headers: Headers }> {
  const headers = new Headers(init.headers);
  let body = init.body;
  if (init.json !== undefined) {
    body = JSON.stringify(init.json);
    if (!headers.has("content-type")) headers.set("content-type", "application/json");
  }
  const res = await fetch(`${api.url}${path}`, { ...init, headers, body });
  const text = await res.text();
  let parsed: Json;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = { text };
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** A watch stream read line by line. */
class Stream {
  readonly lines: Json[] = [];
  ended = false;
  failed = false;
  readonly #done: Promise<void>;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;

  constructor(res: Response) {
    this.#reader = res.body!.getReader();
    this.#done = this.#read();
  }

  async #read(): Promise<void> {
    const dec = new TextDecoder();
    let buf = "";
    try {
      while (true) {
        const { value, done } = await this.#reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          this.lines.push(JSON.parse(buf.slice(0, i)));
          buf = buf.slice(i + 1);
        }
      }
      this.ended = true;
    } catch {
      this.failed = true;
    }
  }

  types(): string[] {
    return this.lines.map((l) => l.type);
  }

  /** Waits until the stream ended or broke. */
  finished(): Promise<void> {
    return this.#done;
  }

  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
    await this.#done;
  }
}

async function watch(
  api: { url: string },
  path: string,
  init: RequestInit & { client?: Deno.HttpClient } = {},
) {
  const res = await fetch(`${api.url}${path}`, init);
  assert.equal(res.status, 200);
  return new Stream(res);
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function configMap(name: string, namespace = "default", data: Record<string, string> = {}) {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace }, data };
}

Deno.test("stores any kind with server-set metadata and one resourceVersion counter for all", async () => {
  await using api = await FakeApiServer.start();
  const cm = await call(api, "/api/v1/namespaces/kube-system/configmaps", {
    method: "POST",
    json: configMap("pools", "kube-system", { "pools.yaml": "pools: []" }),
  });
  assert.equal(cm.status, 201);
  assert.equal(cm.body.kind, "ConfigMap");
  assert.match(cm.body.metadata.uid, /^[0-9a-f-]{36}$/);
  assert.match(cm.body.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const lease = await call(api, "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases", {
    method: "POST",
    json: { metadata: { name: "kube-gw-controller" }, spec: { holderIdentity: "a" } },
  });
  assert.equal(lease.status, 201);
  assert.equal(lease.body.apiVersion, "coordination.k8s.io/v1");
  assert.equal(
    Number(lease.body.metadata.resourceVersion),
    Number(cm.body.metadata.resourceVersion) + 1,
  );
  const again = await call(api, "/api/v1/namespaces/kube-system/configmaps", {
    method: "POST",
    json: configMap("pools", "kube-system"),
  });
  assert.equal(again.status, 409);
  assert.deepEqual(again.body, {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: 'configmaps "pools" already exists',
    reason: "AlreadyExists",
    details: { name: "pools", kind: "configmaps" },
    code: 409,
  });
  const got = await call(api, "/api/v1/namespaces/kube-system/configmaps/pools");
  assert.equal(got.body.data["pools.yaml"], "pools: []");
  const missing = await call(api, "/apis/discovery.k8s.io/v1/namespaces/web/endpointslices/x");
  assert.equal(missing.status, 404);
  assert.equal(missing.body.reason, "NotFound");
  assert.equal(missing.body.message, 'endpointslices.discovery.k8s.io "x" not found');
  const ev = await call(api, "/apis/events.k8s.io/v1/namespaces/web/events", {
    method: "POST",
    json: { metadata: { generateName: "web." }, reason: "IPAllocated", type: "Normal" },
  });
  assert.equal(ev.status, 201);
  assert.match(ev.body.metadata.name, /^web\.[a-z0-9]{5}$/);
  assert.equal(api.objects("events", "web").length, 1);
  assert.equal(api.clientWrites({ resource: "events", verb: "create" }).length, 1);
});

Deno.test("lists in pages with label and field selectors, shaped like a real list", async () => {
  await using api = await FakeApiServer.start();
  api.seed(Array.from({ length: 25 }, (_, i) => ({
    namespace: i % 2 ? "odd" : "even",
    name: `s${String(i).padStart(2, "0")}`,
    labels: { parity: i % 2 ? "odd" : "even" },
  })));
  const names: string[] = [];
  let cont = "";
  let pages = 0;
  do {
    const page = await call(api, `/api/v1/services?limit=10${cont ? `&continue=${cont}` : ""}`);
    assert.equal(page.body.kind, "ServiceList");
    assert.equal(page.body.apiVersion, "v1");
    assert.equal(page.body.metadata.resourceVersion, api.resourceVersion);
    assert.equal(page.body.items[0].kind, undefined, "list items carry no kind");
    names.push(...page.body.items.map((i: Json) => i.metadata.name));
    cont = page.body.metadata.continue ?? "";
    pages++;
  } while (cont);
  assert.equal(pages, 3);
  assert.equal(names.length, 25);
  const odd = await call(api, "/api/v1/services?labelSelector=parity%3Dodd");
  assert.equal(odd.body.items.length, 12);
  const inNs = await call(api, "/api/v1/namespaces/even/services?labelSelector=parity%3Dodd");
  assert.equal(inNs.body.items.length, 0);
  const one = await call(api, "/api/v1/namespaces/odd/services?fieldSelector=metadata.name%3Ds03");
  assert.deepEqual(one.body.items.map((i: Json) => i.metadata.name), ["s03"]);
  const bad = await call(api, "/api/v1/services?fieldSelector=spec.type%3DLoadBalancer");
  assert.equal(bad.status, 400);
  assert.equal(bad.body.message, "field label not supported: spec.type");
});

Deno.test("PUT and merge PATCH honour resourceVersion preconditions with 409 Conflict", async () => {
  await using api = await FakeApiServer.start();
  const lease = api.createObject("leases", {
    metadata: { name: "l", namespace: "kube-system" },
    spec: { holderIdentity: "a", leaseDurationSeconds: 15 },
  });
  const path = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/l";
  const stale = lease.metadata.resourceVersion;
  const ok = await call(api, path, {
    method: "PUT",
    json: { ...lease, spec: { holderIdentity: "b", leaseDurationSeconds: 15 } },
  });
  assert.equal(ok.status, 200);
  assert.ok(Number(ok.body.metadata.resourceVersion) > Number(stale));
  assert.equal(ok.body.metadata.uid, lease.metadata.uid);
  const conflict = await call(api, path, {
    method: "PUT",
    json: { ...lease, spec: { holderIdentity: "c" } },
  });
  assert.equal(conflict.status, 409);
  assert.equal(conflict.body.reason, "Conflict");
  assert.match(conflict.body.message, /the object has been modified/);
  const patch = (json: unknown, type = "application/merge-patch+json") =>
    call(api, path, { method: "PATCH", json, headers: { "content-type": type } });
  assert.equal((await patch({ metadata: { resourceVersion: stale }, spec: {} })).status, 409);
  const merged = await patch({
    metadata: { resourceVersion: ok.body.metadata.resourceVersion },
    spec: { holderIdentity: "d", leaseDurationSeconds: null },
  });
  assert.equal(merged.status, 200);
  assert.deepEqual(merged.body.spec, { holderIdentity: "d" });
  assert.equal((await patch({ spec: {} }, "application/strategic-merge-patch+json")).status, 415);
  assert.deepEqual(api.get("leases", "l", "kube-system")!.spec, { holderIdentity: "d" });
  assert.equal(api.clientWrites({ resource: "leases" }).length, 2);
  const del = await call(api, path, { method: "DELETE" });
  assert.equal(del.status, 200);
  assert.equal((await call(api, path)).status, 404);
});

Deno.test("the status subresource: main writes keep status, /status writes change only status", async () => {
  await using api = await FakeApiServer.start();
  const svc = api.create({
    name: "lb",
    type: "LoadBalancer",
    loadBalancerClass: "kube-gw.io/anycast",
  });
  const base = "/api/v1/namespaces/default/services/lb";
  const ingress = { loadBalancer: { ingress: [{ ip: "198.51.100.1", ipMode: "VIP" }] } };
  const st = await call(api, `${base}/status`, {
    method: "PUT",
    json: { ...svc, spec: { type: "ClusterIP" }, status: ingress },
  });
  assert.equal(st.status, 200);
  assert.deepEqual(st.body.status, ingress);
  assert.equal(st.body.spec.type, "LoadBalancer", "a status write leaves spec alone");
  const main = await call(api, base, {
    method: "PUT",
    json: {
      ...st.body,
      status: { loadBalancer: {} },
      spec: { ...st.body.spec, ports: [{ port: 443 }] },
    },
  });
  assert.equal(main.status, 200);
  assert.deepEqual(main.body.status, ingress, "a main write keeps the stored status");
  assert.equal(main.body.spec.ports[0].port, 443);
  assert.equal(main.body.spec.clusterIP, svc.spec && (svc.spec as Json).clusterIP);
  const cleared = await call(api, `${base}/status`, {
    method: "PATCH",
    json: { status: { loadBalancer: { ingress: null } } },
    headers: { "content-type": "application/merge-patch+json" },
  });
  assert.deepEqual(cleared.body.status, { loadBalancer: {} });
  assert.equal(api.clientWrites({ resource: "services", subresource: "status" }).length, 2);
  assert.equal(
    (await call(api, "/api/v1/namespaces/default/configmaps/x/status", { method: "PUT", json: {} }))
      .status,
    404,
  );
});

Deno.test("serves AddressPools: cluster-scoped, list, watch, generation on spec changes, the status subresource", async () => {
  await using api = await FakeApiServer.start();
  const from = api.resourceVersion;
  const base = "/apis/kube-gw.io/v1alpha1/addresspools";
  const pool = {
    apiVersion: "kube-gw.io/v1alpha1",
    kind: "AddressPool",
    metadata: { name: "public" },
    spec: { cidrs: ["198.51.100.0/24"] },
    status: { used: 9 },
  };
  const created = await call(api, base, { method: "POST", json: pool });
  assert.equal(created.status, 201);
  assert.equal(created.body.metadata.generation, 1);
  assert.equal(created.body.status, undefined, "status is the subresource's");
  const list = await call(api, base);
  assert.equal(list.body.kind, "AddressPoolList");
  assert.deepEqual(list.body.items.map((i: Json) => i.metadata.name), ["public"]);
  const st = await call(api, `${base}/public/status`, {
    method: "PATCH",
    headers: { "content-type": "application/merge-patch+json" },
    json: { status: { used: 1, free: "253" }, spec: { cidrs: [] } },
  });
  assert.equal(st.status, 200);
  assert.deepEqual(st.body.status, { used: 1, free: "253" });
  assert.deepEqual(st.body.spec.cidrs, ["198.51.100.0/24"], "a status write leaves spec alone");
  assert.equal(st.body.metadata.generation, 1);
  const edited = await call(api, `${base}/public`, {
    method: "PATCH",
    headers: { "content-type": "application/merge-patch+json" },
    json: { spec: { cidrs: ["198.51.100.0/25"] } },
  });
  assert.equal(edited.body.metadata.generation, 2, "a spec change");
  assert.deepEqual(edited.body.status, { used: 1, free: "253" }, "a main write keeps status");
  assert.equal(api.get("addresspools", "public")?.metadata.generation, 2);
  assert.equal(
    (await call(api, "/apis/kube-gw.io/v1alpha1/namespaces/x/addresspools")).status,
    404,
  );
  const s = await watch(api, `${base}?watch=true&resourceVersion=${from}&timeoutSeconds=1`);
  await s.finished();
  assert.deepEqual(s.types(), ["ADDED", "MODIFIED", "MODIFIED"]);
  assert.equal(api.deleteObject("addresspools", "public"), true);
});

Deno.test("a watch replays one kind from a resourceVersion and ends after timeoutSeconds", async () => {
  await using api = await FakeApiServer.start();
  const from = api.resourceVersion;
  api.create({ name: "a" });
  api.createObject("configmaps", configMap("c"));
  api.update({ name: "a", labels: { x: "y" } });
  api.delete("a");
  const s = await watch(
    api,
    `/api/v1/services?watch=true&resourceVersion=${from}&timeoutSeconds=1`,
  );
  await s.finished();
  assert.ok(s.ended, "the server closed the stream cleanly");
  assert.deepEqual(s.types(), ["ADDED", "MODIFIED", "DELETED"]);
  assert.equal(s.lines[0].object.kind, "Service");
  assert.equal(s.lines[0].object.apiVersion, "v1");
  const rvs = s.lines.map((l) => Number(l.object.metadata.resourceVersion));
  assert.deepEqual(rvs, [...rvs].sort((a, b) => a - b));
  api.compact();
  const old = await watch(api, `/api/v1/services?watch=true&resourceVersion=${from}`);
  await old.finished();
  assert.equal(old.lines[0].type, "ERROR");
  assert.equal(old.lines[0].object.code, 410);
  assert.equal(old.lines[0].object.reason, "Expired");
});

Deno.test("bookmarks come only when the resourceVersion moved past what the watch saw", async () => {
  await using api = await FakeApiServer.start({ bookmarkIntervalMs: 50 });
  api.create({ namespace: "web", name: "a" });
  // Bookmarks are due every 50 ms until 2 s before the 3 s timeout, and once at the end.
  const quiet = await watch(
    api,
    `/api/v1/namespaces/web/services?watch=true&allowWatchBookmarks=true&resourceVersion=${api.resourceVersion}&timeoutSeconds=3`,
  );
  await quiet.finished();
  assert.deepEqual(quiet.types(), [], "a quiet cluster sends no bookmark in ~20 chances");

  const s = await watch(
    api,
    `/api/v1/namespaces/web/services?watch=true&allowWatchBookmarks=true&resourceVersion=${api.resourceVersion}`,
  );
  await until("watch open", () => api.watchCount === 1);
  assert.equal(api.bookmarkNow(), 0);
  api.create({ namespace: "other", name: "b" }); // moves the Service watch cache, not this watch
  await until("bookmark", () => s.lines.length === 1);
  assert.equal(s.lines[0].type, "BOOKMARK");
  assert.equal(s.lines[0].object.metadata.resourceVersion, api.resourceVersion);
  api.createObject("configmaps", configMap("c")); // another kind: no bookmark until progress notify
  assert.equal(api.bookmarkNow(), 0);
  api.progressNotify();
  assert.equal(api.bookmarkNow(), 1);
  await until("bookmark after progress notify", () => s.lines.length === 2);
  assert.equal(s.lines[1].object.metadata.resourceVersion, api.resourceVersion);
  await s.cancel();
});

Deno.test("after a restore to a lower resourceVersion, newer versions get 504 Too large resource version", async () => {
  await using api = await FakeApiServer.start({ tooLargeWaitMs: 100 });
  api.create({ name: "a" });
  const snap = api.snapshot();
  api.create({ name: "b" });
  const seen = api.resourceVersion;
  const open = await watch(api, `/api/v1/services?watch=true&resourceVersion=${seen}`);
  api.restore(snap);
  await open.finished();
  assert.ok(open.ended, "the restarted server ended the watch");
  assert.ok(Number(api.resourceVersion) < Number(seen));
  const w = await call(api, `/api/v1/services?watch=true&resourceVersion=${seen}`);
  assert.equal(w.status, 504);
  assert.deepEqual(w.body, {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: `Timeout: Too large resource version: ${seen}, current: ${api.resourceVersion}`,
    reason: "Timeout",
    details: {
      causes: [{ reason: "ResourceVersionTooLarge", message: "Too large resource version" }],
      retryAfterSeconds: 1,
    },
    code: 504,
  });
  assert.equal((await call(api, `/api/v1/services?resourceVersion=${seen}`)).status, 504);
  await using asEvent = await FakeApiServer.start({ tooLargeAs: "event", tooLargeWaitMs: 0 });
  const ev = await watch(asEvent, "/api/v1/services?watch=true&resourceVersion=999999");
  await ev.finished();
  assert.deepEqual(ev.types(), ["ERROR"]);
  assert.equal(ev.lines[0].object.details.causes[0].reason, "ResourceVersionTooLarge");
  const relist = await call(api, "/api/v1/services");
  assert.deepEqual(relist.body.items.map((i: Json) => i.metadata.name), ["a"]);
  // A version the server reaches while the request waits is served.
  const ahead = Number(api.resourceVersion) + 1;
  const pending = call(api, `/api/v1/services?resourceVersion=${ahead}`);
  await until("list waiting", () => api.requests.length === 5 && api.requests[4].code === 0);
  api.create({ name: "c" });
  assert.equal((await pending).status, 200);
});

Deno.test("with a short history, a watch from a version it no longer holds gets 410", async () => {
  await using api = await FakeApiServer.start({ historyLimit: 2, goneAs: "status" });
  const from = api.resourceVersion;
  for (const name of ["a", "b", "c"]) api.create({ name });
  const gone = await call(api, `/api/v1/services?watch=true&resourceVersion=${from}`);
  assert.equal(gone.status, 410);
  assert.equal(gone.body.reason, "Expired");
  const recent = await watch(
    api,
    `/api/v1/services?watch=true&resourceVersion=${
      Number(api.resourceVersion) - 2
    }&timeoutSeconds=1`,
  );
  await recent.finished();
  assert.deepEqual(recent.lines.map((l) => l.object.metadata.name), ["b", "c"]);
});

Deno.test("continue tokens expire on demand and after a TTL with 410 Expired", async () => {
  await using api = await FakeApiServer.start({ continueTtlMs: 200 });
  api.seed(Array.from({ length: 5 }, (_, i) => ({ name: `s${i}` })));
  const first = await call(api, "/api/v1/services?limit=2");
  const token = first.body.metadata.continue;
  assert.equal((await call(api, `/api/v1/services?limit=2&continue=${token}`)).status, 200);
  api.expireContinueTokens();
  const expired = await call(api, `/api/v1/services?limit=2&continue=${token}`);
  assert.equal(expired.status, 410);
  assert.equal(expired.body.reason, "Expired");
  // Taken before the token is issued: the time until the 410 is then never shorter than the TTL,
  // however long the answer takes to arrive.
  const issued = Date.now();
  const fresh = (await call(api, "/api/v1/services?limit=2")).body.metadata.continue;
  let code = 200;
  while (code === 200) {
    code = (await call(api, `/api/v1/services?limit=2&continue=${fresh}`)).status;
    if (code === 200) await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(code, 410);
  assert.ok(Date.now() - issued >= 150, "not before its TTL");
});

Deno.test("tokens are accepted until they expire, are revoked, or are rotated out", async () => {
  await using api = await FakeApiServer.start({ token: "one" });
  const as = (t?: string) =>
    call(api, "/api/v1/services", { headers: t ? { authorization: `Bearer ${t}` } : {} });
  assert.equal((await as("one")).status, 200);
  const denied = await as();
  assert.equal(denied.status, 401);
  assert.equal(denied.body.reason, "Unauthorized");
  api.rotateToken("two", 60_000);
  assert.equal((await as("one")).status, 200, "the old token lasts its grace");
  assert.equal((await as("two")).status, 200);
  api.revokeToken("one");
  assert.equal((await as("one")).status, 401);
  const issued = Date.now();
  api.acceptToken("short", 100);
  assert.equal((await as("short")).status, 200);
  let code = 200;
  while (code === 200) {
    code = (await as("short")).status;
    if (code === 200) await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(code, 401);
  assert.ok(Date.now() - issued >= 100, "not before its deadline");
});

Deno.test("429 with Retry-After for the next requests or for a path", async () => {
  await using api = await FakeApiServer.start();
  api.throttle({ retryAfterSeconds: 7, requests: 2 });
  const r1 = await call(api, "/api/v1/services");
  assert.equal(r1.status, 429);
  assert.equal(r1.headers.get("retry-after"), "7");
  assert.equal(r1.body.reason, "TooManyRequests");
  assert.equal(r1.body.details.retryAfterSeconds, 7);
  assert.equal((await call(api, "/api/v1/services")).status, 429);
  assert.equal((await call(api, "/api/v1/services")).status, 200);
  api.throttle({ path: "/apis/coordination.k8s.io/", requests: Infinity });
  assert.equal((await call(api, "/api/v1/services")).status, 200);
  for (let i = 0; i < 3; i++) {
    assert.equal((await call(api, "/apis/coordination.k8s.io/v1/namespaces/a/leases")).status, 429);
  }
  api.clearThrottle();
  assert.equal((await call(api, "/apis/coordination.k8s.io/v1/namespaces/a/leases")).status, 200);
});

Deno.test("answers malformed 200 lists on demand", async () => {
  await using api = await FakeApiServer.start();
  api.create({ name: "a" });
  const shapes = [
    ["status", (b: Json) => b.kind === "Status"],
    ["items-string", (b: Json) => typeof b.items === "string"],
    ["items-object", (b: Json) => typeof b.items === "object" && !Array.isArray(b.items)],
    ["items-numbers", (b: Json) => JSON.stringify(b.items) === "[1,2,3]"],
    ["wrong-kind", (b: Json) => b.kind === "PodList"],
    ["not-json", (b: Json) => typeof b.text === "string"],
  ] as const;
  for (const [shape, ok] of shapes) {
    api.malformNextList(shape, { path: "/api/v1/services" });
    const r = await call(api, "/api/v1/services");
    assert.equal(r.status, 200, shape);
    assert.ok(ok(r.body), shape);
  }
  assert.equal((await call(api, "/api/v1/services")).body.items.length, 1);
});

Deno.test("serves HTTP/2 over TLS by ALPN, and HTTP/1.1", async () => {
  await using api = await FakeApiServer.start({
    tls: { cert: fixture("server.crt"), key: fixture("server.key") },
  });
  for (const [offer, want] of [[["h2", "http/1.1"], "h2"], [["http/1.1"], "http/1.1"]] as const) {
    const conn = await Deno.connectTls({
      hostname: "127.0.0.1",
      port: api.port,
      caCerts: [fixture("ca.crt")],
      alpnProtocols: [...offer],
    });
    assert.equal((await conn.handshake()).alpnProtocol, want);
    conn.close();
  }
  const client = Deno.createHttpClient({ caCerts: [fixture("ca.crt")], http1: false });
  const res = await fetch(`${api.url}/api/v1/services`, { client });
  assert.equal((await res.json()).kind, "ServiceList");
  client.close();
});

Deno.test("merge patch follows RFC 7386's examples", () => {
  const cases: [unknown, unknown, unknown][] = [
    [{ a: "b" }, { a: "c" }, { a: "c" }],
    [{ a: "b" }, { b: "c" }, { a: "b", b: "c" }],
    [{ a: "b" }, { a: null }, {}],
    [{ a: "b", b: "c" }, { a: null }, { b: "c" }],
    [{ a: ["b"] }, { a: "c" }, { a: "c" }],
    [{ a: "c" }, { a: ["b"] }, { a: ["b"] }],
    [{ a: { b: "c" } }, { a: { b: "d", c: null } }, { a: { b: "d" } }],
    [{ a: [{ b: "c" }] }, { a: [1] }, { a: [1] }],
    [["a", "b"], ["c", "d"], ["c", "d"]],
    [{ a: "b" }, ["c"], ["c"]],
    [{ a: "foo" }, null, null],
    [{ a: "foo" }, "bar", "bar"],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: "b", c: null }, { a: "b" }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  for (const [target, patch, want] of cases) {
    const before = JSON.stringify(target);
    assert.deepEqual(mergePatch(target, patch), want, `${before} + ${JSON.stringify(patch)}`);
    assert.equal(JSON.stringify(target), before, "the target is not changed");
  }
});

Deno.test("over HTTP/2 a cut watch is a stream reset and the connection carries on", async () => {
  await using api = await FakeApiServer.start({
    tls: { cert: fixture("server.crt"), key: fixture("server.key") },
  });
  const client = Deno.createHttpClient({ caCerts: [fixture("ca.crt")], http1: false });
  try {
    const s = await watch(
      api,
      `/api/v1/services?watch=true&resourceVersion=${api.resourceVersion}`,
      {
        client,
      },
    );
    await until("watch", () => api.watchCount === 1);
    api.create({ name: "a" });
    await until("event over h2", () => s.lines.length === 1);
    api.cutWatches();
    await s.finished();
    assert.ok(s.failed, "the stream broke");
    const r = await fetch(`${api.url}/api/v1/services`, { client });
    assert.equal((await r.json()).items.length, 1);
    assert.equal(api.connectionCount, 1, "both went over one connection");
  } finally {
    client.close();
  }
});

Deno.test("wedged connections are never answered while new connections are served", async () => {
  await using api = await FakeApiServer.start();
  api.create({ name: "a" });
  const idle = Deno.createHttpClient({});
  const watcher = Deno.createHttpClient({});
  const fresh = Deno.createHttpClient({});
  try {
    // A pooled keep-alive connection, and one carrying a watch.
    const first = await fetch(`${api.url}/api/v1/services`, { client: idle });
    await first.body?.cancel();
    const s = await watch(
      api,
      `/api/v1/services?watch=true&resourceVersion=${api.resourceVersion}`,
      { client: watcher },
    );
    await until("watch", () => api.watchCount === 1);
    api.wedgeConnections();
    const hung = fetch(`${api.url}/api/v1/services`, { client: idle }).then(
      async (r) => (await r.body?.cancel(), r.status),
      () => "reset",
    );
    await until("held on the pooled connection", () => api.heldCount === 1);
    const r = await fetch(`${api.url}/api/v1/services`, { client: fresh });
    assert.equal(r.status, 200, "a new connection is served");
    await r.body?.cancel();
    const s2 = await watch(
      api,
      `/api/v1/services?watch=true&resourceVersion=${api.resourceVersion}`,
      { client: fresh },
    );
    await until("second watch", () => api.watchCount === 2);
    api.create({ name: "b" });
    await until("event on the new connection", () => s2.lines.length === 1);
    assert.equal(s.lines.length, 0, "the wedged stream delivers nothing");
    assert.ok(!s.ended && !s.failed, "yet stays open");
    assert.equal(api.requestsPerConnection().size, 3);
    api.releaseHeld();
    assert.notEqual(await hung, 200);
    await s.cancel();
    await s2.cancel();
  } finally {
    idle.close();
    watcher.close();
    fresh.close();
  }
});

Deno.test("counts requests per path and per connection, and calls onRequest for each", async () => {
  await using api = await FakeApiServer.start();
  const seen: string[] = [];
  api.onRequest = (r) => seen.push(`${r.verb} ${r.path}`);
  const a = Deno.createHttpClient({});
  const b = Deno.createHttpClient({});
  try {
    for (const client of [a, a, b]) {
      const r = await fetch(`${api.url}/api/v1/namespaces/x/services`, { client });
      await r.body?.cancel();
    }
    const v = await fetch(`${api.url}/version`, { client: b });
    assert.equal((await v.json()).major, "1");
  } finally {
    a.close();
    b.close();
  }
  assert.deepEqual(seen, [
    "list /api/v1/namespaces/x/services",
    "list /api/v1/namespaces/x/services",
    "list /api/v1/namespaces/x/services",
    "other /version",
  ]);
  assert.equal(api.requestsPerPath().get("/api/v1/namespaces/x/services"), 3);
  assert.deepEqual([...api.requestsPerConnection().values()], [2, 2]);
  assert.equal(api.connectionCount, 2);
});

Deno.test("a TCP proxy black-holes existing connections and cuts every connection on demand", async () => {
  await using api = await FakeApiServer.start();
  await using proxy = TcpProxy.start({ port: api.port });
  const via = { url: `http://127.0.0.1:${proxy.port}` };
  const old = Deno.createHttpClient({});
  const fresh = Deno.createHttpClient({});
  try {
    const s = await watch(
      via,
      `/api/v1/services?watch=true&resourceVersion=${api.resourceVersion}`,
      { client: old },
    );
    await until("watch", () => api.watchCount === 1);
    api.create({ name: "before" });
    await until("event through the proxy", () => s.lines.length === 1);
    proxy.blackhole({ existingOnly: true });
    api.create({ name: "during" });
    const r = await call(via, "/api/v1/services", { client: fresh });
    assert.equal(r.body.items.length, 2, "a new connection is served");
    const s2 = await watch(
      via,
      `/api/v1/services?watch=true&resourceVersion=${api.resourceVersion}`,
      { client: fresh },
    );
    await until("second watch", () => api.watchCount === 2);
    api.create({ name: "after" });
    await until("event on the new connection", () => s2.lines.length === 1);
    assert.equal(s.lines.length, 1, "nothing passes the black hole");
    assert.ok(!s.ended && !s.failed, "and the socket stays open");
    proxy.heal();
    await until("held bytes delivered after healing", () => s.lines.length === 3);
    assert.equal(proxy.cutAll(), 2);
    await s.finished();
    await s2.finished();
    assert.ok(s.failed && s2.failed, "cut streams fail, they do not end cleanly");
    assert.equal(proxy.accepted, 2);
  } finally {
    old.close();
    fresh.close();
  }
});

Deno.test("a full black hole accepts new connections and answers nothing until healed", async () => {
  await using api = await FakeApiServer.start();
  await using proxy = TcpProxy.start({ port: api.port });
  const client = Deno.createHttpClient({});
  try {
    proxy.blackhole();
    const pending = fetch(`http://127.0.0.1:${proxy.port}/api/v1/services`, { client });
    await until("accepted", () => proxy.accepted === 1);
    assert.equal(api.requests.length, 0, "the request never reached the server");
    proxy.heal();
    const r = await pending;
    assert.equal(r.status, 200);
    await r.body?.cancel();
  } finally {
    client.close();
  }
});

Deno.test("a proxy that cuts every connection periodically breaks each long watch", async () => {
  await using api = await FakeApiServer.start();
  await using proxy = TcpProxy.start({ port: api.port });
  const via = { url: `http://127.0.0.1:${proxy.port}` };
  const client = Deno.createHttpClient({});
  try {
    proxy.cutEvery(100);
    for (let i = 0; i < 2; i++) {
      const s = await watch(
        via,
        `/api/v1/services?watch=true&resourceVersion=${api.resourceVersion}`,
        {
          client,
        },
      );
      await s.finished();
      assert.ok(s.failed, `watch ${i} was cut`);
    }
    proxy.cutEvery(0);
    assert.ok(proxy.accepted >= 2);
  } finally {
    client.close();
  }
});
