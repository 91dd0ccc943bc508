/**
 * The announce gate wired into the reconciler: EndpointSlice events, Service
 * events and kube-proxy's health reach the interface through the gate, on the
 * fake clock and the fake interface.
 */
import assert from "node:assert/strict";
import { parseCidr } from "../../../lib/base/cidr.ts";
import type { EndpointRecord, EndpointSliceRecord } from "../../../lib/agent/endpoint_slice.ts";
import { quietObserver, type ReconcileResult } from "../../../lib/agent/observer.ts";
import { Reconciler, type ReconcilerOptions } from "../../../lib/agent/reconciler.ts";
import type { ServiceRecord } from "../../../lib/service/record.ts";
import { FakeAddressStore } from "../../support/fakes/address_store.ts";
import { FakeClock } from "../../support/fakes/clock.ts";
import { TEST_RECONCILER_OPTIONS } from "../../support/fakes/reconciler_options.ts";

const NETS = [parseCidr("10.0.100.0/24"), parseCidr("2001:db8::/64")];
const BASE = [{ family: 4 as const, local: "127.0.0.1", prefixlen: 8 }];
const NODE = "gw1";

function svc(name: string, ip: string, extra: Partial<ServiceRecord> = {}): ServiceRecord {
  return {
    namespace: "default",
    name,
    type: "ClusterIP",
    clusterIP: "10.96.0.1",
    externalIPs: [ip],
    ...extra,
  };
}

function ep(address: string, nodeName = "worker1", ready = true): EndpointRecord {
  return { address, ready, serving: ready, terminating: false, nodeName };
}

function slice(service: string, ...endpoints: EndpointRecord[]): EndpointSliceRecord {
  return { namespace: "default", name: `${service}-abc`, service, family: 4, endpoints };
}

/** A reconciler in `ready` mode with a 2 s hold-down, synced with `services` and `slices`. */
async function synced(
  services: ServiceRecord[],
  slices: EndpointSliceRecord[],
  initial: string[] = [],
  options: Partial<ReconcilerOptions> = {},
) {
  const clock = new FakeClock();
  const store = new FakeAddressStore([...BASE, ...initial]);
  const results: ReconcileResult[] = [];
  const states: Map<string, number>[] = [];
  const r = new Reconciler({
    ...TEST_RECONCILER_OPTIONS,
    store,
    networks: NETS,
    resyncMs: 0,
    clock,
    announce: "ready",
    announceDelayMs: 2000,
    nodeName: NODE,
    ...options,
    observer: {
      ...quietObserver,
      reconciled: (result) => results.push(result),
      addressStates: (counts) => states.push(new Map(counts)),
    },
  });
  await r.readManaged();
  r.replace(services, undefined);
  r.replaceSlices(slices, undefined);
  r.markSynced();
  await clock.tick(10);
  return { clock, store, r, results, states };
}

Deno.test("an address goes the moment its last usable endpoint does, and comes back only after the hold-down", async () => {
  const { clock, store, r } = await synced(
    [svc("web", "10.0.100.30")],
    [slice("web", ep("10.244.1.1"))],
  );
  assert.deepEqual(store.hosts(), ["10.0.100.30"]);

  r.upsertSlice(slice("web", ep("10.244.1.1", "worker1", false)));
  await clock.tick(2); // the coalescing window, not the hold-down
  assert.deepEqual(store.hosts(), [], "withdrawn within the window");
  assert.equal(r.status().addresses[0].state, "no_usable_endpoint");

  r.upsertSlice(slice("web", ep("10.244.1.1")));
  await clock.tick(1990);
  assert.deepEqual(store.hosts(), [], "still in hold-down");
  assert.equal(r.status().addresses[0].state, "hold_down");
  assert.equal(r.status().addresses[0].holdDownLeftMs, 10);
  await clock.tick(20);
  assert.deepEqual(store.hosts(), ["10.0.100.30"]);
  assert.deepEqual(store.plans.map((p) => [p.add, p.remove]), [
    [["10.0.100.30"], []],
    [[], ["10.0.100.30"]],
    [["10.0.100.30"], []],
  ]);
  await r.stop();
  store.assertNoViolations();
});

Deno.test("an endpoint that flaps within the hold-down never brings the address back early", async () => {
  const { clock, store, r } = await synced(
    [svc("web", "10.0.100.30")],
    [slice("web", ep("10.244.1.1"))],
  );
  for (let i = 0; i < 5; i++) {
    r.upsertSlice(slice("web"));
    await clock.tick(500);
    assert.deepEqual(store.hosts(), []);
    r.upsertSlice(slice("web", ep("10.244.1.1")));
    await clock.tick(1500);
    assert.deepEqual(store.hosts(), [], `flap ${i}: not back before 2 s of continuous readiness`);
  }
  await clock.tick(499);
  assert.deepEqual(store.hosts(), []);
  await clock.tick(3); // the hold-down's last millisecond and the coalescing window
  assert.deepEqual(store.hosts(), ["10.0.100.30"]);
  assert.equal(store.plans.length, 3, "one add, one remove, one add: the flaps did not reach ip");
  await r.stop();
  store.assertNoViolations();
});

Deno.test("a Local Service is announced only with an endpoint on this node", async () => {
  const local = (name: string, ip: string) => svc(name, ip, { trafficPolicy: "Local" });
  const { clock, store, r } = await synced(
    [
      local("elsewhere", "10.0.100.30"),
      local("here", "10.0.100.31"),
      svc("cluster", "10.0.100.32"),
    ],
    [
      slice("elsewhere", ep("10.244.1.1", "worker1")),
      slice("here", ep("10.244.1.2", "worker1"), ep("10.244.1.3", NODE)),
      slice("cluster", ep("10.244.1.4", "worker1")),
    ],
  );
  assert.deepEqual(store.hosts(), ["10.0.100.31", "10.0.100.32"]);
  const byAddress = new Map(r.status().addresses.map((a) => [a.address, a]));
  assert.equal(byAddress.get("10.0.100.30")?.state, "no_endpoint_on_node");
  assert.match(byAddress.get("10.0.100.30")!.line, /withheld: no endpoint on this node/);

  // The pod moves to this node: announced at once (it was never announced before).
  r.upsertSlice(slice("elsewhere", ep("10.244.1.1", NODE)));
  await clock.tick(2);
  assert.deepEqual(store.hosts(), ["10.0.100.30", "10.0.100.31", "10.0.100.32"]);
  await r.stop();
  store.assertNoViolations();
});

Deno.test("without a node name no Local Service is announced, and the status says why", async () => {
  const { store, r } = await synced(
    [svc("here", "10.0.100.31", { trafficPolicy: "Local" })],
    [slice("here", ep("10.244.1.3", NODE))],
    [],
    { nodeName: undefined },
  );
  assert.deepEqual(store.hosts(), []);
  assert.equal(r.status().addresses[0].state, "no_node_name");
  await r.stop();
});

Deno.test("an address two Services claim stays while either qualifies", async () => {
  const { clock, store, r } = await synced(
    [svc("a", "10.0.100.30"), svc("b", "10.0.100.30")],
    [slice("a", ep("10.244.1.1")), slice("b", ep("10.244.1.2"))],
  );
  assert.deepEqual(store.hosts(), ["10.0.100.30"]);
  r.upsertSlice(slice("a"));
  await clock.tick(5);
  assert.deepEqual(store.hosts(), ["10.0.100.30"], "b still qualifies");
  r.deleteSlice(slice("b"));
  await clock.tick(5);
  assert.deepEqual(store.hosts(), []);
  await r.stop();
  store.assertNoViolations();
});

Deno.test("a restart with qualifying endpoints changes nothing; one without withdraws only that address", async () => {
  const { store, r } = await synced(
    [svc("up", "10.0.100.30"), svc("down", "10.0.100.31"), svc("new", "10.0.100.32")],
    [slice("up", ep("10.244.1.1")), slice("new", ep("10.244.1.2"))],
    ["10.0.100.30", "10.0.100.31", "10.0.100.99"],
  );
  assert.deepEqual(store.plans, [{ add: ["10.0.100.32"], remove: ["10.0.100.31", "10.0.100.99"] }]);
  await r.stop();
  store.assertNoViolations();
});

Deno.test("nothing is evaluated before the first complete list of Services and EndpointSlices", async () => {
  const clock = new FakeClock();
  const store = new FakeAddressStore([...BASE, "10.0.100.30"]);
  const r = new Reconciler({
    ...TEST_RECONCILER_OPTIONS,
    store,
    networks: NETS,
    resyncMs: 0,
    clock,
    announce: "ready",
    announceDelayMs: 2000,
  });
  await r.readManaged();
  r.replace([svc("web", "10.0.100.30")], undefined);
  // The Services are listed, the slices not yet: nothing may be withdrawn.
  await clock.tick(60_000);
  assert.deepEqual(store.plans, []);
  assert.equal(
    r.notReady(),
    "waiting for the first complete list of Services and EndpointSlices",
  );
  r.replaceSlices([slice("web", ep("10.244.1.1"))], undefined);
  r.markSynced();
  await clock.tick(10);
  assert.deepEqual(store.plans, [], "the address was on the interface and qualifies: kept");
  assert.deepEqual(store.hosts(), ["10.0.100.30"]);
  await r.stop();
});

Deno.test("kube-proxy unhealthy withdraws every address at once; healthy again re-announces after the hold-down", async () => {
  const { clock, store, r } = await synced(
    [svc("a", "10.0.100.30"), svc("b", "10.0.100.31")],
    [slice("a", ep("10.244.1.1")), slice("b", ep("10.244.1.2"))],
  );
  r.setHealth({ open: false, reason: "kube-proxy unhealthy: 3 failed polls in a row" });
  await clock.tick(2);
  assert.deepEqual(store.hosts(), []);
  const report = r.status();
  assert.equal(report.counts.kube_proxy_unhealthy, 2);
  assert.match(report.addresses[0].line, /withheld: kube-proxy unhealthy \(kube-proxy unhealthy/);
  r.setHealth({ open: true, reason: "kube-proxy healthy" });
  await clock.tick(1999);
  assert.deepEqual(store.hosts(), []);
  await clock.tick(5);
  assert.deepEqual(store.hosts(), ["10.0.100.30", "10.0.100.31"]);
  await r.stop();
  store.assertNoViolations();
});

Deno.test("slice updates that keep every Service on the same side of zero reach no ip at all", async () => {
  const { clock, store, r } = await synced(
    [svc("web", "10.0.100.30")],
    [slice("web", ep("10.244.1.1"), ep("10.244.1.2"))],
  );
  const plans = store.plans.length;
  for (let i = 0; i < 500; i++) {
    r.upsertSlice(slice("web", ep("10.244.1.1"), ep(`10.244.2.${i % 250}`, "w", i % 2 === 0)));
  }
  await clock.tick(100);
  assert.equal(store.plans.length, plans);
  assert.equal(clock.pending, 0, "no reconcile even scheduled");
  await r.stop();
});

Deno.test("a Service edit that only changes its policy re-evaluates its addresses", async () => {
  const { clock, store, r } = await synced(
    [svc("web", "10.0.100.30")],
    [slice("web", ep("10.244.1.1", "worker1"))],
  );
  assert.deepEqual(store.hosts(), ["10.0.100.30"]);
  r.upsert(svc("web", "10.0.100.30", { trafficPolicy: "Local" }));
  await clock.tick(2);
  assert.deepEqual(store.hosts(), []);
  r.upsert(svc("web", "10.0.100.30", { proxySkipped: true, trafficPolicy: "Cluster" }));
  await clock.tick(5000);
  assert.deepEqual(store.hosts(), [], "kube-proxy skips it: never announced");
  assert.equal(r.status().addresses[0].state, "proxy_skipped");
  await r.stop();
});

Deno.test("always mode ignores endpoints but still never announces a Service kube-proxy skips", async () => {
  const { store, r } = await synced(
    [svc("a", "10.0.100.30"), svc("b", "10.0.100.31", { proxySkipped: true })],
    [],
    [],
    { announce: "always" },
  );
  assert.deepEqual(store.hosts(), ["10.0.100.30"]);
  await r.stop();
});

Deno.test("LoadBalancer addresses of kube-gw's class are announced; with externalIPs off, externalIPs are not", async () => {
  const lb = (name: string, ip: string, cls?: string): ServiceRecord => ({
    ...svc(name, "10.0.100.90"),
    type: "LoadBalancer",
    externalIPs: [],
    ingressIPs: [ip],
    ...(cls ? { loadBalancerClass: cls } : {}),
  });
  const { store, r } = await synced(
    [
      lb("ours", "10.0.100.40", "kube-gw.io/anycast"),
      lb("theirs", "10.0.100.41", "metallb.io/x"),
      lb("classless", "10.0.100.42"),
      svc("ext", "10.0.100.43"),
    ],
    [],
    [],
    {
      announce: "always",
      addresses: {
        classes: { class: "kube-gw.io/anycast", defaultClass: false },
        externalIPs: false,
      },
    },
  );
  assert.deepEqual(store.hosts(), ["10.0.100.40"]);
  assert.deepEqual(r.status().addresses.map((a) => [a.address, a.sources]), [
    ["10.0.100.40", ["loadBalancer"]],
  ]);
  await r.stop();
});
