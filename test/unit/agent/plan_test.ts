import assert from "node:assert/strict";
import fc from "fast-check";
import { cidrContains, parseCidr } from "../../../lib/base/cidr.ts";
import { formatV4 } from "../../../lib/base/ip.ts";
import { parseIp } from "../../../lib/base/ip.ts";
import { managedView, plan } from "../../../lib/agent/plan.ts";
import { FakeAddressStore } from "../../support/fakes/address_store.ts";
import { type InterfaceAddress } from "../../../lib/kernel/address_store.ts";

const NETS = [parseCidr("10.0.100.0/24"), parseCidr("2001:db8::/120")];

// Addresses drawn from a small pool that straddles the managed networks.
const v4 = fc.integer({ min: 0, max: 600 }).map((n) => formatV4(0x0a006300n + BigInt(n))); // 10.0.99.0 – 10.0.101.88
const v6 = fc.integer({ min: 0, max: 600 }).map((n) => `2001:db8::${n.toString(16)}`);
const addr = fc.oneof(v4, v6);
const managed = (a: string) => {
  const r = parseIp(a);
  return r.ok && NETS.some((n) => cidrContains(n, r.ip));
};
const ifaceAddr = fc.record({ local: addr, host: fc.boolean() }).map(
  ({ local, host }): InterfaceAddress => {
    const family = local.includes(":") ? 6 : 4;
    return { family, local, prefixlen: host ? (family === 4 ? 32 : 128) : family === 4 ? 24 : 64 };
  },
);

Deno.test("applying plan(desired, current) to current yields desired, adding only what is missing and removing only what is there", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(addr.filter(managed)),
      fc.uniqueArray(addr.filter(managed)),
      async (desired, current) => {
        const store = new FakeAddressStore(current);
        await store.apply(plan(desired, new Set(current)));
        assert.deepEqual(store.hosts(), [...desired].sort());
      },
    ),
  );
});

Deno.test("a plan never touches an address outside the managed networks", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(addr.filter(managed)),
      fc.uniqueArray(ifaceAddr, { selector: (a) => `${a.local}/${a.prefixlen}` }),
      async (desired, onInterface) => {
        const view = managedView(onInterface, NETS);
        const p = plan(desired, view.hosts);
        for (const a of [...p.add, ...p.remove]) {
          assert.ok(
            managed(a),
            `${a} is outside the networks`,
          );
        }
        // Everything unmanaged on the interface is still there afterwards.
        const store = new FakeAddressStore(onInterface);
        await store.apply(p);
        const after = new Set((await store.read()).map((a) => a.local));
        for (const a of onInterface) if (!managed(a.local)) assert.ok(after.has(a.local));
      },
    ),
  );
});

Deno.test("a plan is empty when the interface already matches (a restart changes nothing)", () => {
  fc.assert(
    fc.property(fc.uniqueArray(addr.filter(managed)), (desired) => {
      const p = plan(desired, new Set(desired));
      assert.deepEqual(p, { add: [], remove: [] });
    }),
  );
});

Deno.test("a plan adds and removes only what differs", () => {
  const p = plan(["10.0.100.30", "10.0.100.31"], new Set(["10.0.100.31", "10.0.100.99"]));
  assert.deepEqual(p, { add: ["10.0.100.30"], remove: ["10.0.100.99"] });
});

Deno.test("managedView keeps managed host addresses and flags overlapping subnets", () => {
  const view = managedView([
    { family: 4, local: "127.0.0.1", prefixlen: 8 },
    { family: 4, local: "10.0.0.20", prefixlen: 32 },
    { family: 4, local: "10.0.100.30", prefixlen: 32 },
    { family: 4, local: "10.0.100.1", prefixlen: 24 },
    { family: 4, local: "10.0.0.1", prefixlen: 8 },
    { family: 6, local: "::1", prefixlen: 128 },
    { family: 6, local: "2001:db8::5", prefixlen: 128 },
    { family: 6, local: "2001:db8:1::5", prefixlen: 64 },
  ], NETS);
  assert.deepEqual([...view.hosts], ["10.0.100.30", "2001:db8::5"]);
  assert.deepEqual(view.conflicts.map((c) => `${c.local}/${c.prefixlen}`), [
    "10.0.100.1/24",
    "10.0.0.1/8",
  ]);
});
