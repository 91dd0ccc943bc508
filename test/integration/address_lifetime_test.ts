/**
 * `--address-lifetime` against the real kernel, in throwaway namespaces: an
 * address with a finite lifetime reads back as managed, a renewal is one
 * RTM_NEWADDR and no delete, and an address that is not renewed expires.
 */
import assert from "node:assert/strict";
import { parseCidr } from "../../lib/base/cidr.ts";
import { IpRoute2 } from "../../lib/kernel/iproute2.ts";
import { makePermanent } from "../../lib/agent/renewer.ts";
import { managedView, plan } from "../../lib/agent/plan.ts";
import { IpMonitor, Netns } from "../support/procs/netns.ts";
import { waitFor } from "../support/wait.ts";

const NETS = [parseCidr("10.0.100.0/24"), parseCidr("2001:db8:100::/64")];
const ADDRS = ["10.0.100.30", "2001:db8:100::30"];

/** `valid_life_time` of each address on lo, by address. */
async function lifetimes(ns: Netns): Promise<Map<string, number>> {
  const links = JSON.parse(await ns.ip("-json", "address", "show", "dev", "lo")) as {
    addr_info?: { local: string; valid_life_time: number }[];
  }[];
  return new Map(links.flatMap((l) => l.addr_info ?? []).map((a) => [a.local, a.valid_life_time]));
}

Deno.test("an address added with a lifetime reads back as managed: nothing left to plan", async () => {
  await using ns = await Netns.create("lft");
  const ip = new IpRoute2({ device: "lo", netns: ns.name, lifetimeSeconds: 60 });
  await ip.apply({ add: ADDRS, remove: [] });
  const lft = await lifetimes(ns);
  for (const a of ADDRS) {
    const left = lft.get(a);
    assert.ok(left !== undefined && left > 0 && left <= 60, `${a} has a finite lifetime: ${left}`);
  }
  const view = managedView(await ip.read(), NETS);
  assert.deepEqual([...view.hosts].sort(), ADDRS);
  assert.deepEqual(view.conflicts, []);
  assert.deepEqual(plan(ADDRS, view.hosts), { add: [], remove: [] });
});

Deno.test("a renewal is one RTM_NEWADDR per address and no delete, and gives a full lifetime again", async () => {
  await using ns = await Netns.create("lft");
  await new IpRoute2({ device: "lo", netns: ns.name, lifetimeSeconds: 30 }).apply({
    add: ADDRS,
    remove: [],
  });
  await using monitor = new IpMonitor(ns.name, "address", { oneline: true });
  const index = (re: RegExp) => monitor.lines.findIndex((l) => re.test(l.text));
  // Markers bracket the renewal: netlink events arrive in order, so every event of the
  // renewal is in the monitor's output before the second marker's.
  // The monitor may not listen yet when the first marker goes in: replace it (one RTM_NEWADDR
  // each time) until the monitor has seen it.
  await waitFor(
    "the first marker in ip monitor",
    async () => {
      if (index(/10\.0\.100\.250\//) >= 0) return true;
      await ns.ip("address", "replace", "10.0.100.250/32", "dev", "lo");
      return false;
    },
    20_000,
    100,
  );
  await new IpRoute2({ device: "lo", netns: ns.name, lifetimeSeconds: 600 }).renew(ADDRS);
  await ns.ip("address", "add", "10.0.100.251/32", "dev", "lo");
  await waitFor("the second marker in ip monitor", () => index(/10\.0\.100\.251\//) >= 0, 20_000);
  // From the last first-marker event: a replace the check raced with may show up twice.
  const first = monitor.lines.findLastIndex((l) => /10\.0\.100\.250\//.test(l.text));
  const between = monitor.lines.slice(first + 1, index(/10\.0\.100\.251\//))
    .map((l) => l.text);
  assert.equal(between.length, 2, `one event per address:\n${between.join("\n")}`);
  for (const a of ADDRS) {
    assert.equal(between.filter((l) => l.includes(` ${a}/`)).length, 1, `one event for ${a}`);
  }
  assert.ok(!between.some((l) => l.startsWith("Deleted")), `no delete:\n${between.join("\n")}`);
  assert.deepEqual((await ns.hostAddresses()).filter((a) => ADDRS.includes(a)).sort(), ADDRS);
  const lft = await lifetimes(ns);
  for (const a of ADDRS) assert.ok(lft.get(a)! > 30, `${a} renewed to 600s: ${lft.get(a)}`);
});

Deno.test("an address that is not renewed is removed by the kernel when its lifetime ends", async () => {
  await using ns = await Netns.create("lft");
  await using monitor = new IpMonitor(ns.name, "address", { oneline: true });
  const ip = new IpRoute2({ device: "lo", netns: ns.name, lifetimeSeconds: 3 });
  const added = performance.now();
  await ip.apply({ add: ADDRS, remove: [] });
  assert.deepEqual((await ns.hostAddresses()).filter((a) => ADDRS.includes(a)).sort(), ADDRS);
  await waitFor(
    "the kernel to remove both addresses",
    async () => !(await ns.hostAddresses()).some((a) => ADDRS.includes(a)),
    6000,
    50,
  );
  const gone = performance.now() - added;
  assert.ok(gone >= 2500, `not before the lifetime: ${Math.round(gone)}ms`);
  await waitFor(
    "the Deleted events",
    () =>
      ADDRS.every((a) =>
        monitor.lines.some((l) => /^Deleted/.test(l.text) && l.text.includes(` ${a}/`))
      ),
    2000,
  );
});

Deno.test("with the option turned off, the agent's start makes addresses with a lifetime permanent", async () => {
  await using ns = await Netns.create("lft");
  await new IpRoute2({ device: "lo", netns: ns.name, lifetimeSeconds: 30 }).apply({
    add: ADDRS,
    remove: [],
  });
  const plain = new IpRoute2({ device: "lo", netns: ns.name });
  assert.equal(await makePermanent(plain, new Set(ADDRS)), 2);
  const lft = await lifetimes(ns);
  for (const a of ADDRS) assert.equal(lft.get(a), 0xffffffff, `${a} is permanent`);
  assert.equal(await makePermanent(plain, new Set(ADDRS)), 0, "nothing left to do");
});
