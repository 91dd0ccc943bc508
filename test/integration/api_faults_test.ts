/**
 * The API client and the engine against the fake API server's real-world
 * faults, over TLS with HTTP/2 as kube-apiserver negotiates it, with a TCP
 * proxy in front for black holes and cuts. The client's timings
 * are shortened (probe every 500 ms) so the tests run in seconds; the
 * default timings are the unit tests' and the benchmark's.
 */
import assert from "node:assert/strict";
import { KubeApi, type KubeApiOptions } from "../../lib/kube/client.ts";
import { type ApiConnection, fileToken } from "../../lib/kube/kubeconfig.ts";
import type { ListWatch } from "../../lib/kube/list_watch.ts";
import type { RestartReason } from "../../lib/kube/observer.ts";
import type { BackoffOptions } from "../../lib/base/backoff.ts";
import type { ServiceRecord } from "../../lib/service/record.ts";
import { serviceSource, type ServiceStore } from "../../lib/agent/service_source.ts";
import { systemClock } from "../../lib/base/system_clock.ts";
import { FakeApiServer, type FakeApiServerOptions } from "../support/fakes/apiserver.ts";
import { runSources } from "../support/procs/running_sources.ts";
import { TcpProxy } from "../support/fakes/tcp_proxy.ts";
import { waitFor } from "../support/wait.ts";

const fixture = (name: string) =>
  Deno.readTextFileSync(new URL(`../fixtures/${name}`, import.meta.url));
const TLS = { cert: fixture("server.crt"), key: fixture("server.key") };

/** Keeps the Services of every scope, and whether a scope was ever emptied by a list. */
class Store implements ServiceStore {
  readonly services = new Map<string, ServiceRecord>();
  replaces = 0;
  emptied = false;
  replace(list: ServiceRecord[], namespace: string | undefined): void {
    this.replaces++;
    const before = [...this.services.keys()].filter((k) =>
      !namespace || k.startsWith(`${namespace}/`)
    );
    for (const k of before) this.services.delete(k);
    if (before.length > 0 && list.length === 0) this.emptied = true;
    for (const s of list) this.services.set(`${s.namespace}/${s.name}`, s);
  }
  upsert(s: ServiceRecord): void {
    this.services.set(`${s.namespace}/${s.name}`, s);
  }
  delete(namespace: string, name: string): void {
    this.services.delete(`${namespace}/${name}`);
  }
}

interface Harness extends AsyncDisposable {
  server: FakeApiServer;
  proxy?: TcpProxy;
  api: KubeApi;
  store: Store;
  sources: ListWatch<ServiceRecord>[];
  restarts: RestartReason[];
  replaced: string[];
  auth: number[];
}

async function harness(opts: {
  server?: FakeApiServerOptions;
  namespaces?: (string | undefined)[];
  proxy?: boolean;
  client?: KubeApiOptions;
  conn?: Partial<ApiConnection>;
  backoff?: BackoffOptions;
  before?: (s: FakeApiServer) => void;
}): Promise<Harness> {
  const server = await FakeApiServer.start({ tls: TLS, ...opts.server });
  opts.before?.(server);
  const proxy = opts.proxy ? TcpProxy.start({ port: server.port }) : undefined;
  const replaced: string[] = [];
  const auth: number[] = [];
  const api = new KubeApi({
    server: `https://127.0.0.1:${proxy?.port ?? server.port}`,
    caCerts: [fixture("ca.crt")],
    source: "test",
    ...opts.conn,
  }, {
    probeIntervalMs: 500,
    probeTimeoutMs: 300,
    headersTimeoutMs: 2000,
    listTimeoutMs: 2000,
    observer: {
      authFailed: (code) => auth.push(code),
      connectionReplaced: (reason) => replaced.push(reason),
    },
    ...opts.client,
  });
  const store = new Store();
  const restarts: RestartReason[] = [];
  const sources = (opts.namespaces ?? [undefined]).map((namespace) =>
    serviceSource({
      api,
      store,
      namespace,
      watchTimeoutSeconds: () => 300,
      backoff: opts.backoff ?? { initialMs: 20, maxMs: 200 },
      clock: systemClock,
      observer: { watchRestarted: (_k, reason) => restarts.push(reason) },
    })
  );
  return {
    server,
    proxy,
    api,
    store,
    sources,
    restarts,
    replaced,
    auth,
    ...runSources(sources, { api, proxy, server }),
  };
}

const NS = ["a", "b", "c"];

async function synced(h: Harness, watches: number): Promise<void> {
  await Promise.all(h.sources.map((s) => s.whenSynced()));
  await waitFor("watches open", () => h.server.watchCount === watches);
}

Deno.test("a wedged HTTP/2 connection under three watches is found by the probe and replaced", async () => {
  await using h = await harness({ namespaces: NS });
  await synced(h, 3);
  assert.equal(h.server.connectionCount, 1, "three watches share one HTTP/2 connection");
  h.server.wedgeConnections();
  for (const ns of NS) h.server.create({ namespace: ns, name: "after-wedge" });
  await waitFor(
    "every namespace caught up over a new connection",
    () => NS.every((ns) => h.store.services.has(`${ns}/after-wedge`)),
    10_000,
  );
  assert.ok(h.replaced.includes("probe"), `replaced: ${h.replaced}`);
  assert.ok(!h.restarts.includes("stalled"), "found by the probe, not the silence deadline");
});

Deno.test("a black-holed connection (the endpoint behind the ClusterIP died) is replaced", async () => {
  await using h = await harness({ namespaces: NS, proxy: true });
  await synced(h, 3);
  h.proxy!.blackhole({ existingOnly: true });
  for (const ns of NS) h.server.create({ namespace: ns, name: "after-blackhole" });
  await waitFor(
    "every namespace caught up",
    () => NS.every((ns) => h.store.services.has(`${ns}/after-blackhole`)),
    10_000,
  );
  assert.ok(h.replaced.includes("probe"), `replaced: ${h.replaced}`);
  h.proxy!.heal();
});

Deno.test("five connection cuts in a row each cost a reconnect within about a second, not a growing backoff", async () => {
  await using h = await harness({ proxy: true, backoff: { initialMs: 500, maxMs: 30_000 } });
  await synced(h, 1);
  const waits: number[] = [];
  for (let i = 0; i < 5; i++) {
    // The watch must have been healthy (delivered an event) before each cut.
    h.server.create({ name: `before-${i}` });
    await waitFor("event", () => h.store.services.has(`default/before-${i}`));
    const cutAt = performance.now();
    h.proxy!.cutAll();
    h.server.create({ name: `after-${i}` });
    await waitFor("caught up", () => h.store.services.has(`default/after-${i}`), 10_000);
    waits.push(performance.now() - cutAt);
  }
  // A cut healthy watch reconnects at once (a few ms here, less than a second on a loaded
  // machine). A backoff that grew from 500 ms would wait at least 4 s before the fifth.
  assert.ok(waits.every((w) => w < 3000), `waits: ${waits.map(Math.round)}`);
});

Deno.test("after an etcd restore to a lower resourceVersion the watch relists and converges", async () => {
  await using h = await harness({
    server: { tooLargeWaitMs: 100 },
    before: (s) => s.create({ name: "kept", externalIPs: ["10.0.100.1"] }),
  });
  await synced(h, 1);
  const snap = h.server.snapshot();
  for (let i = 0; i < 5; i++) h.server.create({ name: `lost-${i}` });
  await waitFor("events", () => h.store.services.size === 6);
  h.server.restore(snap);
  h.server.create({ name: "after-restore" });
  await waitFor(
    "converged on the restored state",
    () => h.store.services.has("default/after-restore") && !h.store.services.has("default/lost-0"),
    10_000,
  );
  assert.deepEqual([...h.store.services.keys()].sort(), ["default/after-restore", "default/kept"]);
});

Deno.test("a malformed 200 LIST keeps every Service, and the next good list is used", async () => {
  for (const shape of ["status", "items-string", "items-object", "items-numbers", "wrong-kind"]) {
    await using h = await harness({ before: (s) => s.create({ name: "web" }) });
    await synced(h, 1);
    h.server.malformNextList(shape as "status");
    // History moves on and is compacted while the agent is cut off: the 410 makes it
    // relist, and the malformed answer comes then.
    h.server.cutWatches();
    h.server.stall("headers");
    h.server.create({ name: "later" });
    h.server.compact();
    h.server.stall(false);
    await waitFor(`${shape}: the good relist`, () => h.store.services.has("default/later"));
    assert.equal(h.server.listRequests, 3, `${shape}: the first list, the malformed, the good`);
    assert.equal(h.store.emptied, false, `${shape}: never emptied`);
    assert.ok(h.store.services.has("default/web"));
    assert.ok(h.restarts.includes("error"), `${shape}: counted as an error`);
  }
});

Deno.test("429 with Retry-After is waited out, not retried sooner", async () => {
  await using h = await harness({
    before: (s) => s.throttle({ retryAfterSeconds: 2, requests: 1, path: "/api/v1/services" }),
  });
  await synced(h, 1);
  const lists = h.server.requests.filter((r) => !r.watch && r.path === "/api/v1/services");
  assert.equal(lists[0].code, 429);
  assert.ok(lists[1].at - lists[0].at >= 2000, `retried after ${lists[1].at - lists[0].at}ms`);
});

Deno.test("a LIST the server holds is timed out and retried", async () => {
  await using h = await harness({ before: (s) => s.hangRequests("/api/v1/services") });
  await waitFor("a second list", () => h.server.listRequests >= 2, 10_000);
  assert.ok(h.replaced.includes("timeout"));
  h.server.releaseHeld();
  await waitFor("synced", () => h.sources[0].synced, 10_000);
});

Deno.test("a rotated token file is re-read on 401 and the watch carries on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kube-gw-token-" });
  try {
    const path = `${dir}/token`;
    await Deno.writeTextFile(path, "t1");
    const source = fileToken(path, (p) => Deno.readTextFileSync(p), "token");
    await using h = await harness({
      server: { token: "t1" },
      conn: { token: source.token, refreshToken: source.refresh },
    });
    await synced(h, 1);
    await Deno.writeTextFile(path, "t2");
    h.server.rotateToken("t2");
    h.server.cutWatches();
    h.server.create({ name: "after-rotation" });
    await waitFor("after rotation", () => h.store.services.has("default/after-rotation"));
    assert.deepEqual(h.auth, [], "the 401 was answered by re-reading the token");
    assert.equal(h.api.authProblem, undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a revoked token is reported as an auth problem and counted", async () => {
  await using h = await harness({ server: { token: "t1" }, conn: { token: () => "t1" } });
  await synced(h, 1);
  h.server.revokeToken("t1");
  h.server.cutWatches();
  await waitFor("two refusals", () => h.auth.length >= 2);
  assert.match(h.api.authProblem ?? "", /refuses kube-gw's credentials: GET .*: 401/);
});
