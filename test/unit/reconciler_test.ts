import assert from "node:assert/strict";
import { parseCidr } from "../../lib/cidr.ts";
import type { AddressBackend } from "../../lib/iproute2.ts";
import type { InterfaceAddress, Plan } from "../../lib/plan.ts";
import { ConflictError, Reconciler } from "../../lib/reconciler.ts";
import type { ServiceRecord } from "../../lib/service.ts";

const NETS = [parseCidr("10.0.100.0/24"), parseCidr("2001:db8::/64")];

/** An interface in memory, with a record of every plan applied. */
class FakeInterface implements AddressBackend {
  addresses: InterfaceAddress[];
  plans: Plan[] = [];
  reads = 0;
  failNext = 0;
  spawned = 0;
  constructor(initial: string[] = []) {
    this.addresses = [
      { family: 4, local: "127.0.0.1", prefixlen: 8 },
      { family: 4, local: "10.0.0.20", prefixlen: 32 },
      ...initial.map((a) => host(a)),
    ];
  }
  read(): Promise<InterfaceAddress[]> {
    this.reads++;
    this.spawned++;
    return Promise.resolve(this.addresses.map((a) => ({ ...a })));
  }
  apply(plan: Plan): Promise<void> {
    this.spawned++;
    if (this.failNext > 0) {
      this.failNext--;
      return Promise.reject(new Error("RTNETLINK answers: No buffer space available"));
    }
    this.plans.push(plan);
    this.addresses = this.addresses.filter((a) => !plan.remove.includes(a.local));
    for (const a of plan.add) {
      if (!this.addresses.some((x) => x.local === a)) this.addresses.push(host(a));
    }
    return Promise.resolve();
  }
  hosts(): string[] {
    return this.addresses.filter((a) => a.prefixlen === (a.family === 4 ? 32 : 128)).map((a) =>
      a.local
    ).sort();
  }
}

function host(a: string): InterfaceAddress {
  return a.includes(":")
    ? { family: 6, local: a, prefixlen: 128 }
    : { family: 4, local: a, prefixlen: 32 };
}

function svc(name: string, ...externalIPs: string[]): ServiceRecord {
  return { namespace: "default", name, type: "ClusterIP", clusterIP: "10.96.0.1", externalIPs };
}

const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

async function settle(iface: FakeInterface) {
  // Wait until a reconcile ran and nothing is pending.
  for (let i = 0; i < 100; i++) {
    await tick(5);
    const before = iface.plans.length;
    await tick(10);
    if (iface.plans.length === before) return;
  }
  throw new Error("reconciler did not settle");
}

Deno.test("nothing is changed before the first complete list", async () => {
  const iface = new FakeInterface(["10.0.100.99"]);
  const r = new Reconciler({ backend: iface, networks: NETS, resyncMs: 0 });
  r.upsert(svc("a", "10.0.100.30"));
  await tick(50);
  assert.deepEqual(iface.plans, []);
  assert.equal(r.notReady(), "waiting for the first complete list of Services");
  r.replace([svc("a", "10.0.100.30")], undefined);
  r.markSynced();
  assert.equal(r.notReady(), "waiting for the first reconcile");
  await settle(iface);
  assert.deepEqual(iface.hosts(), ["10.0.0.20", "10.0.100.30"]);
  assert.equal(r.ready, true);
  await r.stop();
});

Deno.test("a burst of events becomes one reconcile", async () => {
  const iface = new FakeInterface();
  const r = new Reconciler({ backend: iface, networks: NETS, resyncMs: 0, windowMs: 10 });
  r.replace([], undefined);
  r.markSynced();
  await settle(iface);
  for (let i = 0; i < 200; i++) r.upsert(svc(`s${i}`, `10.0.100.${i}`));
  await settle(iface);
  assert.equal(iface.plans.length, 1);
  assert.equal(iface.plans[0].add.length, 200);
  await r.stop();
});

Deno.test("a restart with the addresses already in place changes nothing (no flap)", async () => {
  const iface = new FakeInterface(["10.0.100.30", "10.0.100.31", "2001:db8::30"]);
  const r = new Reconciler({ backend: iface, networks: NETS, resyncMs: 0 });
  r.replace([svc("nginx", "10.0.100.30", "10.0.100.31"), svc("v6", "2001:db8::30")], undefined);
  r.markSynced();
  await tick(50);
  assert.deepEqual(iface.plans, []);
  assert.equal(iface.reads, 1);
  assert.equal(r.ready, true);
  await r.stop();
});

Deno.test("stale addresses inside the networks go; others on the interface stay", async () => {
  const iface = new FakeInterface(["10.0.100.30", "10.0.100.77", "192.0.2.1"]);
  const r = new Reconciler({ backend: iface, networks: NETS, resyncMs: 0 });
  r.replace([svc("nginx", "10.0.100.30")], undefined);
  r.markSynced();
  await settle(iface);
  assert.deepEqual(iface.plans, [{ add: [], remove: ["10.0.100.77"] }]);
  assert.deepEqual(iface.hosts(), ["10.0.0.20", "10.0.100.30", "192.0.2.1"]);
  await r.stop();
});

Deno.test("a resync repairs an address deleted by hand", async () => {
  const iface = new FakeInterface();
  const r = new Reconciler({ backend: iface, networks: NETS, resyncMs: 0 });
  r.replace([svc("nginx", "10.0.100.30")], undefined);
  r.markSynced();
  await settle(iface);
  iface.addresses = iface.addresses.filter((a) => a.local !== "10.0.100.30");
  r.resync();
  await settle(iface);
  assert.deepEqual(iface.hosts(), ["10.0.0.20", "10.0.100.30"]);
  assert.equal(iface.plans.length, 2);
  await r.stop();
});

Deno.test("the periodic resync runs on its own", async () => {
  const iface = new FakeInterface();
  const r = new Reconciler({ backend: iface, networks: NETS, resyncMs: 30 });
  r.replace([svc("nginx", "10.0.100.30")], undefined);
  r.markSynced();
  await settle(iface);
  iface.addresses = iface.addresses.filter((a) => a.local !== "10.0.100.30");
  await tick(150);
  assert.deepEqual(iface.hosts(), ["10.0.0.20", "10.0.100.30"]);
  await r.stop();
});

Deno.test("a failed apply is retried after re-reading the interface", async () => {
  const iface = new FakeInterface();
  iface.failNext = 1;
  const seen: string[] = [];
  const r = new Reconciler({
    backend: iface,
    networks: NETS,
    resyncMs: 0,
    observer: { reconciled: (result) => seen.push(result) },
  });
  r.replace([svc("nginx", "10.0.100.30")], undefined);
  r.markSynced();
  await tick(100);
  assert.match(
    r.notReady() ?? "",
    /^the last reconcile failed: RTNETLINK answers: No buffer space/,
  );
  await tick(1500); // the first retry waits 0.5–1 s
  assert.deepEqual(iface.hosts(), ["10.0.0.20", "10.0.100.30"]);
  assert.equal(r.ready, true);
  assert.deepEqual(seen, ["error", "success"]);
  assert.equal(iface.reads, 2);
  await r.stop();
});

Deno.test("a subnet on the interface that overlaps a managed network is refused", async () => {
  const iface = new FakeInterface();
  iface.addresses.push({ family: 4, local: "10.0.100.1", prefixlen: 24 });
  const r = new Reconciler({ backend: iface, networks: NETS, resyncMs: 0 });
  await assert.rejects(
    r.readManaged(),
    (e: unknown) => e instanceof ConflictError && /10\.0\.100\.1\/24/.test(e.message),
  );
  await r.stop();
});

Deno.test("the observer sees addresses held per family", async () => {
  const iface = new FakeInterface();
  const held: Record<number, number> = {};
  const r = new Reconciler({
    backend: iface,
    networks: NETS,
    resyncMs: 0,
    observer: { held: (f, n) => held[f] = n },
  });
  r.replace([svc("a", "10.0.100.30", "10.0.100.31", "2001:db8::1")], undefined);
  r.markSynced();
  await settle(iface);
  assert.deepEqual(held, { 4: 2, 6: 1 });
  r.upsert(svc("a", "10.0.100.30", "2001:db8::2", "2001:db8::3"));
  await settle(iface);
  assert.deepEqual(held, { 4: 1, 6: 2 });
  r.remove("default", "a");
  await settle(iface);
  assert.deepEqual(held, { 4: 0, 6: 0 });
  await r.stop();
});
