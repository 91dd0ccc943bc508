import assert from "node:assert/strict";
import { parseCidr } from "../../../lib/base/cidr.ts";
import { quietObserver, type RenewalResult } from "../../../lib/agent/observer.ts";
import { Reconciler } from "../../../lib/agent/reconciler.ts";
import { makePermanent, Renewer } from "../../../lib/agent/renewer.ts";
import type { ServiceRecord } from "../../../lib/service/record.ts";
import { FakeAddressStore } from "../../support/fakes/address_store.ts";
import { FakeClock } from "../../support/fakes/clock.ts";
import { withLogs } from "../../support/fakes/log_capture.ts";
import { type Plan } from "../../../lib/kernel/address_store.ts";
import { TEST_RECONCILER_OPTIONS } from "../../support/fakes/reconciler_options.ts";

const NETS = [parseCidr("10.0.100.0/24"), parseCidr("2001:db8::/64")];
/** What a router's loopback holds besides Service addresses: never renewed. */
const BASE = [{ family: 4 as const, local: "127.0.0.1", prefixlen: 8 }, "10.0.0.20"];

function svc(name: string, ...externalIPs: string[]): ServiceRecord {
  return { namespace: "default", name, type: "ClusterIP", clusterIP: "10.96.0.1", externalIPs };
}

/** A store whose applies wait until the test lets them finish, and whose renewals can fail. */
class SlowStore extends FakeAddressStore {
  #gate: PromiseWithResolvers<void> | undefined;
  failRenewals = 0;

  /** Applies from now on wait for `release`. */
  hold(): void {
    this.#gate = Promise.withResolvers();
  }

  release(): void {
    this.#gate?.resolve();
    this.#gate = undefined;
  }

  override async apply(plan: Plan): Promise<void> {
    await this.#gate?.promise;
    return super.apply(plan);
  }

  override renew(addresses: Iterable<string>): Promise<void> {
    if (this.failRenewals > 0) {
      this.failRenewals--;
      return Promise.reject(new Error("RTNETLINK answers: No buffer space available"));
    }
    return super.renew(addresses);
  }
}

function harness(initial: string[]) {
  const clock = new FakeClock();
  const store = new SlowStore([...BASE, ...initial]);
  const results: RenewalResult[] = [];
  const reconciled: string[] = [];
  const observer = {
    ...quietObserver,
    renewed: (result: RenewalResult) => results.push(result),
    reconciled: (result: string) => reconciled.push(result),
  };
  const r = new Reconciler({
    ...TEST_RECONCILER_OPTIONS,
    store,
    networks: NETS,
    resyncMs: 0,
    clock,
    observer,
  });
  const renewer = new Renewer({
    renew: () => r.renew(),
    intervalMs: 30_000,
    lifetimeSeconds: 90,
    clock,
    observer,
  });
  return { clock, store, r, renewer, results, reconciled };
}

Deno.test("renewal runs at start on what the interface holds, then every third of the lifetime on the held set", async () => {
  const { clock, store, r, renewer, results, reconciled } = harness(["10.0.100.5", "2001:db8::5"]);
  const ac = new AbortController();
  const running = renewer.run(ac.signal);
  await clock.runUntil("the first renewal", () => results.length === 1);
  assert.equal(clock.now(), 0, "at once: a restart must not wait a third of the lifetime");
  assert.deepEqual(store.renewals, [["10.0.100.5", "2001:db8::5"]], "managed addresses only");

  r.replace([svc("a", "10.0.100.30")], undefined);
  r.markSynced();
  await clock.runUntil("the first reconcile", () => reconciled.length === 1);
  assert.deepEqual(store.hosts(), ["10.0.0.20", "10.0.100.30"]);

  await clock.tick(30_000 - clock.now() - 1);
  assert.equal(results.length, 1, "not before the interval");
  await clock.tick(1);
  assert.deepEqual(results, ["ok", "ok"]);
  assert.deepEqual(store.renewals[1], ["10.0.100.30"], "the held set after the plan");
  await clock.tick(60_000);
  assert.equal(store.renewals.length, 4);
  ac.abort();
  await running;
  assert.equal(clock.pending, 0, "no timer left after the abort");
  store.assertNoViolations();
});

Deno.test("a renewal never runs beside a plan: it waits and renews what the plan left", async () => {
  const { clock, store, r, reconciled } = harness(["10.0.100.5", "10.0.100.6"]);
  r.replace([svc("a", "10.0.100.5", "10.0.100.6")], undefined);
  r.markSynced();
  await clock.runUntil("the first reconcile", () => reconciled.length === 1);
  store.hold();
  r.delete("default", "a");
  await clock.tick(2); // the coalescing window: the removal starts and waits in the store
  let renewed: number | undefined;
  const renewal = r.renew().then((n) => renewed = n);
  await clock.tick(0);
  assert.equal(renewed, undefined, "the renewal waits for the plan");
  assert.deepEqual(store.renewals, []);
  store.release();
  await renewal;
  assert.equal(renewed, 0, "nothing is left to renew");
  assert.deepEqual(store.hosts(), ["10.0.0.20"], "the removed addresses were not re-added");
  assert.deepEqual(store.renewals, [], "no renewal of an address the plan removed");
  store.assertNoViolations();
});

Deno.test("failed renewals are counted each time, warned about once, and the next one is still made on time", async () => {
  await withLogs("warning", async (records) => {
    const { clock, store, renewer, results } = harness(["10.0.100.5"]);
    store.failRenewals = 2;
    const ac = new AbortController();
    const running = renewer.run(ac.signal);
    await clock.runUntil("three renewals", () => results.length === 3);
    assert.deepEqual(results, ["error", "error", "ok"]);
    assert.equal(clock.now(), 60_000, "failures do not shift the schedule");
    assert.equal(renewer.failures, 2);
    assert.equal(renewer.renewals, 1);
    assert.deepEqual(store.renewals, [["10.0.100.5"]]);
    assert.equal(records.length, 1, "one warning for two failures in a row");
    assert.match(records[0].message.join(""), /cannot renew address lifetimes.*No buffer space/);
    ac.abort();
    await running;
  });
});

Deno.test("a store without lifetimes renews nothing", async () => {
  const clock = new FakeClock();
  const store = new FakeAddressStore(["10.0.100.5"]);
  const plain = { read: () => store.read(), apply: (p: Plan) => store.apply(p) };
  const r = new Reconciler({
    ...TEST_RECONCILER_OPTIONS,
    store: plain,
    networks: NETS,
    resyncMs: 0,
    clock,
  });
  assert.equal(await r.renew(), 0);
  assert.equal(store.reads, 0, "not even a read");
});

Deno.test("with the option off, managed addresses that still carry a lifetime are made permanent, and only they", async () => {
  const store = new FakeAddressStore(["10.0.100.5", "10.0.0.20"]);
  store.put({ family: 4, local: "10.0.100.6", prefixlen: 32, expires: true });
  store.put({ family: 4, local: "10.0.0.21", prefixlen: 32, expires: true });
  const managed = new Set(["10.0.100.5", "10.0.100.6"]);
  assert.equal(await makePermanent(store, managed), 1);
  assert.deepEqual(store.renewals, [["10.0.100.6"]], "not the unmanaged 10.0.0.21");
  const plain = new FakeAddressStore(["10.0.100.5"]);
  assert.equal(await makePermanent(plain, new Set(["10.0.100.5"])), 0);
  assert.deepEqual(plain.renewals, [], "no run when nothing expires");
});
