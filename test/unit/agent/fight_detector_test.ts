import assert from "node:assert/strict";
import fc from "fast-check";
import { parseCidr } from "../../../lib/base/cidr.ts";
import { describeFight, FightDetector } from "../../../lib/agent/fight_detector.ts";
import { quietObserver } from "../../../lib/agent/observer.ts";
import { Reconciler } from "../../../lib/agent/reconciler.ts";
import { FakeAddressStore } from "../../support/fakes/address_store.ts";
import { FakeClock } from "../../support/fakes/clock.ts";
import { withLogs } from "../../support/fakes/log_capture.ts";
import { TEST_RECONCILER_OPTIONS } from "../../support/fakes/reconciler_options.ts";

const set = (...xs: string[]) => new Set(xs);

Deno.test("an address that keeps vanishing is a fight, reported once, naming it and how often", () => {
  const d = new FightDetector();
  const events = [];
  for (let i = 0; i < 6; i++) events.push(d.observe(set("10.0.100.30"), set()));
  assert.deepEqual(events.map((e) => e?.kind), [undefined, undefined, "started", ...[
    undefined,
    undefined,
    undefined,
  ]]);
  const started = events[2];
  assert.ok(started?.kind === "started");
  assert.deepEqual(started.report, {
    vanished: [{ address: "10.0.100.30", times: 3 }],
    appeared: [],
    reads: 3,
  });
  assert.equal(d.fighting, true);
});

Deno.test("an unwanted address that keeps coming back is a fight too", () => {
  const d = new FightDetector({ threshold: 2 });
  assert.equal(d.observe(set(), set("10.0.100.40")), undefined);
  const e = d.observe(set(), set("10.0.100.40"));
  assert.ok(e?.kind === "started");
  assert.deepEqual(e.report.appeared, [{ address: "10.0.100.40", times: 2 }]);
});

Deno.test("drift now and then (a hand edit) is no fight: the count is per window", () => {
  const d = new FightDetector({ threshold: 3, window: 10 });
  for (let i = 0; i < 100; i++) {
    // One vanished address every 5th read: at most 2 within any 10 reads.
    const drift = i % 5 === 0;
    assert.equal(d.observe(set("10.0.100.30"), drift ? set() : set("10.0.100.30")), undefined);
  }
  assert.equal(d.fighting, false);
});

Deno.test("an episode ends after a window of quiet reads, and a new one is reported again", () => {
  const d = new FightDetector({ threshold: 3, window: 4 });
  const kinds: (string | undefined)[] = [];
  const fight = () => kinds.push(d.observe(set("10.0.100.30"), set())?.kind);
  const quiet = () => kinds.push(d.observe(set("10.0.100.30"), set("10.0.100.30"))?.kind);
  [fight, fight, fight, fight, quiet, quiet, quiet, quiet, fight, fight, fight].forEach((f) => f());
  assert.deepEqual(kinds, [
    undefined,
    undefined,
    "started",
    undefined,
    undefined,
    undefined,
    undefined,
    "ended",
    undefined,
    undefined,
    "started",
  ]);
});

Deno.test("property: reads equal to what was applied are never a fight", () => {
  fc.assert(
    fc.property(
      fc.array(fc.uniqueArray(fc.ipV4(), { maxLength: 20 }), { maxLength: 40 }),
      (reads) => {
        const d = new FightDetector({ threshold: 1 });
        return reads.every((r) => d.observe(new Set(r), new Set(r)) === undefined);
      },
    ),
    { seed: 9 },
  );
});

Deno.test("memory is bounded per read: a huge drift is remembered up to maxPerRead addresses", () => {
  const d = new FightDetector({ threshold: 1, maxPerRead: 5 });
  const many = new Set(Array.from({ length: 10_000 }, (_, i) => `10.1.${i >> 8}.${i & 255}`));
  const e = d.observe(many, set());
  assert.ok(e?.kind === "started");
  assert.equal(e.report.vanished.length, 5);
  assert.match(
    describeFight({ ...e.report, appeared: [] }, 2),
    /^another program is changing the managed addresses on the interface \(in the last 1 reads\): 5 address\(es\) kube-gw holds vanished between reads: 10\.1\.0\.\d+ \(1×\), 10\.1\.0\.\d+ \(1×\) and 3 more\. Is a second kube-gw/,
  );
});

Deno.test("two reconcilers with different Services on one interface: each warns once, naming both facts; not ready; metric", async () => {
  await withLogs("warning", async (records) => {
    const clock = new FakeClock();
    const store = new FakeAddressStore();
    const conflicts: boolean[] = [];
    const make = (offsetMs: number) =>
      new Reconciler({
        ...TEST_RECONCILER_OPTIONS,
        store,
        networks: [parseCidr("10.0.100.0/24")],
        resyncMs: 1000 + offsetMs,
        clock,
        observer: { ...quietObserver, interfaceConflict: (a) => conflicts.push(a) },
      });
    const svc = (name: string, ip: string) => ({
      namespace: "default",
      name,
      type: "ClusterIP",
      clusterIP: "10.96.0.1",
      externalIPs: [ip],
    });
    const a = make(0);
    const b = make(7);
    a.replace([svc("a", "10.0.100.30")], undefined);
    b.replace([svc("b", "10.0.100.40")], undefined);
    a.markSynced();
    b.markSynced();
    await clock.tick(20_000);
    const warnings = records.map((r) => r.message.join(""));
    assert.equal(warnings.length, 2, warnings.join("\n"));
    for (const w of warnings) {
      assert.match(w, /10\.0\.100\.30 \(\d+×\)/);
      assert.match(w, /10\.0\.100\.40 \(\d+×\)/);
      assert.match(w, /vanished between reads/);
      assert.match(w, /keep coming back/);
    }
    assert.match(a.notReady()!, /another program keeps changing the managed addresses/);
    assert.deepEqual(conflicts, [true, true]);
    await a.stop();
    // With one agent left, the fight is over after a window of quiet reads.
    await clock.tick(15_000);
    assert.deepEqual(conflicts, [true, true, false]);
    assert.equal(b.notReady(), undefined);
    await b.stop();
  });
});

Deno.test("the report names both sides of a fight, even when only one side reached the threshold", () => {
  const d = new FightDetector({ threshold: 3 });
  d.observe(set("10.0.100.40"), set("10.0.100.30", "10.0.100.40"));
  d.observe(set("10.0.100.40"), set("10.0.100.30", "10.0.100.40"));
  const e = d.observe(set("10.0.100.40"), set("10.0.100.30"));
  assert.ok(e?.kind === "started");
  assert.deepEqual(e.report.appeared, [{ address: "10.0.100.30", times: 3 }]);
  assert.deepEqual(e.report.vanished, [{ address: "10.0.100.40", times: 1 }]);
});
