/**
 * API faults, measured with the default timings: the engine and
 * the client exactly as the agent builds them (`KubeApi` with its defaults,
 * one `ListWatch` per namespace with its defaults, readiness from
 * `apiNotReady` with `--api-stale-after` 45 s), against the fake API server
 * over TLS with HTTP/2, behind a TCP proxy for black holes and cuts.
 *
 * Measures: time from a dead API connection to a working watch (1 and 3
 * namespaces, wedged and black-holed), each of 5 connection cuts, the time
 * to converge after a restore to a lower resourceVersion, the time until
 * readiness fails once the API is unreachable, and the requests of a quiet
 * agent over a window (default 120 s), next to the rate its timers predict.
 *
 * Usage: deno run -P=bench scripts/bench/api_faults.ts [--quiet-seconds N] [--only NAME,...]
 * Names: wedge1, wedge3, blackhole1, blackhole3, cuts, restore, readyz, quiet.
 *
 * @module
 */

import { apiNotReady } from "../../lib/kube/staleness.ts";
import { KubeApi } from "../../lib/kube/client.ts";
import type { ListWatch } from "../../lib/kube/list_watch.ts";
import type { ServiceRecord } from "../../lib/service/record.ts";
import { serviceSource, type ServiceStore } from "../../lib/agent/service_source.ts";
import { systemClock } from "../../lib/base/system_clock.ts";
import { FakeApiServer } from "../../test/support/fakes/apiserver.ts";
import { runSources } from "../../test/support/procs/running_sources.ts";
import { TcpProxy } from "../../test/support/fakes/tcp_proxy.ts";
import { waitFor } from "../../test/support/wait.ts";

const fixture = (name: string) =>
  Deno.readTextFileSync(new URL(`../../test/fixtures/${name}`, import.meta.url));

class Store implements ServiceStore {
  readonly keys = new Set<string>();
  replace(list: ServiceRecord[], namespace: string | undefined): void {
    for (const k of [...this.keys]) {
      if (!namespace || k.startsWith(`${namespace}/`)) this.keys.delete(k);
    }
    for (const s of list) this.keys.add(`${s.namespace}/${s.name}`);
  }
  upsert(s: ServiceRecord): void {
    this.keys.add(`${s.namespace}/${s.name}`);
  }
  delete(namespace: string, name: string): void {
    this.keys.delete(`${namespace}/${name}`);
  }
}

interface Rig extends AsyncDisposable {
  server: FakeApiServer;
  proxy: TcpProxy;
  api: KubeApi;
  store: Store;
  sources: ListWatch<ServiceRecord>[];
}

async function rig(namespaces: (string | undefined)[]): Promise<Rig> {
  const server = await FakeApiServer.start({
    tls: { cert: fixture("server.crt"), key: fixture("server.key") },
  });
  const proxy = TcpProxy.start({ port: server.port });
  const api = new KubeApi({
    server: `https://127.0.0.1:${proxy.port}`,
    caCerts: [fixture("ca.crt")],
    source: "bench",
  });
  const store = new Store();
  const sources = namespaces.map((namespace) =>
    serviceSource({ api, store, namespace, clock: systemClock })
  );
  const running = runSources(sources, { api, proxy, server });
  await Promise.all(sources.map((s) => s.whenSynced()));
  await waitFor("watches open", () => server.watchCount === sources.length, 30_000);
  return { server, proxy, api, store, sources, ...running };
}

const NS3 = ["a", "b", "c"];

/** Seconds from a dead connection to every namespace seeing a new Service. */
async function deadConnection(kind: "wedge" | "blackhole", n: 1 | 3): Promise<number> {
  const namespaces = n === 1 ? ["a"] : NS3;
  await using r = await rig(namespaces);
  // Let the watches settle for a random part of a probe period, as in life.
  await new Promise((res) => setTimeout(res, Math.random() * 30_000));
  const t0 = performance.now();
  if (kind === "wedge") r.server.wedgeConnections();
  else r.proxy.blackhole({ existingOnly: true });
  for (const ns of namespaces) r.server.create({ namespace: ns, name: `after-${kind}` });
  await waitFor(
    "caught up",
    () => namespaces.every((ns) => r.store.keys.has(`${ns}/after-${kind}`)),
    120_000,
    50,
  );
  const s = (performance.now() - t0) / 1000;
  r.proxy.heal();
  return s;
}

async function cuts(): Promise<number[]> {
  await using r = await rig([undefined]);
  const out: number[] = [];
  for (let i = 0; i < 5; i++) {
    r.server.create({ name: `before-${i}` });
    await waitFor("event", () => r.store.keys.has(`default/before-${i}`), 30_000);
    await new Promise((res) => setTimeout(res, 2000));
    const t0 = performance.now();
    r.proxy.cutAll();
    r.server.create({ name: `after-${i}` });
    await waitFor("caught up", () => r.store.keys.has(`default/after-${i}`), 60_000);
    out.push((performance.now() - t0) / 1000);
  }
  return out;
}

async function restore(): Promise<number> {
  await using r = await rig([undefined]);
  r.server.create({ name: "kept" });
  const snap = r.server.snapshot();
  for (let i = 0; i < 5; i++) r.server.create({ name: `lost-${i}` });
  await waitFor("events", () => r.store.keys.size === 6, 30_000);
  const t0 = performance.now();
  r.server.restore(snap);
  r.server.create({ name: "after-restore" });
  await waitFor(
    "converged",
    () => r.store.keys.has("default/after-restore") && !r.store.keys.has("default/lost-0"),
    120_000,
    50,
  );
  return (performance.now() - t0) / 1000;
}

async function readyz(): Promise<number> {
  await using r = await rig([undefined]);
  await new Promise((res) => setTimeout(res, Math.random() * 30_000));
  const t0 = performance.now();
  r.proxy.blackhole();
  await waitFor(
    "not ready",
    () => apiNotReady(r.sources, systemClock.now(), 45_000) !== undefined,
    120_000,
    100,
  );
  const s = (performance.now() - t0) / 1000;
  r.proxy.heal();
  return s;
}

async function quiet(seconds: number, namespaces: (string | undefined)[]) {
  await using r = await rig(namespaces);
  const t0 = performance.now();
  await new Promise((res) => setTimeout(res, seconds * 1000));
  const seen = r.server.requests.filter((q) => q.at >= t0);
  const by = (p: (q: (typeof seen)[number]) => boolean) => seen.filter(p).length;
  const watches = by((q) => q.watch);
  const probes = by((q) => q.path === "/version");
  // Timers: one probe per 30 s while a watch is open; each watch renewed after its
  // timeoutSeconds, uniform in [300, 600): on average every 450 s.
  const predictedPerHour = 3600 / 30 + namespaces.length * (3600 / 450);
  return {
    seconds,
    probes,
    watches,
    lists: by((q) => !q.watch && q.path !== "/version"),
    measuredPerHour: Math.round((seen.length * 3600) / seconds),
    predictedPerHour,
  };
}

const args = Deno.args;
const quietSeconds = Number(args[args.indexOf("--quiet-seconds") + 1] || 120);
const only = args.includes("--only") ? args[args.indexOf("--only") + 1].split(",") : undefined;
const want = (name: string) => !only || only.includes(name);
const results: Record<string, unknown> = {};
const report = (name: string, value: unknown) => {
  results[name] = value;
  console.log(`${name}: ${JSON.stringify(value)}`);
};
if (want("wedge1")) report("wedge1_s", await deadConnection("wedge", 1));
if (want("wedge3")) report("wedge3_s", await deadConnection("wedge", 3));
if (want("blackhole1")) report("blackhole1_s", await deadConnection("blackhole", 1));
if (want("blackhole3")) report("blackhole3_s", await deadConnection("blackhole", 3));
if (want("cuts")) report("cuts_s", await cuts());
if (want("restore")) report("restore_s", await restore());
if (want("readyz")) report("readyz_503_s", await readyz());
if (want("quiet")) {
  report("quiet_1", await quiet(quietSeconds, [undefined]));
  report("quiet_3", await quiet(quietSeconds, NS3));
}
