import assert from "node:assert/strict";
import fc from "fast-check";
import { Controller } from "../../../lib/controller/loop.ts";
import { EventRecorder } from "../../../lib/controller/event_recorder.ts";
import type { JsonApi, JsonMethod } from "../../../lib/kube/ports.ts";
import { decodeLbService, type LbServiceRecord } from "../../../lib/controller/lb_service.ts";
import type { ControllerObserver, StatusWriter } from "../../../lib/controller/ports.ts";
import { decodePoolsConfigMap } from "../../../lib/controller/pools_configmap.ts";
import { flagPool, type Pool } from "../../../lib/controller/pools.ts";
import { FakeClock } from "../../support/fakes/clock.ts";
import { ApiError } from "../../../lib/kube/errors.ts";

const CLASS = "kube-gw.io/anycast";

interface SvcOpts {
  rv?: string;
  cls?: string | null;
  type?: string;
  ingress?: string[];
  annotations?: Record<string, string>;
  uid?: string;
}

function svc(name: string, namespace: string, o: SvcOpts = {}): LbServiceRecord {
  return decodeLbService({
    metadata: {
      name,
      namespace,
      uid: o.uid ?? `uid-${namespace}-${name}`,
      resourceVersion: o.rv ?? "1",
      annotations: o.annotations,
    },
    spec: {
      type: o.type ?? "LoadBalancer",
      ...(o.cls === null ? {} : { loadBalancerClass: o.cls ?? CLASS }),
      ports: [{ port: 80, protocol: "TCP" }],
    },
    status: { loadBalancer: { ingress: (o.ingress ?? []).map((ip) => ({ ip, ipMode: "VIP" })) } },
  });
}

function configMap(text: string) {
  return decodePoolsConfigMap({
    metadata: { name: "kube-gw-pools", namespace: "kube-system", uid: "cm-uid" },
    data: { "pools.yaml": text },
  });
}

interface Write {
  key: string;
  rv: string;
  addresses: readonly string[];
}

/** A status writer that records writes and fails the ones a test scripts. */
class FakeStatus implements StatusWriter {
  readonly writes: Write[] = [];
  /** Errors thrown by the next writes, in order. */
  readonly failNext: Error[] = [];
  #rv = 1000;

  /** While set, writes wait for {@linkcode release} (and fail when their signal aborts). */
  hold = false;
  #held: (() => void)[] = [];
  /** Writes started, held or not. */
  started = 0;

  async write(
    s: LbServiceRecord,
    addresses: readonly string[],
    signal: AbortSignal,
  ): Promise<string> {
    this.started++;
    const err = this.failNext.shift();
    if (err) throw err;
    if (this.hold) {
      await new Promise<void>((resolve, reject) => {
        this.#held.push(resolve);
        signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
    }
    this.writes.push({ key: `${s.namespace}/${s.name}`, rv: s.resourceVersion, addresses });
    return String(++this.#rv);
  }

  /** Lets held writes finish. */
  release(): void {
    for (const r of this.#held.splice(0)) r();
  }

  /** The last addresses written per Service. */
  get last(): Map<string, readonly string[]> {
    return new Map(this.writes.map((w) => [w.key, w.addresses]));
  }
}

/** An API that accepts every Event POST and keeps its body. */
class FakeEventApi implements JsonApi {
  readonly posted: Record<string, unknown>[] = [];
  json(method: JsonMethod, _path: string, body: unknown): Promise<unknown> {
    assert.equal(method, "POST");
    this.posted.push(body as Record<string, unknown>);
    return Promise.resolve(body);
  }

  /** `reason: note` of each Event about `name`. */
  about(name: string): string[] {
    return this.posted
      .filter((e) => (e.regarding as { name: string }).name === name)
      .map((e) => `${e.reason}: ${e.note}`);
  }
}

function countingObserver() {
  const counts = { configErrors: 0, conflicts: 0, errors: 0, failures: [] as string[] };
  const observer: ControllerObserver = {
    statusWritten() {},
    allocationFailed: (r) => void counts.failures.push(r),
    writeFailed: (k) => void (k === "conflict" ? counts.conflicts++ : counts.errors++),
    configError: () => void counts.configErrors++,
    poolsChanged() {},
    leadership() {},
  };
  return { counts, observer };
}

/**
 * The pool as if it allowed the reserved addresses, so the tests of the loop
 * count every address of a block (the `--pool` default is tested on its own).
 */
function allowingReserved(pool: Pool | undefined): Pool | undefined {
  return pool && { ...pool, allowReserved: true };
}

function setup(opts: { pool?: string[]; config?: boolean; reserved?: false } = {}) {
  const clock = new FakeClock();
  const status = new FakeStatus();
  const eventApi = new FakeEventApi();
  const events = new EventRecorder({ api: eventApi, clock, instance: "test-1", wallNow: () => 0 });
  const { counts, observer } = countingObserver();
  const controller = new Controller({
    classes: { class: CLASS, defaultClass: false },
    flagPool: opts.reserved === false
      ? flagPool(opts.pool ?? ["198.51.100.0/30"])
      : allowingReserved(flagPool(opts.pool ?? ["198.51.100.0/30"])),
    watchesConfig: opts.config ?? false,
    status,
    events,
    clock,
    observer,
  });
  const settle = async () => {
    await controller.idle();
    await events.settled();
  };
  return { clock, status, eventApi, events, controller, counts, settle };
}

Deno.test("a leader gives a new LoadBalancer Service the first free address and records IPAllocated", async () => {
  const t = setup();
  t.controller.services.replace([svc("a", "web")]);
  t.controller.startLeading();
  await t.settle();
  assert.deepEqual(t.status.writes, [{ key: "web/a", rv: "1", addresses: ["198.51.100.0"] }]);
  assert.deepEqual(t.eventApi.about("a"), ["IPAllocated: allocated 198.51.100.0 (pool default)"]);
});

Deno.test("nothing is allocated before the first complete list, nor by a standby", async () => {
  const t = setup();
  t.controller.startLeading();
  t.controller.services.upsert(svc("a", "web"));
  await t.settle();
  assert.deepEqual(t.status.writes, []);
  t.controller.stopLeading();
  t.controller.services.replace([svc("a", "web")]);
  await t.settle();
  assert.deepEqual(t.status.writes, [], "a standby writes nothing");
  assert.equal(t.controller.notReady(), undefined, "a synced standby is ready");
  t.controller.startLeading();
  await t.settle();
  assert.deepEqual(t.status.last.get("web/a"), ["198.51.100.0"]);
});

Deno.test("a Service that stops being kube-gw's has its status cleared and its address freed", async () => {
  const t = setup();
  t.controller.services.replace([svc("a", "web")]);
  t.controller.startLeading();
  await t.settle();
  t.controller.services.upsert(
    svc("a", "web", { rv: "5", cls: "other.io/lb", ingress: ["198.51.100.0"] }),
  );
  await t.settle();
  assert.deepEqual(t.status.writes.at(-1), { key: "web/a", rv: "5", addresses: [] });
  assert.ok(t.eventApi.about("a").some((e) => e.startsWith("IPReleased: released 198.51.100.0")));
  t.controller.services.upsert(svc("b", "web"));
  await t.settle();
  assert.deepEqual(t.status.last.get("web/b"), ["198.51.100.0"], "the freed address is reused");
});

Deno.test("a deleted Service frees its address, and a Service waiting for one gets it", async () => {
  const t = setup({ pool: ["198.51.100.0/31"] });
  t.controller.services.replace([svc("a", "web"), svc("b", "web"), svc("c", "web")]);
  t.controller.startLeading();
  await t.settle();
  assert.deepEqual(t.counts.failures, ["pool_exhausted"]);
  assert.ok(t.eventApi.about("c").some((e) => e.startsWith("AllocationFailed: pool_exhausted")));
  const held = t.status.last.get("web/a")!;
  t.controller.services.delete(svc("a", "web", { ingress: [...held] }));
  await t.settle();
  assert.deepEqual(t.status.last.get("web/c"), held);
});

Deno.test("a new term rebuilds from status: no Service's address ever moves (property)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(fc.integer({ min: 0, max: 15 }), { maxLength: 12 }),
      fc.integer({ min: 0, max: 3 }),
      async (held, fresh) => {
        const t = setup({ pool: ["198.51.100.0/28"] });
        const existing = held.map((n, i) =>
          svc(`s${i}`, "web", { ingress: [`198.51.100.${n}`], rv: "7" })
        );
        const added = Array.from({ length: fresh }, (_, i) => svc(`new${i}`, "web"));
        t.controller.services.replace([...existing, ...added]);
        t.controller.startLeading();
        await t.settle();
        // Nothing already held is written again; new Services get addresses nobody holds.
        const written = t.status.last;
        for (const s of existing) assert.equal(written.has(`web/${s.name}`), false);
        const taken = new Set(held.map((n) => `198.51.100.${n}`));
        for (const s of added) {
          const ips = written.get(`web/${s.name}`) ?? [];
          if (held.length + fresh <= 16) assert.equal(ips.length, 1);
          for (const ip of ips) {
            assert.equal(taken.has(ip), false, `${ip} given twice`);
            taken.add(ip);
          }
        }
      },
    ),
    { numRuns: 50 },
  );
});

Deno.test("a 409 on a status write is decided again from the newer cached version", async () => {
  const t = setup();
  t.status.failNext.push(new ApiError("conflict", 409));
  t.controller.services.replace([svc("a", "web", { rv: "1" })]);
  t.controller.startLeading();
  await t.settle();
  assert.deepEqual(t.status.writes, []);
  assert.equal(t.counts.conflicts, 1);
  // The watch brings the newer version: the write is retried on it, with the same address.
  t.controller.services.upsert(svc("a", "web", { rv: "2" }));
  await t.settle();
  assert.deepEqual(t.status.writes, [{ key: "web/a", rv: "2", addresses: ["198.51.100.0"] }]);
  assert.deepEqual(t.eventApi.about("a"), ["IPAllocated: allocated 198.51.100.0 (pool default)"]);
});

Deno.test("a failed write that is not a conflict is retried after a backoff on the clock", async () => {
  const t = setup();
  t.status.failNext.push(new ApiError("boom", 500));
  t.controller.services.replace([svc("a", "web")]);
  t.controller.startLeading();
  await t.settle();
  assert.equal(t.counts.errors, 1);
  assert.deepEqual(t.status.writes, []);
  await t.clock.runUntil("the retry", () => t.status.writes.length > 0);
  await t.settle();
  assert.deepEqual(t.status.last.get("web/a"), ["198.51.100.0"]);
});

Deno.test("pools edits: a valid one applies live, an invalid one keeps the last good pools and warns on the ConfigMap, an address left outside stays", async () => {
  const t = setup({ pool: [], config: true });
  t.controller.services.replace([svc("a", "web")]);
  t.controller.startLeading();
  await t.settle();
  assert.deepEqual(t.status.writes, [], "nothing before the ConfigMap's first list");
  assert.match(t.controller.notReady() ?? "", /ConfigMap/);
  t.controller.config.replace([
    configMap("pools: [{name: p1, cidrs: [198.51.100.0/30], allowReserved: true}]"),
  ]);
  await t.settle();
  assert.deepEqual(t.status.last.get("web/a"), ["198.51.100.0"]);

  t.controller.config.upsert(configMap("pools: [{name: p1, cidrs: [198.51.100.1/30]}]"));
  await t.settle();
  assert.equal(t.counts.configErrors, 1);
  assert.equal(t.controller.pools[0].cidrs[0].text, "198.51.100.0/30", "the last good pools stay");
  assert.ok(t.eventApi.about("kube-gw-pools").some((e) => e.startsWith("InvalidPools: ")));

  t.controller.config.upsert(
    configMap("pools: [{name: p2, cidrs: [203.0.113.0/30], allowReserved: true}]"),
  );
  t.controller.services.upsert(svc("a", "web", { rv: "3", ingress: ["198.51.100.0"] }));
  t.controller.services.upsert(svc("b", "web"));
  await t.settle();
  assert.deepEqual(t.status.last.get("web/a"), ["198.51.100.0"], "a held address stays");
  assert.deepEqual(t.status.last.get("web/b"), ["203.0.113.0"]);
  assert.ok(t.eventApi.about("a").some((e) => e.startsWith("AddressOutsidePools: 198.51.100.0")));
});

Deno.test("Events are de-duplicated: a Service that keeps failing the same way gets one Warning", async () => {
  const t = setup({ pool: ["198.51.100.0/32"] });
  t.controller.services.replace([svc("a", "web"), svc("b", "web")]);
  t.controller.startLeading();
  await t.settle();
  for (let rv = 2; rv < 30; rv++) {
    t.controller.services.upsert(svc("b", "web", { rv: String(rv) }));
    await t.settle();
  }
  await t.settle();
  assert.equal(t.counts.failures.length, 29);
  assert.deepEqual(t.eventApi.about("b").length, 1);
});

Deno.test("stopLeading aborts the term: writes in flight are abandoned, queued Services are not written", async () => {
  const t = setup({ pool: ["198.51.100.0/24"] });
  t.status.hold = true;
  t.controller.startLeading();
  t.controller.services.replace(Array.from({ length: 50 }, (_, i) => svc(`s${i}`, "web")));
  assert.ok(t.status.started > 0 && t.status.started < 50, `${t.status.started} writes started`);
  t.controller.stopLeading();
  t.status.release();
  await t.settle();
  assert.deepEqual(t.status.writes, []);
  assert.ok(t.status.started < 50);
  assert.deepEqual(t.eventApi.posted, []);
});

Deno.test("an externalIP the agents refuse is reported once as ExternalIPRefused; Services of another class are not even kept", async () => {
  const t = setup();
  const withBad = decodeLbService({
    metadata: { name: "x", namespace: "web", uid: "u-x", resourceVersion: "1" },
    spec: {
      type: "LoadBalancer",
      loadBalancerClass: CLASS,
      externalIPs: ["127.0.0.1"],
      ports: [{ port: 80 }],
    },
  });
  t.controller.services.replace([withBad, svc("other", "web", { cls: "example.com/lb" })]);
  t.controller.startLeading();
  await t.settle();
  t.controller.services.upsert({ ...withBad, resourceVersion: "2" });
  await t.settle();
  const refused = t.eventApi.about("x").filter((e) => e.startsWith("ExternalIPRefused: "));
  assert.equal(refused.length, 1);
  assert.match(refused[0], /127\.0\.0\.1/);
  assert.deepEqual([...t.status.last.keys()], ["web/x"]);
  assert.deepEqual(t.eventApi.about("other"), []);
});
