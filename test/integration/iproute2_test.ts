import assert from "node:assert/strict";
import { IpRoute2 } from "../../lib/kernel/iproute2.ts";
import { IpError } from "../../lib/kernel/ip_command.ts";
import { Netns } from "../support/procs/netns.ts";
import { parseCidr } from "../../lib/base/cidr.ts";
import { managedView, plan } from "../../lib/agent/plan.ts";

Deno.test("IpRoute2 adds and removes IPv4 and IPv6 host addresses on lo in a namespace", async () => {
  await using ns = await Netns.create("ip");
  const ip = new IpRoute2({ device: "lo", netns: ns.name });
  await ip.apply({ add: ["192.0.2.10", "198.51.100.7", "2001:db8::10"], remove: [] });
  assert.deepEqual(await ns.hostAddresses(), ["192.0.2.10", "198.51.100.7", "2001:db8::10"]);
  const read = await ip.read();
  assert.ok(read.some((a) => a.local === "2001:db8::10" && a.prefixlen === 128 && a.family === 6));
  assert.ok(read.some((a) => a.local === "192.0.2.10" && a.prefixlen === 32 && a.family === 4));
  await ip.apply({ add: [], remove: ["192.0.2.10", "2001:db8::10"] });
  assert.deepEqual(await ns.hostAddresses(), ["198.51.100.7"]);
});

Deno.test("IpRoute2 adding an address that is already there is not an error", async () => {
  await using ns = await Netns.create("ip");
  const ip = new IpRoute2({ device: "lo", netns: ns.name });
  await ip.apply({ add: ["192.0.2.10"], remove: [] });
  await ip.apply({ add: ["192.0.2.10"], remove: [] });
  assert.deepEqual(await ns.hostAddresses(), ["192.0.2.10"]);
});

Deno.test("IpRoute2 applies what it can and reports the rest when one removal fails", async () => {
  await using ns = await Netns.create("ip");
  const ip = new IpRoute2({ device: "lo", netns: ns.name });
  await assert.rejects(
    ip.apply({ add: ["192.0.2.11"], remove: ["192.0.2.99"] }),
    (e: unknown) =>
      e instanceof IpError && e.kind === "failed" &&
      /Cannot assign requested address|Command failed/.test(e.message),
  );
  assert.deepEqual(await ns.hostAddresses(), ["192.0.2.11"]);
});

Deno.test("IpRoute2 applies 10,000 addresses with one process", async () => {
  await using ns = await Netns.create("ip");
  const ip = new IpRoute2({ device: "lo", netns: ns.name });
  const add = Array.from({ length: 10_000 }, (_, i) => `198.18.${i >> 8}.${i & 255}`);
  await ip.apply({ add, remove: [] });
  assert.equal(ip.spawned, 1);
  const read = await ip.read();
  assert.equal(read.filter((a) => a.local.startsWith("198.18.")).length, 10_000);
});

Deno.test("IpRoute2 names a missing interface and a missing namespace", async () => {
  await using ns = await Netns.create("ip");
  await assert.rejects(
    new IpRoute2({ device: "nosuch0", netns: ns.name }).read(),
    (e: unknown) =>
      e instanceof IpError && e.kind === "no_device" &&
      /interface "nosuch0" does not exist/.test(e.message),
  );
  await assert.rejects(
    new IpRoute2({ device: "lo", netns: `${ns.name}-gone` }).read(),
    (e: unknown) => e instanceof IpError && e.kind === "no_netns",
  );
});

Deno.test("IpRoute2 reads back addresses that ip prints with a dotted quad, in canonical form", async () => {
  await using ns = await Netns.create("ip");
  const ip = new IpRoute2({ device: "lo", netns: ns.name });
  // Inside ::/96 and ::ffff:0:0/96 iproute2 prints "::10.0.100.5" and "::ffff:10.0.100.6".
  await ip.apply({ add: ["::a00:6405", "::ffff:a00:6406", "2001:db8::10"], remove: [] });
  assert.ok((await ns.hostAddresses()).includes("::10.0.100.5"), "ip prints the dotted form");
  const locals = (await ip.read()).filter((a) => a.family === 6).map((a) => a.local).sort();
  assert.deepEqual(locals, ["2001:db8::10", "::1", "::a00:6405", "::ffff:a00:6406"]);
  // So an address of a managed network inside ::/96 counts as held: nothing left to add,
  // and one no longer desired is removed.
  const networks = [parseCidr("::a00:6400/120")];
  const view = managedView(await ip.read(), networks);
  assert.deepEqual([...view.hosts], ["::a00:6405"]);
  assert.deepEqual(plan(["::a00:6405"], view.hosts), { add: [], remove: [] });
  await ip.apply(plan([], view.hosts));
  assert.ok(!(await ns.hostAddresses()).includes("::10.0.100.5"));
});
