/**
 * The agent in route mode (`--install-as route`), run from the bundle as a
 * process against the fake API server: the addresses become unreachable
 * routes of protocol 200 and nothing goes on `lo`; drift is repaired; a
 * restart changes no route; `plan`, `/status`, `drain` and the switch from
 * address mode work as documented (docs/router.md, "Switching modes").
 *
 * @module
 */

import assert from "node:assert/strict";
import { DEMO_SERVICE } from "../support/fakes/apiserver.ts";
import { demoSlice } from "../support/fakes/endpoint_slices.ts";
import { IpMonitor, type Netns } from "../support/procs/netns.ts";
import { runKubeGw, startAgent } from "../support/procs/agent.ts";
import { agentWorld } from "../support/procs/agent_world.ts";
import { statusOf } from "../support/procs/status.ts";
import { waitFor } from "../support/wait.ts";

const NETWORKS = "--network=10.0.100.0/24,2001:db8:100::/64";

/** Routes of protocol 200 in main, both families, as `type dst` texts, sorted. */
async function kubeGwRoutes(ns: Netns): Promise<string[]> {
  const out: string[] = [];
  for (const family of ["-4", "-6"]) {
    const list = JSON.parse(
      await ns.ip("-json", family, "route", "show", "table", "main", "proto", "200"),
    ) as { type?: string; dst: string }[];
    out.push(...list.map((r) => `${r.type ?? "unicast"} ${r.dst}`));
  }
  return out.sort();
}

async function world() {
  const w = await agentWorld("route");
  w.api.createObject("endpointslices", demoSlice());
  return {
    ...w,
    routeArgs: (...extra: string[]) =>
      w.args(NETWORKS, "--kube-proxy-health=off", "--install-as=route", ...extra),
  };
}

Deno.test("route mode: the Service addresses become unreachable routes of protocol 200, IPv4 and IPv6, none on lo", async () => {
  await using w = await world();
  w.api.create({
    ...DEMO_SERVICE,
    externalIPs: [...DEMO_SERVICE.externalIPs!, "2001:db8:100::30"],
  });
  // The demo pods are IPv4 only: the IPv6 address goes out with --announce always.
  await using agent = startAgent([
    "run",
    ...w.routeArgs("--metrics-address=127.0.0.1:0", "--announce=always"),
  ]);
  await agent.waitForLine(
    /holding the addresses as unreachable routes of protocol 200 in table main/,
  );
  const status = await statusOf(agent);
  await status.until(() => status.get("/readyz"), (r) => r.status === 200);
  assert.deepEqual(await kubeGwRoutes(w.ns), [
    "unreachable 10.0.100.30",
    "unreachable 10.0.100.31",
    "unreachable 2001:db8:100::30",
  ]);
  assert.deepEqual(await w.ns.hostAddresses(), [], "nothing on lo");
  // /status reports the same as in address mode.
  const s = JSON.parse((await status.get("/status")).body) as {
    addresses: { address: string; state: string }[];
  };
  assert.deepEqual(
    s.addresses.map((a) => `${a.address} ${a.state}`).sort(),
    ["10.0.100.30 announced", "10.0.100.31 announced", "2001:db8:100::30 announced"],
  );
  const m = await status.metrics();
  assert.equal(m.get('kubegw_addresses{family="ipv4"}'), 2);
  assert.equal(m.get('kubegw_addresses{family="ipv6"}'), 1);
  w.api.delete("nginx");
  await agent.waitForLine(/forfeiting address 2001:db8:100::30/);
  assert.deepEqual(await kubeGwRoutes(w.ns), []);
});

Deno.test("route mode: the resync puts back a deleted route and removes kube-gw's routes outside the network", async () => {
  await using w = await world();
  w.api.create(DEMO_SERVICE);
  // Another daemon's route inside the managed network: never touched.
  await w.ns.ip("route", "add", "blackhole", "10.0.100.77/32", "proto", "186");
  await using agent = startAgent([
    "run",
    ...w.routeArgs("--metrics-address=off", "--resync-interval=1s"),
  ]);
  await agent.waitForLine(/assuming address 10\.0\.100\.31/);
  const mark = agent.lines.length;
  await w.ns.ip("route", "del", "10.0.100.30/32", "proto", "200");
  await w.ns.ip("route", "add", "unreachable", "192.0.2.1/32", "proto", "200");
  await agent.waitForLine(/forfeiting address 192\.0\.2\.1/, 5000, mark);
  await agent.waitForLine(/assuming address 10\.0\.100\.30/, 5000, mark);
  await waitFor(
    "the routes to be repaired",
    async () =>
      JSON.stringify(await kubeGwRoutes(w.ns)) ===
        JSON.stringify(["unreachable 10.0.100.30", "unreachable 10.0.100.31"]),
  );
  const all = JSON.parse(await w.ns.ip("-json", "route", "show", "table", "main")) as {
    dst: string;
  }[];
  assert.ok(all.some((r) => r.dst === "10.0.100.77"), "the other protocol's route stays");
});

Deno.test("route mode: a restart changes no route; plan shows nothing to do; drain removes the routes", async () => {
  await using w = await world();
  w.api.create(DEMO_SERVICE);
  const first = startAgent(["run", ...w.routeArgs("--metrics-address=off")]);
  await first.waitForLine(/assuming address 10\.0\.100\.31/);
  assert.equal((await first.stop("SIGTERM")).code, 0);
  assert.deepEqual(
    await kubeGwRoutes(w.ns),
    ["unreachable 10.0.100.30", "unreachable 10.0.100.31"],
    "SIGTERM leaves the routes",
  );
  await using monitor = new IpMonitor(w.ns.name, "route");
  // The monitor provably listens: a marker route outside the network comes and goes until seen.
  await waitFor("the monitor to see a marker route", async () => {
    if (monitor.lines.some((l) => l.text.includes("198.51.100.254"))) return true;
    await w.ns.ip("route", "add", "blackhole", "198.51.100.254/32");
    await w.ns.ip("route", "del", "blackhole", "198.51.100.254/32");
    return false;
  });
  await w.ns.ip("route", "add", "blackhole", "198.51.100.253/32");
  await w.ns.ip("route", "del", "blackhole", "198.51.100.253/32");
  await waitFor(
    "the last marker to go",
    () =>
      monitor.lines.some((l) => l.text.startsWith("Deleted") && l.text.includes("198.51.100.253")),
  );
  monitor.lines.length = 0;
  await using second = startAgent(["run", ...w.routeArgs("--metrics-address=127.0.0.1:0")]);
  const status = await statusOf(second);
  await status.until(() => status.get("/readyz"), (r) => r.status === 200);
  const m = await status.metrics();
  assert.equal(m.get('kubegw_reconciles_total{result="noop"}'), 1);
  assert.match(
    second.lines.join("\n"),
    /found 2 managed addresses as unreachable routes of protocol 200 in table main/,
  );
  assert.equal((await second.stop("SIGTERM")).code, 0);
  await monitor.stop();
  assert.deepEqual(monitor.lines.map((l) => l.text), [], "no route was deleted or added");

  const plan = await runKubeGw(["plan", ...w.routeArgs()]);
  assert.equal(plan.code, 0, plan.stderr);
  assert.match(plan.stdout, /0 to add, 0 to remove, 0 withheld/);

  const drain = await runKubeGw(["drain", NETWORKS, `--netns=${w.ns.name}`, "--install-as=route"]);
  assert.equal(drain.code, 0, drain.stderr);
  assert.match(drain.stderr, /forfeiting address 10\.0\.100\.30/);
  assert.deepEqual(await kubeGwRoutes(w.ns), []);
});

Deno.test("switching from address mode to route mode: the address is held all along, then the old one drained", async () => {
  await using w = await world();
  w.api.create(DEMO_SERVICE);
  const base = w.args(NETWORKS, "--kube-proxy-health=off", "--metrics-address=off");
  const before = startAgent(["run", ...base]);
  await before.waitForLine(/assuming address 10\.0\.100\.31/);
  assert.equal((await before.stop("SIGTERM")).code, 0);
  assert.deepEqual(await w.ns.hostAddresses(), ["10.0.100.30", "10.0.100.31"]);
  // The switch: restart in route mode. The routes come; the addresses on lo stay.
  await using after = startAgent(["run", ...base, "--install-as=route"]);
  await after.waitForLine(/assuming address 10\.0\.100\.31/);
  assert.deepEqual(await kubeGwRoutes(w.ns), [
    "unreachable 10.0.100.30",
    "unreachable 10.0.100.31",
  ]);
  assert.deepEqual(await w.ns.hostAddresses(), ["10.0.100.30", "10.0.100.31"]);
  // Then address mode's drain takes the addresses off lo; the running agent's routes stay.
  const drain = await runKubeGw(["drain", NETWORKS, `--netns=${w.ns.name}`]);
  assert.equal(drain.code, 0, drain.stderr);
  assert.deepEqual(await w.ns.hostAddresses(), []);
  assert.deepEqual(await kubeGwRoutes(w.ns), [
    "unreachable 10.0.100.30",
    "unreachable 10.0.100.31",
  ]);
});

Deno.test("--install-as route with --address-lifetime exits with 2 and one line naming both", async () => {
  await using w = await world();
  const r = await runKubeGw(["run", ...w.routeArgs("--address-lifetime=90s")]);
  assert.equal(r.code, 2, r.stderr);
  assert.equal(
    r.stderr.trim(),
    "kube-gw: --address-lifetime cannot be used with --install-as route: a route has no lifetime",
  );
});

Deno.test("route mode: two agents with different selectors each warn that another program changes the routes", async () => {
  await using w = await world();
  w.api.create({ name: "a", labels: { team: "a" }, externalIPs: ["10.0.100.30"] });
  w.api.create({ name: "b", labels: { team: "b" }, externalIPs: ["10.0.100.40"] });
  const args = (team: string) => [
    "run",
    ...w.routeArgs(
      `--selector=team=${team}`,
      "--resync-interval=1s",
      "--metrics-address=off",
      "--announce=always",
    ),
  ];
  await using a = startAgent(args("a"));
  await using b = startAgent(args("b"));
  const warning = /WARN another program is changing the managed addresses/;
  for (const agent of [a, b]) await agent.waitForLine(warning, 30_000);
});
