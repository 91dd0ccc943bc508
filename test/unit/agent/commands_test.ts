import assert from "node:assert/strict";
import { parseCidr } from "../../../lib/base/cidr.ts";
import { drain } from "../../../lib/agent/commands.ts";
import { RECONCILE_TIMING } from "../../../lib/agent/run.ts";
import { InterruptedError, type Plan } from "../../../lib/kernel/address_store.ts";
import { FakeAddressStore } from "../../support/fakes/address_store.ts";
import { FakeClock } from "../../support/fakes/clock.ts";

const NETS = [parseCidr("10.0.100.0/24"), parseCidr("2001:db8::/64")];

Deno.test("drain removes every managed host address and nothing else", async () => {
  const store = new FakeAddressStore([
    { family: 4, local: "127.0.0.1", prefixlen: 8 },
    "10.0.0.20",
    "10.0.100.30",
    "2001:db8::30",
  ]);
  const p = await drain({ networks: NETS, store, signal: new AbortController().signal });
  assert.deepEqual(p.remove, ["10.0.100.30", "2001:db8::30"]);
  assert.deepEqual(store.plans, [{ add: [], remove: ["10.0.100.30", "2001:db8::30"] }]);
  assert.deepEqual(store.hosts(), ["10.0.0.20"]);
  store.assertNoViolations();
});

/** A store whose apply runs until its signal aborts, as a long `ip -batch` would. */
class HangingStore extends FakeAddressStore {
  started = false;
  override apply(_plan: Plan, signal?: AbortSignal): Promise<void> {
    this.started = true;
    return new Promise((_resolve, reject) => {
      signal?.addEventListener("abort", () => {
        reject(new InterruptedError("ip -batch - was stopped by kube-gw", "SIGTERM"));
      });
    });
  }
}

Deno.test("a signal stops drain's running ip as it stops run's: after the same grace", async () => {
  const clock = new FakeClock();
  const store = new HangingStore(["10.0.100.30"]);
  const stop = new AbortController();
  const draining = drain({ networks: NETS, store, signal: stop.signal, clock });
  let settled = false;
  draining.catch(() => {}).finally(() => settled = true);
  await clock.runUntil("ip running", () => store.started);
  stop.abort(new Error("SIGTERM"));
  await clock.tick(RECONCILE_TIMING.stopGraceMs - 1);
  assert.equal(settled, false, "ip gets the grace to finish on its own");
  await clock.tick(1);
  await assert.rejects(draining, InterruptedError);
});
