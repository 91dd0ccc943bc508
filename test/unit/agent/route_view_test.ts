import assert from "node:assert/strict";
import { parseCidr } from "../../../lib/base/cidr.ts";
import { InterfaceSync } from "../../../lib/agent/interface_sync.ts";
import { quietObserver } from "../../../lib/agent/observer.ts";
import { managedView, plan, withStrays } from "../../../lib/agent/plan.ts";
import type { InterfaceAddress } from "../../../lib/kernel/address_store.ts";
import { FakeAddressStore } from "../../support/fakes/address_store.ts";
import { FakeClock } from "../../support/fakes/clock.ts";

const NETS = [parseCidr("10.0.100.0/24"), parseCidr("2001:db8::/64")];

const owned = (local: string, prefixlen?: number, misshapen = false): InterfaceAddress => {
  const family = local.includes(":") ? 6 : 4;
  return {
    family,
    local,
    prefixlen: prefixlen ?? (family === 4 ? 32 : 128),
    owned: true,
    ...(misshapen ? { misshapen } : {}),
  };
};

Deno.test("managedView: owned entries are held inside the networks and strays elsewhere", () => {
  const view = managedView([
    owned("10.0.100.5"),
    owned("2001:db8::5"),
    owned("192.0.2.1"), // kube-gw's protocol, outside every network
    owned("10.0.100.0", 24), // not a host route: never kube-gw's shape
    owned("10.0.100.6", 32, true), // another route type
  ], NETS);
  assert.deepEqual([...view.hosts], ["10.0.100.5", "2001:db8::5"]);
  assert.deepEqual(view.strays, ["192.0.2.1", "10.0.100.0/24", "10.0.100.6"]);
  assert.deepEqual(view.conflicts, [], "an owned prefix is no conflict: it is kube-gw's");
});

Deno.test("managedView: entries not owned keep address mode's rules, with no strays", () => {
  const view = managedView([
    { family: 4, local: "10.0.100.5", prefixlen: 32 },
    { family: 4, local: "192.0.2.1", prefixlen: 32 },
    { family: 4, local: "10.0.100.1", prefixlen: 24 },
  ], NETS);
  assert.deepEqual([...view.hosts], ["10.0.100.5"]);
  assert.deepEqual(view.strays, []);
  assert.deepEqual(view.conflicts, [{ family: 4, local: "10.0.100.1", prefixlen: 24 }]);
});

Deno.test("withStrays removes the strays not desired; a desired one is written by the plan", () => {
  const p = plan(["10.0.100.6"], new Set(["10.0.100.5"]));
  assert.deepEqual(withStrays(p, ["192.0.2.1", "10.0.100.6"], new Set(["10.0.100.6"])), {
    add: ["10.0.100.6"],
    remove: ["10.0.100.5", "192.0.2.1"],
  });
  assert.equal(withStrays(p, [], new Set()), p, "no strays: the same plan");
});

function routeSync(initial: InterfaceAddress[]) {
  const store = new FakeAddressStore(initial, { owned: true });
  const held: Record<number, number> = {};
  const sync = new InterfaceSync({
    store,
    networks: NETS,
    clock: new FakeClock(),
    observer: { ...quietObserver, held: (family, n) => held[family] = n },
  });
  return { store, held, sync };
}

Deno.test("route mode: the first sync removes kube-gw's routes outside the networks and rewrites a misshapen one", async () => {
  const { store, held, sync } = routeSync([
    owned("10.0.100.5"),
    owned("2001:db8::9"),
    owned("192.0.2.1"),
    owned("10.9.0.0", 24),
    owned("10.0.100.6", 32, true),
  ]);
  const desired = new Set(["10.0.100.5", "10.0.100.6", "2001:db8::5"]);
  const p = await sync.sync(() => desired);
  assert.deepEqual(p, {
    add: ["10.0.100.6", "2001:db8::5"],
    remove: ["2001:db8::9", "192.0.2.1", "10.9.0.0/24"],
  });
  assert.deepEqual(store.entries(), ["10.0.100.5/32", "10.0.100.6/32", "2001:db8::5/128"]);
  assert.deepEqual(held, { 4: 2, 6: 1 }, "strays never counted as held");
  // The strays are gone: the next sync has nothing to do.
  sync.reread();
  assert.deepEqual(await sync.sync(() => desired), { add: [], remove: [] });
  store.assertNoViolations();
});

Deno.test("route mode: plan shows the strays' removal; drain removes them with every held route", async () => {
  const { store, held, sync } = routeSync([
    owned("10.0.100.5"),
    owned("192.0.2.1"),
    owned("10.0.100.6", 32, true),
  ]);
  assert.deepEqual(await sync.plan(new Set(["10.0.100.5"])), {
    add: [],
    remove: ["192.0.2.1", "10.0.100.6"],
  });
  assert.deepEqual(store.plans, [], "plan changes nothing");
  assert.deepEqual(await sync.drain(), {
    add: [],
    remove: ["10.0.100.5", "192.0.2.1", "10.0.100.6"],
  });
  assert.deepEqual(store.entries(), []);
  assert.deepEqual(held, { 4: 0, 6: 0 });
  store.assertNoViolations();
});
