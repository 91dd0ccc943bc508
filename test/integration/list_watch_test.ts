import assert from "node:assert/strict";
import { KubeApi } from "../../lib/kube/client.ts";
import type { ApiConnection } from "../../lib/kube/kubeconfig.ts";
import type { ListWatch } from "../../lib/kube/list_watch.ts";
import type { ListWatchObserver, RestartReason } from "../../lib/kube/observer.ts";
import type { ServiceRecord } from "../../lib/service/record.ts";
import { serviceSource, type ServiceStore } from "../../lib/agent/service_source.ts";
import { systemClock } from "../../lib/base/system_clock.ts";
import {
  DEMO_SERVICE,
  FakeApiServer,
  type FakeApiServerOptions,
} from "../support/fakes/apiserver.ts";
import { waitFor as until } from "../support/wait.ts";
import { type ListWatchApi, type WatchEvent } from "../../lib/kube/ports.ts";

const fixture = (name: string) =>
  Deno.readTextFileSync(new URL(`../fixtures/${name}`, import.meta.url));

/** A sink that keeps the Services it was told about. */
class Store implements ServiceStore {
  readonly services = new Map<string, ServiceRecord>();
  replaces = 0;
  replace(list: ServiceRecord[], namespace: string | undefined): void {
    this.replaces++;
    for (const k of [...this.services.keys()]) {
      if (!namespace || k.startsWith(`${namespace}/`)) this.services.delete(k);
    }
    for (const s of list) this.services.set(`${s.namespace}/${s.name}`, s);
  }
  upsert(s: ServiceRecord): void {
    this.services.set(`${s.namespace}/${s.name}`, s);
  }
  delete(namespace: string, name: string): void {
    this.services.delete(`${namespace}/${name}`);
  }
  ips(): string[] {
    return [...this.services.values()].flatMap((s) => s.externalIPs).sort();
  }
}

/** An observer that keeps the watch restarts. */
function restartLog(): { restarts: RestartReason[]; observer: ListWatchObserver } {
  const restarts: RestartReason[] = [];
  return { restarts, observer: { watchRestarted: (_kind, reason) => restarts.push(reason) } };
}

/** Wraps an API to keep the last watch event that passed through. */
function spy(api: ListWatchApi): { api: ListWatchApi; last: () => WatchEvent | undefined } {
  let last: WatchEvent | undefined;
  return {
    last: () => last,
    api: {
      list: (path, query, signal) => api.list(path, query, signal),
      async *watch(path, query, signal, onData) {
        for await (const ev of api.watch(path, query, signal, onData)) {
          last = ev;
          yield ev;
        }
      },
    },
  };
}

interface Harness extends AsyncDisposable {
  server: FakeApiServer;
  store: Store;
  source: ListWatch<ServiceRecord>;
  restarts: RestartReason[];
  lastEvent: () => WatchEvent | undefined;
}

async function harness(
  opts: FakeApiServerOptions & {
    conn?: Partial<ApiConnection>;
    namespace?: string;
    selector?: string;
    watchTimeoutSeconds?: number;
    silenceMs?: number;
    pageSize?: number;
  } = {},
  before?: (s: FakeApiServer) => void,
): Promise<Harness> {
  const server = await FakeApiServer.start(opts);
  before?.(server);
  const api = new KubeApi({ server: server.url, source: "test", ...opts.conn });
  const watched = spy(api);
  const store = new Store();
  const { restarts, observer } = restartLog();
  const source = serviceSource({
    api: watched.api,
    store,
    namespace: opts.namespace,
    labelSelector: opts.selector,
    pageSize: opts.pageSize,
    watchTimeoutSeconds: () => opts.watchTimeoutSeconds ?? 300,
    silenceMs: opts.silenceMs ? () => opts.silenceMs! : undefined,
    backoff: { initialMs: 20, maxMs: 200 },
    clock: systemClock,
    observer,
  });
  const controller = new AbortController();
  const running = source.run(controller.signal);
  return {
    server,
    store,
    source,
    restarts,
    lastEvent: watched.last,
    async [Symbol.asyncDispose]() {
      controller.abort();
      await running;
      api.close();
      await server.close();
    },
  };
}

Deno.test("lists, then follows creates, updates and deletes through the watch stream", async () => {
  await using h = await harness({}, (s) => s.create(DEMO_SERVICE));
  await h.source.whenSynced();
  assert.deepEqual(h.store.ips(), ["10.0.100.30", "10.0.100.31"]);
  h.server.create({ name: "web", externalIPs: ["10.0.100.40"] });
  await until("web", () => h.store.services.has("default/web"));
  h.server.update({ name: "web", externalIPs: ["10.0.100.41"] });
  await until("update", () => h.store.ips().includes("10.0.100.41"));
  h.server.delete("nginx");
  await until("delete", () => !h.store.services.has("default/nginx"));
  assert.deepEqual(h.store.ips(), ["10.0.100.41"]);
  assert.equal(h.server.listRequests, 1);
  const watch = h.server.requests.find((r) => r.watch)!;
  assert.equal(watch.query.allowWatchBookmarks, "true");
  assert.equal(watch.query.timeoutSeconds, "300");
  assert.ok(Number(watch.query.resourceVersion) > 0);
});

Deno.test("keeps only what it needs of each Service", async () => {
  await using h = await harness({}, (s) => s.create(DEMO_SERVICE));
  await h.source.whenSynced();
  assert.deepEqual(h.store.services.get("default/nginx"), {
    namespace: "default",
    name: "nginx",
    type: "ClusterIP",
    clusterIP: "10.96.0.10",
    externalIPs: ["10.0.100.30", "10.0.100.31"],
    ingressIPs: [],
    trafficPolicy: "Cluster",
    proxySkipped: false,
  });
});

Deno.test("reads a large list in pages", async () => {
  await using h = await harness(
    { pageSize: 100 },
    (s) =>
      s.seed(
        Array.from(
          { length: 1050 },
          (_, i) => ({ name: `s${i}`, externalIPs: [`10.0.${i >> 8}.${i & 255}`] }),
        ),
      ),
  );
  await h.source.whenSynced();
  assert.equal(h.store.services.size, 1050);
  assert.equal(h.server.listRequests, 11);
  assert.equal(h.server.requests.filter((r) => r.query.continue).length, 10);
});

Deno.test("resumes a watch the server closed, from its resource version, without relisting", async () => {
  await using h = await harness({});
  await h.source.whenSynced();
  await until("watch", () => h.server.watchCount === 1);
  h.server.closeWatches();
  h.server.create({ name: "after-close", externalIPs: ["10.0.100.50"] });
  await until("event after close", () => h.store.services.has("default/after-close"));
  assert.equal(h.server.listRequests, 1);
  assert.ok(h.restarts.includes("closed"));
});

Deno.test("bookmarks move the resource version forward", async () => {
  await using h = await harness({ bookmarkIntervalMs: 20 });
  await h.source.whenSynced();
  await until("watch", () => h.server.watchCount === 1);
  for (let i = 0; i < 5; i++) h.server.create({ name: `b${i}` });
  await until("events", () => h.store.services.size === 5);
  // The watch cache sends a bookmark only once its resourceVersion moved past the
  // watch's: a write of another kind, then an etcd progress notification.
  h.server.createObject("configmaps", {
    metadata: { namespace: "default", name: "unrelated" },
    data: {},
  });
  h.server.progressNotify();
  await until("a bookmark at the newest version", () => {
    const ev = h.lastEvent();
    const md = ev?.object.metadata as { resourceVersion?: string } | undefined;
    return ev?.type === "BOOKMARK" && md?.resourceVersion === h.server.resourceVersion;
  });
  h.server.cutWatches();
  await until("rewatch", () => h.server.watchRequests === 2 && h.server.watchCount === 1);
  const second = h.server.requests.filter((r) => r.watch)[1];
  assert.equal(second.query.resourceVersion, h.server.resourceVersion);
});

Deno.test("relists after 410 Gone sent as a watch ERROR event, and drops what disappeared", async () => {
  await using h = await harness({}, (s) => s.create(DEMO_SERVICE));
  await h.source.whenSynced();
  await until("watch", () => h.server.watchCount === 1);
  // While the agent is cut off, history moves on and is compacted.
  h.server.cutWatches();
  h.server.stall("headers");
  h.server.delete("nginx");
  h.server.create({ name: "new", externalIPs: ["10.0.100.60"] });
  h.server.compact();
  h.server.stall(false);
  await until("relist", () => h.server.listRequests === 2 && h.store.services.has("default/new"));
  assert.ok(!h.store.services.has("default/nginx"));
  assert.ok(h.restarts.includes("gone"));
});

Deno.test("relists after 410 Gone sent as an HTTP status", async () => {
  await using h = await harness(
    { goneAs: "status", silenceMs: 300 },
    (s) => s.create(DEMO_SERVICE),
  );
  await h.source.whenSynced();
  await until("watch", () => h.server.watchCount === 1);
  h.server.stall("body");
  h.server.delete("nginx");
  h.server.compact();
  h.server.stall(false);
  h.server.cutWatches();
  await until("relist", () => h.server.listRequests === 2);
  await until("deleted", () => !h.store.services.has("default/nginx"));
});

Deno.test("an expired continue token is followed by one full unpaged list", async () => {
  const server = await FakeApiServer.start();
  server.seed(Array.from({ length: 30 }, (_, i) => ({ name: `s${i}` })));
  const api = new KubeApi({ server: server.url, source: "test" });
  let pages = 0;
  const original = api.list.bind(api);
  api.list = async (path, query, signal) => {
    const page = await original(path, query, signal);
    if (++pages === 1) {
      // Between two pages, history moves on and is compacted: the token expires.
      server.create({ name: "late" });
      server.compact();
    }
    return page;
  };
  const store = new Store();
  const { restarts, observer } = restartLog();
  const source = serviceSource({
    api,
    store,
    pageSize: 10,
    backoff: { initialMs: 10 },
    clock: systemClock,
    observer,
  });
  const controller = new AbortController();
  const running = source.run(controller.signal);
  await source.whenSynced();
  assert.equal(store.services.size, 31);
  assert.equal(store.replaces, 1, "the broken list never reached the sink");
  assert.deepEqual(restarts, [], "no relist loop: the fallback list completes the list");
  const lists = server.requests.filter((r) => !r.watch);
  assert.deepEqual(lists.map((r) => [r.query.limit, r.query.continue !== undefined]), [
    ["10", false],
    ["10", true],
    [undefined, false],
  ]);
  controller.abort();
  await running;
  api.close();
  await server.close();
});

Deno.test("retries with backoff through 5xx and keeps what it had", async () => {
  await using h = await harness({}, (s) => s.create(DEMO_SERVICE));
  h.server.failNext(3, 503);
  await h.source.whenSynced();
  assert.equal(h.restarts.filter((r) => r === "error").length, 3);
  assert.deepEqual(h.store.ips(), ["10.0.100.30", "10.0.100.31"]);
  await until("watch", () => h.server.watchCount === 1);
  h.server.cutWatches();
  h.server.failNext(2, 500);
  h.server.create({ name: "later", externalIPs: ["10.0.100.70"] });
  await until("recovered", () => h.store.services.has("default/later"));
  assert.deepEqual(h.store.ips(), ["10.0.100.30", "10.0.100.31", "10.0.100.70"]);
  assert.equal(h.server.listRequests, 4); // 3 failed lists, then one; the watch failures did not relist
});

Deno.test("keeps retrying while connections are refused, then catches up", async () => {
  await using h = await harness({}, (s) => s.create(DEMO_SERVICE));
  await h.source.whenSynced();
  await until("watch", () => h.server.watchCount === 1);
  await h.server.stop();
  const refusedSince = h.restarts.length;
  await until("retries against a dead server", () => h.restarts.length >= refusedSince + 3);
  assert.deepEqual(h.store.ips(), ["10.0.100.30", "10.0.100.31"]);
  h.server.create({ name: "while-down", externalIPs: ["10.0.100.80"] });
  await h.server.listen();
  await until("caught up", () => h.store.services.has("default/while-down"));
});

Deno.test("restarts a watch that stalls before its headers", async () => {
  await using h = await harness({ silenceMs: 200 });
  await h.source.whenSynced();
  await until("watch", () => h.server.watchCount === 1);
  h.server.stall("headers");
  h.server.cutWatches();
  await until("stalled restart", () => h.restarts.includes("stalled"), 5000);
  h.server.stall(false);
  h.server.create({ name: "after-stall" });
  await until("after stall", () => h.store.services.has("default/after-stall"));
});

Deno.test("restarts a watch that goes silent mid-stream", async () => {
  await using h = await harness({ silenceMs: 200 });
  await h.source.whenSynced();
  await until("watch", () => h.server.watchCount === 1);
  h.server.stall("body");
  h.server.create({ name: "lost-in-stall" });
  await until("stalled restart", () => h.restarts.includes("stalled"), 5000);
  h.server.stall(false);
  await until("replayed", () => h.store.services.has("default/lost-in-stall"));
  assert.equal(h.server.listRequests, 1);
});

Deno.test("watches one namespace with a label selector", async () => {
  await using h = await harness({ namespace: "web", selector: "kube-gw/announce=true" }, (s) => {
    s.create({
      namespace: "web",
      name: "yes",
      labels: { "kube-gw/announce": "true" },
      externalIPs: ["10.0.100.1"],
    });
    s.create({ namespace: "web", name: "no", externalIPs: ["10.0.100.2"] });
    s.create({
      namespace: "other",
      name: "yes",
      labels: { "kube-gw/announce": "true" },
      externalIPs: ["10.0.100.3"],
    });
  });
  await h.source.whenSynced();
  assert.deepEqual([...h.store.services.keys()], ["web/yes"]);
  await until("watch", () => h.server.watchCount === 1);
  h.server.update({ namespace: "web", name: "yes", externalIPs: ["10.0.100.1"] }); // label removed
  await until("dropped when it stops matching", () => h.store.services.size === 0);
  assert.equal(h.server.requests[0].path, "/api/v1/namespaces/web/services");
  assert.equal(h.server.requests[0].query.labelSelector, "kube-gw/announce=true");
});

Deno.test("authenticates with a bearer token over TLS with a CA", async () => {
  const tls = { cert: fixture("server.crt"), key: fixture("server.key") };
  await using h = await harness(
    { tls, token: "s3cret", conn: { caCerts: [fixture("ca.crt")], token: () => "s3cret" } },
    (s) => s.create(DEMO_SERVICE),
  );
  await h.source.whenSynced();
  assert.deepEqual(h.store.ips(), ["10.0.100.30", "10.0.100.31"]);
  assert.ok(h.server.url.startsWith("https://"));
});

Deno.test("authenticates with a client certificate", async () => {
  const tls = { cert: fixture("server.crt"), key: fixture("server.key"), ca: fixture("ca.crt") };
  await using h = await harness(
    {
      tls,
      requireClientCert: true,
      conn: {
        caCerts: [fixture("ca.crt")],
        cert: fixture("client.crt"),
        key: fixture("client.key"),
      },
    },
    (s) => s.create(DEMO_SERVICE),
  );
  await h.source.whenSynced();
  assert.deepEqual(h.store.ips(), ["10.0.100.30", "10.0.100.31"]);
});

Deno.test("a wrong token, a missing client certificate or an untrusted server never syncs", async () => {
  const tls = { cert: fixture("server.crt"), key: fixture("server.key"), ca: fixture("ca.crt") };
  const cases: [string, Parameters<typeof harness>[0]][] = [
    ["wrong token", {
      tls,
      token: "s3cret",
      conn: { caCerts: [fixture("ca.crt")], token: () => "guess" },
    }],
    ["no client certificate", {
      tls,
      requireClientCert: true,
      conn: { caCerts: [fixture("ca.crt")] },
    }],
    ["untrusted server", { tls, conn: { caCerts: [fixture("other-ca.crt")] } }],
  ];
  for (const [what, opts] of cases) {
    await using h = await harness(opts, (s) => s.create(DEMO_SERVICE));
    await until(`${what}: retries`, () => h.restarts.length >= 2);
    assert.equal(h.source.synced, false, what);
    assert.equal(h.store.services.size, 0, what);
  }
});
