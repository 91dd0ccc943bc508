import assert from "node:assert/strict";
import { parseCidr } from "../../../lib/base/cidr.ts";
import {
  type AgentObserver,
  quietObserver,
  type ReconcileResult,
} from "../../../lib/agent/observer.ts";
import { Reconciler, type ReconcilerOptions } from "../../../lib/agent/reconciler.ts";
import { ConflictError } from "../../../lib/agent/interface_sync.ts";
import type { ServiceRecord } from "../../../lib/service/record.ts";
import { FakeAddressStore } from "../../support/fakes/address_store.ts";
import { FakeClock } from "../../support/fakes/clock.ts";
import { TEST_RECONCILER_OPTIONS } from "../../support/fakes/reconciler_options.ts";

const NETS = [parseCidr("10.0.100.0/24"), parseCidr("2001:db8::/64")];
/** What a router's loopback holds besides Service addresses. */
const BASE = [{ family: 4 as const, local: "127.0.0.1", prefixlen: 8 }, "10.0.0.20"];

function svc(name: string, ...externalIPs: string[]): ServiceRecord {
  return { namespace: "default", name, type: "ClusterIP", clusterIP: "10.96.0.1", externalIPs };
}

/** A reconciler on a fake clock and a fake interface, and what it reported. */
function harness(
  initial: string[] = [],
  options: Partial<ReconcilerOptions> & { observer?: Partial<AgentObserver> } = {},
) {
  const clock = new FakeClock();
  const store = new FakeAddressStore([...BASE, ...initial]);
  const results: ReconcileResult[] = [];
  const held: Record<number, number> = {};
  const r = new Reconciler({
    ...TEST_RECONCILER_OPTIONS,
    store,
    networks: NETS,
    resyncMs: 0,
    clock,
    ...options,
    observer: {
      ...quietObserver,
      reconciled: (result) => results.push(result),
      held: (family, n) => held[family] = n,
      ...options.observer,
    },
  });
  /** Moves the clock from timer to timer until `n` reconciles in all have ended. */
  const reconciles = async (n: number) => {
    await clock.runUntil(`${n} reconciles`, () => results.length >= n);
    assert.equal(results.length, n, `exactly ${n} reconciles`);
  };
  return { clock, store, r, results, held, reconciles };
}

Deno.test("nothing is changed before the first complete list", async () => {
  const { clock, store, r, results, reconciles } = harness(["10.0.100.99"]);
  r.upsert(svc("a", "10.0.100.30"));
  assert.equal(clock.pending, 0, "no reconcile is even scheduled");
  await clock.tick(60_000);
  assert.deepEqual(store.plans, []);
  assert.deepEqual(results, []);
  assert.equal(r.notReady(), "waiting for the first complete list of Services");
  r.replace([svc("a", "10.0.100.30")], undefined);
  r.markSynced();
  assert.equal(r.notReady(), "waiting for the first reconcile");
  await reconciles(1);
  assert.deepEqual(store.hosts(), ["10.0.0.20", "10.0.100.30"]);
  assert.equal(r.notReady(), undefined);
  await r.stop();
  store.assertNoViolations();
});

Deno.test("a burst of events within the window becomes one reconcile", async () => {
  const { clock, store, r, results, reconciles } = harness([], { windowMs: 10 });
  r.replace([], undefined);
  r.markSynced();
  await reconciles(1);
  for (let i = 0; i < 200; i++) r.upsert(svc(`s${i}`, `10.0.100.${i}`));
  await clock.tick(9);
  assert.equal(results.length, 1, "nothing before the window closes");
  await reconciles(2);
  assert.equal(clock.pending, 0, "nothing more is scheduled");
  assert.deepEqual(results, ["noop", "changed"]);
  assert.equal(store.plans.length, 1);
  assert.equal(store.plans[0].add.length, 200);
  await r.stop();
  store.assertNoViolations();
});

Deno.test("a change after a quiet spell runs at once; one right after a reconcile waits out the window", async () => {
  const { clock, store, r, results, reconciles } = harness([], { windowMs: 10 });
  r.replace([], undefined);
  r.markSynced();
  await reconciles(1);
  await clock.tick(10);
  r.upsert(svc("a", "10.0.100.30"));
  await clock.tick(0);
  assert.deepEqual(results, ["noop", "changed"], "no wait after a quiet spell");
  r.upsert(svc("b", "10.0.100.31"));
  await clock.tick(9);
  assert.equal(results.length, 2, "nothing within the window after the last reconcile");
  await clock.tick(1);
  assert.deepEqual(results, ["noop", "changed", "changed"]);
  assert.deepEqual(store.hosts(), ["10.0.0.20", "10.0.100.30", "10.0.100.31"]);
  await r.stop();
  store.assertNoViolations();
});

Deno.test("a restart with the addresses already in place changes nothing (no flap)", async () => {
  const { clock, store, r, results, reconciles } = harness([
    "10.0.100.30",
    "10.0.100.31",
    "2001:db8::30",
  ]);
  r.replace([svc("nginx", "10.0.100.30", "10.0.100.31"), svc("v6", "2001:db8::30")], undefined);
  r.markSynced();
  await reconciles(1);
  assert.equal(clock.pending, 0);
  assert.deepEqual(results, ["noop"]);
  assert.deepEqual(store.plans, []);
  assert.equal(store.reads, 1);
  assert.equal(r.notReady(), undefined);
  await r.stop();
});

Deno.test("stale addresses inside the networks go; others on the interface stay", async () => {
  const { store, r, reconciles } = harness(["10.0.100.30", "10.0.100.77", "192.0.2.1"]);
  r.replace([svc("nginx", "10.0.100.30")], undefined);
  r.markSynced();
  await reconciles(1);
  assert.deepEqual(store.plans, [{ add: [], remove: ["10.0.100.77"] }]);
  assert.deepEqual(store.hosts(), ["10.0.0.20", "10.0.100.30", "192.0.2.1"]);
  await r.stop();
  store.assertNoViolations();
});

Deno.test("a resync repairs an address deleted by hand", async () => {
  const { store, r, reconciles } = harness();
  r.replace([svc("nginx", "10.0.100.30")], undefined);
  r.markSynced();
  await reconciles(1);
  store.take("10.0.100.30");
  r.resync();
  await reconciles(2);
  assert.deepEqual(store.hosts(), ["10.0.0.20", "10.0.100.30"]);
  assert.equal(store.plans.length, 2);
  await r.stop();
  store.assertNoViolations();
});

Deno.test("the periodic resync runs on its own, once per interval", async () => {
  const { clock, store, r, results, reconciles } = harness([], { resyncMs: 30_000 });
  r.replace([svc("nginx", "10.0.100.30")], undefined);
  r.markSynced();
  await reconciles(1);
  store.take("10.0.100.30");
  await clock.tick(29_999);
  assert.equal(results.length, 1, "no resync before the interval");
  await clock.tick(1);
  await reconciles(2);
  assert.deepEqual(store.hosts(), ["10.0.0.20", "10.0.100.30"]);
  assert.equal(store.reads, 3, "the first read, the check's, and the re-read that repairs");
  await r.stop();
  store.assertNoViolations();
});

Deno.test("a resync that finds the interface as applied runs no reconcile", async () => {
  const { clock, store, r, results, reconciles } = harness([], { resyncMs: 30_000 });
  r.replace([svc("nginx", "10.0.100.30")], undefined);
  r.markSynced();
  await reconciles(1);
  await clock.runUntil("two checks", () => store.reads >= 3);
  assert.deepEqual(results, ["changed"], "no reconcile after either check");
  assert.equal(clock.now(), 60_000);
  await r.stop();
  store.assertNoViolations();
});

Deno.test("events are applied while a resync's read is still running, and the check still agrees", async () => {
  const { clock, store, r, results, reconciles } = harness([], { resyncMs: 30_000 });
  r.replace([svc("a", "10.0.100.30"), svc("b", "10.0.100.31")], undefined);
  r.markSynced();
  await reconciles(1);
  for (const snapshot of ["start", "end"] as const) {
    const release = store.holdReads(snapshot);
    const reads = store.reads;
    await clock.runUntil("the check's read", () => store.reads > reads);
    // A slow dump of 100,000 routes: changes arrive and are applied before it ends.
    r.upsert(svc(`c-${snapshot}`, snapshot === "start" ? "10.0.100.40" : "10.0.100.41"));
    r.delete("default", snapshot === "start" ? "a" : "b");
    await reconciles(snapshot === "start" ? 2 : 3);
    release();
    // Time for the check to end and for any reconcile it would start (at once).
    await clock.tick(1000);
    assert.equal(
      results.length,
      snapshot === "start" ? 2 : 3,
      `${snapshot}: no reconcile after the check`,
    );
    assert.equal(store.reads, reads + 1, `${snapshot}: no re-read after the check`);
  }
  assert.deepEqual(results, ["changed", "changed", "changed"]);
  assert.deepEqual(store.hosts(), ["10.0.0.20", "10.0.100.40", "10.0.100.41"]);
  await r.stop();
  store.assertNoViolations();
});

Deno.test("drift found by a resync's check beside a plan is repaired; the plan's own addresses are not drift", async () => {
  const { clock, store, r, reconciles } = harness([], { resyncMs: 30_000 });
  r.replace([svc("a", "10.0.100.30"), svc("b", "10.0.100.31")], undefined);
  r.markSynced();
  await reconciles(1);
  const release = store.holdReads("end");
  await clock.runUntil("the check's read", () => store.reads === 2);
  store.take("10.0.100.30"); // by hand, during the check
  r.upsert(svc("c", "10.0.100.40"));
  await reconciles(2);
  release();
  await reconciles(3);
  assert.equal(store.reads, 3, "the check, then one re-read in line");
  assert.deepEqual(store.hosts(), ["10.0.0.20", "10.0.100.30", "10.0.100.31", "10.0.100.40"]);
  await r.stop();
  store.assertNoViolations();
});

Deno.test("a failed apply is retried after the backoff, re-reading the interface", async () => {
  const { clock, store, r, results, reconciles } = harness([], {
    retryBackoff: { initialMs: 10_000, random: () => 1 },
  });
  store.failApply(1);
  r.replace([svc("nginx", "10.0.100.30")], undefined);
  r.markSynced();
  await reconciles(1);
  assert.match(
    r.notReady() ?? "",
    /^the last reconcile failed: RTNETLINK answers: No buffer space/,
  );
  await clock.tick(9_999);
  assert.equal(results.length, 1, "no retry before the backoff");
  await reconciles(2);
  assert.deepEqual(store.hosts(), ["10.0.0.20", "10.0.100.30"]);
  assert.equal(r.notReady(), undefined);
  assert.deepEqual(results, ["error", "changed"]);
  assert.equal(store.reads, 2);
  await r.stop();
  store.assertNoViolations();
});

Deno.test("retries back off further after each failure and start over after a success", async () => {
  const { clock, store, r, reconciles } = harness([], {
    retryBackoff: { initialMs: 1000, maxMs: 4000, random: () => 1 },
  });
  store.failApply(3);
  r.replace([svc("nginx", "10.0.100.30")], undefined);
  r.markSynced();
  await reconciles(1);
  const at = [clock.now()];
  for (let n = 2; n <= 4; n++) {
    await reconciles(n);
    at.push(clock.now());
  }
  // A retry runs one (fake) millisecond after its delay: fake timers put a 0 ms timer set
  // within a timer at +1 ms.
  const gaps = (ts: number[]) => ts.slice(1).map((t, i) => t - ts[i] - 1);
  assert.deepEqual(gaps(at), [1000, 2000, 4000]);
  assert.equal(r.notReady(), undefined);
  store.failApply(1);
  r.upsert(svc("web", "10.0.100.40"));
  await reconciles(5);
  const failedAt = clock.now();
  await reconciles(6);
  assert.deepEqual(gaps([failedAt, clock.now()]), [1000], "the backoff started over");
  assert.deepEqual(store.hosts(), ["10.0.0.20", "10.0.100.30", "10.0.100.40"]);
  await r.stop();
  store.assertNoViolations();
});

Deno.test("a subnet on the interface that overlaps a managed network is refused", async () => {
  const { store, r } = harness();
  store.put({ family: 4, local: "10.0.100.1", prefixlen: 24 });
  await assert.rejects(
    r.readManaged(),
    (e: unknown) => e instanceof ConflictError && /10\.0\.100\.1\/24/.test(e.message),
  );
  await r.stop();
});

Deno.test("the observer sees addresses held per family", async () => {
  const { store, r, held, reconciles } = harness();
  r.replace([svc("a", "10.0.100.30", "10.0.100.31", "2001:db8::1")], undefined);
  r.markSynced();
  await reconciles(1);
  assert.deepEqual(held, { 4: 2, 6: 1 });
  r.upsert(svc("a", "10.0.100.30", "2001:db8::2", "2001:db8::3"));
  await reconciles(2);
  assert.deepEqual(held, { 4: 1, 6: 2 });
  r.delete("default", "a");
  await reconciles(3);
  assert.deepEqual(held, { 4: 0, 6: 0 });
  await r.stop();
  store.assertNoViolations();
});
