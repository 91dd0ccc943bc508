/**
 * AddressPools in the controller: the decoder (bounded, a bad spec a
 * `problem`, never an exception), which pools are in force (the resources
 * win over `--pool` and the ConfigMap; an overlapping newer pool is refused
 * whole and no address moves), the status each pool should show and its
 * writes (only when it changes, only while allocating, a Warning for a
 * refused pool), and a missing CRD taken for "no AddressPool".
 */
import assert from "node:assert/strict";
import { Controller } from "../../../lib/controller/loop.ts";
import { EventRecorder } from "../../../lib/controller/event_recorder.ts";
import type { JsonApi, JsonMethod, ListWatchApi } from "../../../lib/kube/ports.ts";
import { decodeLbService, type LbServiceRecord } from "../../../lib/controller/lb_service.ts";
import type { StatusWriter } from "../../../lib/controller/ports.ts";
import { flagPool } from "../../../lib/controller/pools.ts";
import { FakeClock } from "../../support/fakes/clock.ts";
import { ApiError } from "../../../lib/kube/errors.ts";
import { ShapeError } from "../../../lib/base/shape.ts";
import { type AddressPoolRecord, decodeAddressPool } from "../../../lib/controller/address_pool.ts";
import { AddressPoolCache } from "../../../lib/controller/address_pool_cache.ts";
import {
  acceptPools,
  poolCapacity,
  poolStatus,
  sameStatus,
} from "../../../lib/controller/pool_status.ts";
import {
  controllerHoldings,
  poolStatusPath,
  PoolStatusSync,
} from "../../../lib/controller/pool_status_writer.ts";
import { MISSING_RECHECK_MS, missingAsEmpty } from "../../../lib/controller/optional_collection.ts";

const CLASS = "kube-gw.io/anycast";
type Obj = Record<string, unknown>;

function rawPool(name: string, spec: Obj, o: { created?: string; status?: Obj; rv?: string } = {}) {
  return {
    apiVersion: "kube-gw.io/v1alpha1",
    kind: "AddressPool",
    metadata: {
      name,
      uid: `uid-${name}`,
      resourceVersion: o.rv ?? "1",
      generation: 1,
      creationTimestamp: o.created ?? "2026-01-01T00:00:00Z",
    },
    spec,
    ...(o.status ? { status: o.status } : {}),
  };
}

const pool = (name: string, spec: Obj, o: Parameters<typeof rawPool>[2] = {}) =>
  decodeAddressPool(rawPool(name, spec, o));

function svc(name: string, o: { rv?: string; ingress?: string[]; pool?: string } = {}) {
  return decodeLbService({
    metadata: {
      name,
      namespace: "web",
      uid: `uid-${name}`,
      resourceVersion: o.rv ?? "1",
      annotations: o.pool ? { "kube-gw.io/pool": o.pool } : undefined,
    },
    spec: { type: "LoadBalancer", loadBalancerClass: CLASS, ports: [{ port: 80 }] },
    status: { loadBalancer: { ingress: (o.ingress ?? []).map((ip) => ({ ip })) } },
  });
}

Deno.test("the decoder reads a valid AddressPool into a pool, with its defaults", () => {
  const r = pool("public", { cidrs: ["198.51.100.0/24", "2001:db8:100::/120"] });
  assert.equal(r.problem, undefined);
  assert.deepEqual(r.pool?.cidrs.map((c) => c.text), ["198.51.100.0/24", "2001:db8:100::/120"]);
  assert.equal(r.pool?.autoAssign, true);
  assert.equal(r.pool?.allowReserved, undefined);
  const web = pool("web", {
    cidrs: ["203.0.113.0/28"],
    namespaces: ["web", "web"],
    autoAssign: false,
    allowReserved: true,
  });
  assert.deepEqual(web.pool?.namespaces, ["web"]);
  assert.equal(web.pool?.autoAssign, false);
  assert.equal(web.pool?.allowReserved, true);
  assert.deepEqual(
    [r.name, r.uid, r.generation, r.createdAt],
    ["public", "uid-public", 1, "2026-01-01T00:00:00Z"],
  );
});

Deno.test("the decoder gives a bad spec as a bounded problem naming the field, never an exception", () => {
  const cases: [Obj, RegExp][] = [
    [{ cidrs: ["198.51.100.7/24"] }, /spec\.cidrs\[0\]: "198\.51\.100\.7\/24" is not a CIDR/],
    [{ cidrs: ["x".repeat(100_000)] }, /…\(100000 chars\)/],
    [{ cidrs: Array.from({ length: 300 }, () => "10.0.0.0/24") }, /more than 256 entries/],
    [{ cidrs: ["10.0.0.0/16", "10.0.1.0/24"] }, /overlaps 10\.0\.0\.0\/16/],
    [{ cidrs: ["10.0.0.0/24"], namespaces: [{}] }, /namespaces\[0\]: a mapping/],
    [{ cidrs: ["10.0.0.0/24"], autoAssign: "yes" }, /autoAssign: "yes" is not true or false/],
    [{}, /spec\.cidrs: must be a non-empty list/],
  ];
  for (const [spec, problem] of cases) {
    const r = pool("p", spec);
    assert.equal(r.pool, undefined);
    assert.match(r.problem ?? "", problem);
    assert(r.problem!.length < 400, "bounded");
  }
  assert.match(pool("a.b", { cidrs: ["10.0.0.0/24"] }).problem ?? "", /not a DNS label/);
  assert.throws(() => decodeAddressPool({ metadata: {} }), ShapeError);
  assert.throws(() => decodeAddressPool({ metadata: { name: "x".repeat(300) } }), ShapeError);
});

Deno.test("the status is read bounded: unreadable parts are left out, conditions cut", () => {
  const r = pool("p", { cidrs: ["10.0.0.0/24"] }, {
    status: {
      observedGeneration: 1,
      used: 2,
      free: "252",
      ipv4: { used: 2, free: "252" },
      ipv6: { used: -1, free: "x" },
      conditions: [
        ...Array.from({ length: 20 }, (_, i) => ({
          type: `T${i}`,
          status: "True",
          reason: "R",
          message: "m".repeat(10_000),
          lastTransitionTime: "2026-01-01T00:00:00Z",
        })),
      ],
    },
  });
  assert.deepEqual([r.status.used, r.status.free, r.status.ipv4], [2, "252", {
    used: 2,
    free: "252",
  }]);
  assert.equal(r.status.ipv6, undefined);
  assert.equal(r.status.conditions.length, 8);
  assert.equal(r.status.conditions[0].message.length, 4096);
});

Deno.test("pools are taken oldest first: a newer pool overlapping an older one is refused whole", () => {
  const older = pool("b-older", { cidrs: ["10.0.0.0/24"] }, { created: "2026-01-01T00:00:00Z" });
  const newer = pool("a-newer", { cidrs: ["10.9.0.0/24", "10.0.0.128/25"] }, {
    created: "2026-02-01T00:00:00Z",
  });
  const other = pool("c", { cidrs: ["10.1.0.0/24"] }, { created: "2026-03-01T00:00:00Z" });
  const bad = pool("d", { cidrs: ["nope"] });
  const { pools, overlaps } = acceptPools([other, newer, bad, older]);
  assert.deepEqual(pools.map((p) => p.name), ["b-older", "c"]);
  assert.deepEqual(overlaps.get("a-newer"), {
    cidr: "10.0.0.128/25",
    pool: "b-older",
    otherCidr: "10.0.0.0/24",
  });
  // Same creation time: by name.
  const same = acceptPools([
    pool("y", { cidrs: ["10.0.0.0/24"] }),
    pool("x", { cidrs: ["10.0.0.0/25"] }),
  ]);
  assert.deepEqual(same.pools.map((p) => p.name), ["x"]);
});

Deno.test("a pool's capacity leaves out the reserved addresses unless it allows them", () => {
  const p = (spec: Obj) => pool("p", spec).pool!;
  assert.deepEqual(poolCapacity(p({ cidrs: ["10.0.0.0/24", "2001:db8::/120"] })), {
    4: 254n,
    6: 255n,
  });
  assert.deepEqual(poolCapacity(p({ cidrs: ["10.0.0.0/31", "2001:db8::/127"] })), { 4: 2n, 6: 2n });
  assert.deepEqual(poolCapacity(p({ cidrs: ["10.0.0.0/24"], allowReserved: true })), {
    4: 256n,
    6: 0n,
  });
  assert.deepEqual(poolCapacity(p({ cidrs: ["2001:db8::/64"] }))[6], (1n << 64n) - 1n);
});

Deno.test("the status a pool should show: usage per family, Ready, Overlapping, Exhausted; times kept while a condition stays", () => {
  const r = pool("p", { cidrs: ["10.0.0.0/30", "2001:db8::/126"] });
  const s = poolStatus({ record: r, used: { 4: 2, 6: 1 }, now: "2026-05-01T00:00:00Z" });
  assert.deepEqual([s.used, s.free, s.ipv4, s.ipv6], [3, "2", { used: 2, free: "0" }, {
    used: 1,
    free: "2",
  }]);
  assert.deepEqual(s.conditions.map((c) => [c.type, c.status, c.reason]), [
    ["Ready", "True", "InForce"],
    ["Overlapping", "False", "NoOverlap"],
    ["Exhausted", "False", "FreeAddresses"],
  ]);
  const full = poolStatus({ record: r, used: { 4: 2, 6: 3 }, now: "2026-05-02T00:00:00Z" });
  assert.deepEqual(full.conditions[2].status, "True");
  // What was written, read back: the same, and a later pass keeps the times.
  const back = pool("p", { cidrs: ["10.0.0.0/30", "2001:db8::/126"] }, {
    status: JSON.parse(JSON.stringify(s)),
  });
  const again = poolStatus({ record: back, used: { 4: 2, 6: 1 }, now: "2026-06-01T00:00:00Z" });
  assert(sameStatus(back.status, again));
  assert.deepEqual(again.conditions.map((c) => c.lastTransitionTime), [
    "2026-05-01T00:00:00Z",
    "2026-05-01T00:00:00Z",
    "2026-05-01T00:00:00Z",
  ]);
  const overlapped = poolStatus({
    record: back,
    overlap: { cidr: "10.0.0.0/30", pool: "q", otherCidr: "10.0.0.0/24" },
    now: "2026-06-01T00:00:00Z",
  });
  assert.deepEqual(overlapped.used, undefined);
  assert.deepEqual(overlapped.conditions.map((c) => [c.type, c.status, c.lastTransitionTime]), [
    ["Ready", "False", "2026-06-01T00:00:00Z"],
    ["Overlapping", "True", "2026-06-01T00:00:00Z"],
    ["Exhausted", "Unknown", "2026-06-01T00:00:00Z"],
  ]);
  assert.match(overlapped.conditions[1].message, /overlaps 10\.0\.0\.0\/24 of the older pool "q"/);
});

/** An API that takes PATCHes of pool status and Event POSTs, and keeps them. */
class FakeApi implements JsonApi {
  readonly patches: { path: string; body: Obj }[] = [];
  readonly events: Obj[] = [];
  failNext = 0;
  json(method: JsonMethod, path: string, body: unknown): Promise<unknown> {
    if (method === "POST") {
      this.events.push(body as Obj);
      return Promise.resolve(body);
    }
    if (this.failNext > 0) {
      this.failNext--;
      return Promise.reject(new ApiError("boom", 500));
    }
    this.patches.push({ path, body: body as Obj });
    return Promise.resolve(body);
  }
}

class NoStatus implements StatusWriter {
  readonly writes: string[] = [];
  write(s: LbServiceRecord, addresses: readonly string[]): Promise<string> {
    this.writes.push(`${s.name}=${addresses.join(",")}`);
    return Promise.resolve("2");
  }
}

function setup(o: { pool?: string[] } = {}) {
  const clock = new FakeClock();
  const api = new FakeApi();
  const status = new NoStatus();
  const events = new EventRecorder({ api, clock, instance: "t", wallNow: () => 0 });
  let leading = false;
  const controller = new Controller({
    observer: {
      statusWritten() {},
      allocationFailed() {},
      writeFailed() {},
      configError() {},
      poolsChanged() {},
      leadership: (role) => leading = role === "leader",
    },
    classes: { class: CLASS, defaultClass: false },
    flagPool: flagPool(o.pool ?? ["198.51.100.0/30"]),
    watchesConfig: false,
    watchesResources: true,
    status,
    events,
    clock,
  });
  const cache = new AddressPoolCache();
  cache.listen((pools) => controller.setResourcePools(pools));
  const sync = new PoolStatusSync({
    api,
    clock,
    cache,
    holdings: controllerHoldings(controller, () => leading),
    events,
    wallNow: () => Date.parse("2026-05-01T00:00:00Z"),
  });
  const signal = new AbortController().signal;
  /** Lets every decision and Event finish, moving the clock by the recorder's pace (10 a second). */
  const settle = async () => {
    await controller.idle();
    await sync.kick(signal);
    while (events.pending > 0) await clock.tick(100);
    await events.settled();
  };
  return { clock, api, status, controller, cache, sync, signal, settle };
}

/** The record as the watch brings it back after a status PATCH. */
function written(r: AddressPoolRecord, api: FakeApi, rv: string): AddressPoolRecord {
  const last = api.patches.findLast((p) => p.path === poolStatusPath(r.name))!;
  const raw = rawPool(r.name, {}, { rv, created: r.createdAt, status: last.body.status as Obj });
  return { ...decodeAddressPool(raw), pool: r.pool, problem: r.problem };
}

Deno.test("the controller waits for the AddressPools' list; once one exists the resources win over --pool", async () => {
  const t = setup();
  t.controller.services.replace([svc("a")]);
  t.controller.startLeading();
  await t.settle();
  assert.equal(t.controller.notReady(), "waiting for the first list of AddressPools");
  assert.deepEqual(t.status.writes, []);
  const p = pool("public", { cidrs: ["203.0.113.0/30"], allowReserved: true });
  t.cache.replace([p]);
  await t.settle();
  assert.equal(t.controller.notReady(), undefined);
  assert.deepEqual(t.controller.pools.map((p) => p.name), ["public"]);
  assert.deepEqual(t.status.writes, ["a=203.0.113.0"]);
  // The last AddressPool goes: --pool is in force again; the held address stays.
  t.cache.delete(p);
  t.controller.services.upsert(svc("b"));
  await t.settle();
  assert.deepEqual(t.controller.pools.map((p) => p.name), ["default"]);
  assert.equal(t.status.writes.length, 2, "a keeps its address: nothing written for it");
  assert.match(t.status.writes[1], /^b=198\.51\.100\.[0-3]$/);
});

Deno.test("with no AddressPool, --pool stays in force", async () => {
  const t = setup();
  t.cache.replace([]);
  t.controller.services.replace([svc("a")]);
  t.controller.startLeading();
  await t.settle();
  assert.deepEqual(t.controller.pools.map((p) => p.name), ["default"]);
  assert.match(t.status.writes.join(), /^a=198\.51\.100\.[0-3]$/);
  assert.equal(t.api.patches.length, 0, "no AddressPool, no pool status");
});

Deno.test("an overlapping newer pool is refused with a condition and one Warning; no address moves", async () => {
  const t = setup();
  const older = pool("older", { cidrs: ["203.0.113.0/29"] }, { created: "2026-01-01T00:00:00Z" });
  t.cache.replace([older]);
  t.controller.services.replace([svc("a", { ingress: ["203.0.113.5"], rv: "4" })]);
  t.controller.startLeading();
  await t.settle();
  assert.deepEqual(t.status.writes, [], "a's address stays as it is");
  const newer = pool("newer", { cidrs: ["203.0.113.4/30"] }, { created: "2026-02-01T00:00:00Z" });
  t.cache.upsert(newer);
  await t.settle();
  assert.deepEqual(t.controller.pools.map((p) => p.name), ["older"]);
  assert.equal(t.controller.poolOf("203.0.113.5"), "older");
  const byPool = new Map(t.api.patches.map((p) => [p.path, p.body.status as Obj]));
  const st = byPool.get(poolStatusPath("newer"))!;
  assert.deepEqual(
    (st.conditions as Obj[]).map((c) => `${c.type}=${c.status}`),
    ["Ready=False", "Overlapping=True", "Exhausted=Unknown"],
  );
  assert.deepEqual([st.used, st.free], [null, null]);
  assert.deepEqual(byPool.get(poolStatusPath("older"))!.used, 1);
  assert.deepEqual(byPool.get(poolStatusPath("older"))!.free, "5");
  const warnings = t.api.events.map((e) => `${e.type} ${e.reason} ${(e.regarding as Obj).kind}`);
  assert.deepEqual(warnings, ["Warning OverlappingPool AddressPool"]);
  const ev = t.api.events[0];
  assert.deepEqual(ev.regarding, {
    apiVersion: "kube-gw.io/v1alpha1",
    kind: "AddressPool",
    name: "newer",
    uid: "uid-newer",
  });
  assert.deepEqual((ev.metadata as Obj).namespace, "default");
  // Passes before the watch brings the writes back write nothing again.
  const n = t.api.patches.length;
  await t.sync.sync(t.signal);
  assert.equal(t.api.patches.length, n);
  // Once it does, nothing differs: still nothing written, no second Warning.
  t.cache.upsert(written(older, t.api, "7"));
  t.cache.upsert(written(newer, t.api, "8"));
  await t.settle();
  await t.clock.tick(5_000);
  assert.equal(t.api.patches.length, n);
  assert.equal(t.api.events.length, 1);
});

Deno.test("the status follows allocations, is written only when it changes, is retried after a failed write, and only by the leader", async () => {
  const t = setup();
  const p = pool("public", { cidrs: ["203.0.113.0/30"] });
  t.cache.replace([p]);
  t.controller.services.replace([]);
  await t.settle();
  assert.equal(t.api.patches.length, 0, "a standby writes nothing");
  t.controller.startLeading();
  t.api.failNext = 1;
  await t.settle();
  assert.equal(t.api.patches.length, 0, "the write failed");
  await t.sync.sync(t.signal);
  assert.equal(t.api.patches.length, 1, "tried again at the next pass");
  const first = t.api.patches[0].body.status as Obj;
  assert.deepEqual([first.used, first.free, first.ipv4], [0, "2", { used: 0, free: "2" }]);
  t.cache.upsert(written(p, t.api, "2"));
  t.controller.services.upsert(svc("a"));
  t.controller.services.upsert(svc("b"));
  await t.settle();
  const last = t.api.patches.at(-1)!.body.status as Obj;
  assert.deepEqual([last.used, last.free], [2, "0"]);
  assert.deepEqual(
    (last.conditions as Obj[]).find((c) => c.type === "Exhausted")!.status,
    "True",
  );
  t.controller.stopLeading();
  const n = t.api.patches.length;
  await t.sync.sync(t.signal);
  assert.equal(t.api.patches.length, n, "no longer the leader: nothing written");
});

Deno.test("a missing AddressPool CRD reads as an empty list; the watch relists after a minute", async () => {
  const clock = new FakeClock();
  let served = false;
  const inner: ListWatchApi = {
    list: () =>
      served
        ? Promise.resolve({
          kind: "AddressPoolList",
          metadata: { resourceVersion: "9" },
          items: [],
        })
        : Promise.reject(new ApiError("404 page not found", 404)),
    watch: () => {
      throw new Error("not reached while missing");
    },
  };
  const api = missingAsEmpty(inner, "AddressPool", clock);
  const signal = new AbortController().signal;
  const page = await api.list("/apis/kube-gw.io/v1alpha1/addresspools", {}, signal);
  assert.deepEqual(page, {
    kind: "AddressPoolList",
    metadata: { resourceVersion: "0" },
    items: [],
  });
  const it = api.watch("/apis/kube-gw.io/v1alpha1/addresspools", {}, signal)[
    Symbol.asyncIterator
  ]();
  const next = it.next();
  let settled = false;
  next.catch(() => {}).finally(() => settled = true);
  await clock.tick(MISSING_RECHECK_MS - 1);
  assert.equal(settled, false);
  await clock.tick(1);
  await assert.rejects(next, (e) => e instanceof ApiError && e.gone);
  served = true;
  const real = await api.list("/apis/kube-gw.io/v1alpha1/addresspools", {}, signal);
  assert.equal((real.metadata as Obj).resourceVersion, "9");
  await assert.rejects(
    missingAsEmpty({ ...inner, list: () => Promise.reject(new ApiError("no", 403)) }, "A", clock)
      .list("/x", {}, signal),
    (e) => e instanceof ApiError && e.status === 403,
  );
});
