/**
 * The reconciler's stop: a running `ip` gets a bounded grace
 * and is then stopped through the store's AbortSignal; a stop, and an `ip`
 * killed by a signal, are not logged as errors. Time is a fake clock.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { LogRecord } from "@logtape/logtape";
import { parseCidr } from "../../../lib/base/cidr.ts";
import { IpRoute2 } from "../../../lib/kernel/iproute2.ts";
import { quietObserver, type ReconcileResult } from "../../../lib/agent/observer.ts";
import { Reconciler } from "../../../lib/agent/reconciler.ts";
import { type Spawn, SpawnAborted } from "../../../lib/kernel/spawn.ts";
import { FakeAddressStore } from "../../support/fakes/address_store.ts";
import { FakeClock } from "../../support/fakes/clock.ts";
import { withLogs } from "../../support/fakes/log_capture.ts";
import {
  type InterfaceAddress,
  InterruptedError,
  type Plan,
} from "../../../lib/kernel/address_store.ts";
import { TEST_RECONCILER_OPTIONS } from "../../support/fakes/reconciler_options.ts";

const NETS = [parseCidr("10.0.100.0/24")];

/** A store whose next apply runs until released, or until its signal aborts. */
class SlowStore extends FakeAddressStore {
  hold = false;
  aborted = false;
  #release: (() => void) | undefined;
  override apply(plan: Plan, signal?: AbortSignal): Promise<void> {
    if (!this.hold) return super.apply(plan);
    return new Promise((resolve, reject) => {
      this.#release = () => resolve(super.apply(plan));
      signal?.addEventListener("abort", () => {
        this.aborted = true;
        reject(new InterruptedError("ip -batch - was stopped by kube-gw", "SIGTERM"));
      });
    });
  }
  release(): void {
    this.#release?.();
  }
  override read(_signal?: AbortSignal): Promise<InterfaceAddress[]> {
    return super.read();
  }
}

const text = (r: LogRecord) => `${r.level} ${r.message.join("")}`;

function harness(stopGraceMs = 5000) {
  const clock = new FakeClock();
  const store = new SlowStore();
  const results: ReconcileResult[] = [];
  const r = new Reconciler({
    ...TEST_RECONCILER_OPTIONS,
    store,
    networks: NETS,
    resyncMs: 0,
    clock,
    stopGraceMs,
    observer: { ...quietObserver, reconciled: (x) => results.push(x) },
  });
  return { clock, store, r, results };
}

const svc = (name: string, ...externalIPs: string[]) => ({
  namespace: "default",
  name,
  type: "ClusterIP",
  clusterIP: "10.96.0.1",
  externalIPs,
});

Deno.test("a stop waits for a running ip up to the grace, then stops it; no error is logged", async () => {
  await withLogs("debug", async (logs) => {
    const { clock, store, r, results } = harness(5000);
    store.hold = true;
    r.replace([svc("a", "10.0.100.30")], undefined);
    r.markSynced();
    await clock.tick(0);
    let stopped = false;
    const stopping = r.stop().then(() => stopped = true);
    await clock.tick(4999);
    assert.equal(stopped, false, "the stop waits for ip within the grace");
    assert.equal(store.aborted, false);
    await clock.tick(1);
    await stopping;
    assert.equal(store.aborted, true, "after the grace, ip is stopped");
    assert.deepEqual(results, ["error"]);
    assert.deepEqual(logs.filter((l) => l.level === "error").map(text), []);
    assert.ok(logs.some((l) => /stopped while ip ran/.test(text(l))), logs.map(text).join("\n"));
  });
});

Deno.test("an ip that ends within the grace is waited for, not stopped", async () => {
  await withLogs("debug", async (logs) => {
    const { clock, store, r, results } = harness(5000);
    store.hold = true;
    r.replace([svc("a", "10.0.100.30")], undefined);
    r.markSynced();
    await clock.tick(0);
    const stopping = r.stop();
    await clock.tick(1000);
    store.release();
    await stopping;
    assert.equal(store.aborted, false);
    assert.deepEqual(store.hosts(), ["10.0.100.30"]);
    assert.deepEqual(results, ["changed"]);
    assert.equal(clock.pending, 0, "no grace timer is left behind");
    assert.deepEqual(logs.filter((l) => l.level === "error").map(text), []);
  });
});

Deno.test("an ip killed by a signal is no error; it is retried, and a stop before the retry logs nothing", async () => {
  await withLogs("debug", async (logs) => {
    const { clock, store, r, results } = harness();
    r.replace([], undefined);
    r.markSynced();
    await clock.tick(0);
    // As systemd does: SIGTERM to ip and the agent at once; the stop comes before the retry.
    store.apply = () => Promise.reject(new InterruptedError("ip was killed by SIGTERM", "SIGTERM"));
    r.upsert(svc("a", "10.0.100.30"));
    await clock.tick(2);
    assert.deepEqual(results, ["noop", "error"]);
    await r.stop();
    await clock.tick(60_000);
    assert.deepEqual(
      logs.filter((l) => l.level === "error" || l.level === "warning").map(text),
      [],
    );
  });
  await withLogs("debug", async (logs) => {
    const { clock, store, r, results } = harness();
    r.replace([], undefined);
    r.markSynced();
    await clock.tick(0);
    const apply = store.apply.bind(store);
    store.apply = () => {
      store.apply = apply;
      return Promise.reject(new InterruptedError("ip was killed by SIGKILL", "SIGKILL"));
    };
    r.upsert(svc("a", "10.0.100.30"));
    // Someone else killed it: a warning at the retry, which repairs the interface.
    await clock.runUntil("the retry", () => results.length === 3);
    assert.deepEqual(results, ["noop", "error", "changed"]);
    assert.deepEqual(store.hosts(), ["10.0.100.30"]);
    assert.deepEqual(logs.filter((l) => l.level === "error").map(text), []);
    assert.match(
      logs.filter((l) => l.level === "warning").map(text).join("\n"),
      /^warning the last reconcile was interrupted: ip was killed by SIGKILL; retrying now$/,
    );
    await r.stop();
  });
});

Deno.test("IpRoute2 passes the signal to the process and reports a stop or a kill as InterruptedError", async () => {
  const seen: (AbortSignal | undefined)[] = [];
  const aborted: Spawn = (argv, _stdin, signal) => {
    seen.push(signal);
    return Promise.reject(new SpawnAborted(argv));
  };
  const controller = new AbortController();
  const stopped = new IpRoute2({ device: "lo", spawn: aborted });
  await assert.rejects(
    stopped.apply({ add: ["10.0.100.30"], remove: [] }, controller.signal),
    (e) => e instanceof InterruptedError && /was stopped by kube-gw/.test(e.message),
  );
  assert.deepEqual(seen, [controller.signal]);
  const killed = new IpRoute2({
    device: "lo",
    spawn: () => Promise.resolve({ code: 143, stdout: "", stderr: "", signal: "SIGTERM" }),
  });
  await assert.rejects(
    killed.read(),
    (e) =>
      e instanceof InterruptedError && e.signal === "SIGTERM" &&
      /killed by SIGTERM/.test(e.message),
  );
  assert.equal(killed.running, 0);
  await killed.idle();
});
