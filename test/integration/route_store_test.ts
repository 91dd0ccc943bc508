import assert from "node:assert/strict";
import { RouteStore } from "../../lib/kernel/route_store.ts";
import { IpError } from "../../lib/kernel/ip_command.ts";
import { parseCidr } from "../../lib/base/cidr.ts";
import { InterfaceSync } from "../../lib/agent/interface_sync.ts";
import { systemClock } from "../../lib/base/system_clock.ts";
import { quietObserver } from "../../lib/agent/observer.ts";
import { Netns } from "../support/procs/netns.ts";

const NETS = [parseCidr("10.0.100.0/24"), parseCidr("2001:db8:100::/64")];

/** `ip -json [-6] route show table T proto P`, as `type dst` texts, sorted. */
async function routes(ns: Netns, options: { table?: string; proto?: string } = {}) {
  const out: string[] = [];
  for (const family of ["-4", "-6"]) {
    const text = await ns.ip(
      "-json",
      family,
      "route",
      "show",
      "table",
      options.table ?? "main",
      ...(options.proto ? ["proto", options.proto] : []),
    ).catch((err: Error) => {
      // A table no route of the family was ever put in does not exist for it.
      if (/FIB table does not exist/.test(err.message)) return "[]";
      throw err;
    });
    const list = JSON.parse(text) as { type?: string; dst: string }[];
    out.push(...list.map((r) => `${r.type ?? "unicast"} ${r.dst}`));
  }
  return out.sort();
}

/** Whether the local-access rule (`pref 32000 iif lo lookup 200`) is in place for a family. */
async function hasLocalRule(ns: Netns, family: "-4" | "-6"): Promise<boolean> {
  const rules = JSON.parse(await ns.ip("-json", "-N", family, "rule", "show")) as {
    priority: number;
    iif?: string;
    table: string;
  }[];
  return rules.some((r) => r.priority === 32000 && r.iif === "lo" && r.table === "200");
}

function sync(ns: Netns) {
  const store = new RouteStore({ protocol: 200, table: "main", networks: NETS, netns: ns.name });
  return {
    store,
    sync: new InterfaceSync({ store, networks: NETS, observer: quietObserver, clock: systemClock }),
  };
}

Deno.test("RouteStore holds IPv4 and IPv6 addresses as unreachable routes and reads them back", async () => {
  await using ns = await Netns.create("rt");
  const { store, sync: s } = sync(ns);
  await s.sync(() => new Set(["10.0.100.5", "10.0.100.6", "2001:db8:100::5"]));
  assert.deepEqual(await routes(ns, { proto: "200" }), [
    "unreachable 10.0.100.5",
    "unreachable 10.0.100.6",
    "unreachable 2001:db8:100::5",
  ]);
  const read = await store.read();
  assert.deepEqual(read.map((a) => `${a.local}/${a.prefixlen}`).sort(), [
    "10.0.100.5/32",
    "10.0.100.6/32",
    "2001:db8:100::5/128",
  ]);
  assert.ok(read.every((a) => a.owned && !a.misshapen), "read back as kube-gw writes them");
  // Local access: the rule from lo and the networks on lo in table 200, both families.
  for (const family of ["-4", "-6"] as const) assert.ok(await hasLocalRule(ns, family));
  assert.deepEqual(await routes(ns, { table: "200" }), [
    "unicast 10.0.100.0/24",
    "unicast 2001:db8:100::/64",
  ]);
  // Nothing held on lo.
  assert.deepEqual(await ns.hostAddresses(), []);
  s.reread();
  await s.sync(() => new Set(["10.0.100.6"]));
  assert.deepEqual(await routes(ns, { proto: "200" }), ["unreachable 10.0.100.6"]);
});

Deno.test("RouteStore: drift is repaired at the re-read; other protocols' routes are never touched", async () => {
  await using ns = await Netns.create("rt");
  // Another daemon's routes: one inside the managed network, one outside; and a static route.
  await ns.ip("link", "add", "d0", "type", "veth", "peer", "name", "d1");
  await ns.ip("link", "set", "d0", "up");
  await ns.ip("link", "set", "d1", "up");
  await ns.ip("route", "add", "blackhole", "10.0.100.77/32", "proto", "186");
  await ns.ip("route", "add", "10.0.100.78/32", "dev", "d0", "proto", "static");
  await ns.ip("-6", "route", "add", "blackhole", "2001:db8:100::77/128", "proto", "12");
  const foreign = await routes(ns);
  const { sync: s } = sync(ns);
  const desired = new Set(["10.0.100.5", "2001:db8:100::5"]);
  await s.sync(() => desired);
  // Someone deletes one of kube-gw's routes and adds one of its protocol outside the networks,
  // one that is not a host route, and one of another type.
  await ns.ip("route", "del", "10.0.100.5/32", "proto", "200");
  await ns.ip("route", "add", "unreachable", "192.0.2.1/32", "proto", "200");
  await ns.ip("route", "add", "unreachable", "10.0.100.128/25", "proto", "200");
  await ns.ip("-6", "route", "replace", "blackhole", "2001:db8:100::5/128", "proto", "200");
  s.reread();
  const p = await s.sync(() => desired);
  assert.deepEqual(p, {
    add: ["10.0.100.5", "2001:db8:100::5"],
    remove: ["10.0.100.128/25", "192.0.2.1"],
  });
  assert.deepEqual(await routes(ns, { proto: "200" }), [
    "unreachable 10.0.100.5",
    "unreachable 2001:db8:100::5",
  ]);
  // The other protocols' routes are as they were, those inside the managed network included.
  const now = await routes(ns);
  for (const r of foreign) assert.ok(now.includes(r), `${r} is still there`);
  assert.ok(now.includes("blackhole 10.0.100.77"));
  assert.ok(now.includes("unicast 10.0.100.78"));
  assert.ok(now.includes("blackhole 2001:db8:100::77"));
  // Drain removes kube-gw's routes only.
  await s.drain();
  assert.deepEqual(await routes(ns, { proto: "200" }), []);
  assert.ok((await routes(ns)).includes("blackhole 10.0.100.77"));
});

Deno.test("RouteStore in another table and with another protocol number", async () => {
  await using ns = await Netns.create("rt");
  const store = new RouteStore({ protocol: 77, table: "1000", networks: NETS, netns: ns.name });
  const s = new InterfaceSync({
    store,
    networks: NETS,
    observer: quietObserver,
    clock: systemClock,
  });
  await s.sync(() => new Set(["10.0.100.5"]));
  assert.deepEqual(await routes(ns, { table: "1000", proto: "77" }), ["unreachable 10.0.100.5"]);
  assert.deepEqual(await routes(ns, { proto: "77" }), [], "nothing in main");
  assert.deepEqual(await routes(ns, { table: "77" }), [
    "unicast 10.0.100.0/24",
    "unicast 2001:db8:100::/64",
  ]);
});

Deno.test("RouteStore applies 10,000 routes with one batch and names a missing namespace", async () => {
  await using ns = await Netns.create("rt");
  const store = new RouteStore({
    protocol: 200,
    table: "main",
    networks: [],
    netns: ns.name,
    batches: 1,
  });
  const add = Array.from({ length: 10_000 }, (_, i) => `198.18.${i >> 8}.${i & 255}`);
  await store.apply({ add, remove: [] });
  assert.equal(store.spawned, 1);
  assert.equal((await store.read()).length, 10_000);
  await assert.rejects(
    new RouteStore({ protocol: 200, table: "main", networks: [], netns: `${ns.name}-gone` })
      .read(),
    (e: unknown) => e instanceof IpError && e.kind === "no_netns",
  );
});

Deno.test("RouteStore: a plan split over parallel ip -batch puts every route in place", async () => {
  await using ns = await Netns.create("rt");
  const store = new RouteStore({
    protocol: 200,
    table: "main",
    networks: [parseCidr("10.64.0.0/16")],
    netns: ns.name,
    batches: 3,
  });
  const add = Array.from({ length: 6000 }, (_, i) => `10.64.${i >> 8}.${i & 255}`);
  await store.read();
  await store.apply({ add, remove: [] });
  const held = (await store.read()).map((a) => a.local);
  assert.deepEqual(new Set(held), new Set(add));
  assert.equal(held.length, add.length);
  assert.equal(
    store.spawned,
    2 + 1 + 1 + 3 + 2,
    "2 reads, 1 rule (IPv4 only), local access, 3 parts, 2 reads",
  );
  // Local access, put in before the parts, is in place too.
  assert.deepEqual(await routes(ns, { table: "200" }), ["unicast 10.64.0.0/16"]);
});

Deno.test("RouteStore: local access removed by hand is found by the resync's check and put back", async () => {
  await using ns = await Netns.create("rt");
  const { store, sync: s } = sync(ns);
  const desired = new Set(["10.0.100.5", "2001:db8:100::5"]);
  await s.sync(() => desired);
  assert.equal(store.missing(), undefined);
  assert.equal(await s.verify(), true, "a clean check");
  // Someone flushes the IPv4 rule and the IPv6 network's route in table 200; the addresses stay.
  await ns.ip("-4", "rule", "del", "pref", "32000");
  await ns.ip("-6", "route", "del", "2001:db8:100::/64", "table", "200");
  assert.equal(await s.verify(), false, "the check sees the difference");
  assert.equal(
    store.missing(),
    "local access: the rule iif lo lookup 200 (IPv4), the route 2001:db8:100::/64 dev lo in table 200",
  );
  // The repair is the reconcile after it: a re-read and a plan with no address in it.
  s.reread();
  assert.deepEqual(await s.sync(() => desired), { add: [], remove: [] });
  assert.equal(store.missing(), undefined);
  assert.ok(await hasLocalRule(ns, "-4"));
  assert.deepEqual(await routes(ns, { table: "200" }), [
    "unicast 10.0.100.0/24",
    "unicast 2001:db8:100::/64",
  ]);
  assert.equal(await s.verify(), true, "clean again");
  // A drain with nothing to withdraw changes nothing, local access included.
  await s.drain();
  await s.drain();
  await ns.ip("-4", "rule", "del", "pref", "32000");
  await s.drain();
  assert.equal(await hasLocalRule(ns, "-4"), false, "the drain put no rule back");
});
