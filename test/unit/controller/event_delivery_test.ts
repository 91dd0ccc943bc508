import assert from "node:assert/strict";
import { FakeEventApi, setup, svc } from "./loop_world.ts";
import { EventRecorder } from "../../../lib/controller/event_recorder.ts";
import { FakeClock } from "../../support/fakes/clock.ts";
import type { ControllerEvent } from "../../../lib/controller/ports.ts";

/** The most POSTs that arrived within any window of `windowMs` (half-open). */
function busiestWindow(times: readonly number[], windowMs = 1000): number {
  let most = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i] - times[j] >= windowMs) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

Deno.test("a Warning whose POST fails is sent again, and arrives", async () => {
  const t = setup({ pool: ["198.51.100.7/32"] });
  t.eventApi.fail = (_n, body) => body.reason === "AllocationFailed" && t.eventApi.refused === 0;
  t.controller.services.replace([svc("a", "web"), svc("b", "web")]);
  t.controller.startLeading();
  await t.settle();
  assert.equal(t.eventApi.refused, 1, "the first AllocationFailed was refused");
  assert.deepEqual(t.eventApi.about("b"), []);
  assert.equal(t.controller.warningsTold("web/b"), false);
  await t.clock.runUntil(
    "the Warning sent again",
    () => t.eventApi.about("b").some((e) => e.startsWith("AllocationFailed: pool_exhausted")),
  );
  await t.settle();
  assert.equal(t.controller.warningsTold("web/b"), true);
  assert.equal(t.eventApi.about("b").length, 1, "told once");
  // Told: deciding it again (a freed address that does not reach it) sends nothing more.
  t.controller.services.upsert(svc("b", "web", { rv: "2" }));
  await t.settle();
  await t.clock.tick(120_000);
  await t.settle();
  assert.equal(t.eventApi.about("b").length, 1);
});

Deno.test("3,000 Services failing allocation each get their AllocationFailed within 10 minutes, at most 10 Events a second, even with one POST in 20 failing", async () => {
  const t = setup({ pool: ["198.51.100.0/31"] });
  t.eventApi.fail = (n) => n % 20 === 7;
  const n = 3002;
  t.controller.services.replace(Array.from({ length: n }, (_, i) => svc(`s${i}`, "web")));
  t.controller.startLeading();
  await t.controller.idle();
  // When each failing Service's first AllocationFailed was accepted (clock ms, to the second).
  const firstAt = new Map<string, number>();
  let seen = 0;
  for (let s = 0; s < 600 && firstAt.size < n - 2; s++) {
    await t.clock.tick(1000);
    for (const e of t.eventApi.posted.slice(seen)) {
      if (e.reason !== "AllocationFailed") continue;
      const name = (e.regarding as { name: string }).name;
      if (!firstAt.has(name)) firstAt.set(name, t.clock.now());
    }
    seen = t.eventApi.posted.length;
  }
  const lastMs = Math.max(...firstAt.values());
  console.log(
    `${firstAt.size} of ${n - 2} Services told; the last after ${lastMs / 1000} s; ` +
      `${t.eventApi.arrivals.length} POSTs (${t.eventApi.refused} refused), ` +
      `busiest second: ${busiestWindow(t.eventApi.arrivals)}`,
  );
  assert.equal(firstAt.size, n - 2, "every failing Service has its AllocationFailed");
  assert.ok(lastMs <= 600_000, `the last one after ${lastMs} ms`);
  assert.ok(busiestWindow(t.eventApi.arrivals) <= 10, "at most 10 POSTs in any second");
  for (let i = 0; i < n; i++) {
    const key = `web/s${i}`;
    if (t.controller.assignments.has(key)) continue;
    assert.equal(t.controller.warningsTold(key), true, key);
  }
});

function ev(name: string, type: "Normal" | "Warning", reason: string): ControllerEvent {
  return {
    regarding: { kind: "Service", namespace: "web", name, uid: `u-${name}` },
    type,
    reason,
    action: "Allocate",
    note: `${reason} about ${name}`,
  };
}

Deno.test("the recorder paces its POSTs, sends Warnings first, and resolves only when the API accepted one", async () => {
  const clock = new FakeClock();
  const api = new FakeEventApi(clock);
  api.fail = (n) => n === 3;
  const rec = new EventRecorder({ api, clock, instance: "t", wallNow: () => 0 });
  const signal = new AbortController().signal;
  const outcomes: Promise<string>[] = [];
  for (let i = 0; i < 3; i++) {
    outcomes.push(rec.record(ev(`n${i}`, "Normal", "IPAllocated"), signal));
  }
  for (let i = 0; i < 3; i++) {
    outcomes.push(rec.record(ev(`w${i}`, "Warning", "AllocationFailed"), signal));
  }
  assert.equal(rec.pending, 6);
  while (rec.pending > 0) await clock.tick(100);
  assert.deepEqual(await Promise.all(outcomes), [
    "emit",
    "emit",
    "emit",
    "emit",
    "emit",
    "failed",
  ]);
  // The first Normal Event went at once; the Warnings jumped the queue behind it.
  assert.deepEqual(api.posted.map((e) => (e.regarding as { name: string }).name), [
    "n0",
    "w0",
    "w1",
    "n1",
    "n2",
  ]);
  assert.deepEqual(api.arrivals, [0, 100, 200, 300, 400, 500]);
  // A failed Event is no duplicate: recorded again, it is sent.
  const again = rec.record(ev("w2", "Warning", "AllocationFailed"), signal);
  while (rec.pending > 0) await clock.tick(100);
  assert.equal(await again, "emit");
  assert.equal(await rec.record(ev("w2", "Warning", "AllocationFailed"), signal), "duplicate");
});
