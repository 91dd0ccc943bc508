/**
 * The agent as a process against the fake API server with EndpointSlices:
 * what it announces follows the endpoints kube-proxy can use.
 */
import assert from "node:assert/strict";
import { runKubeGw, startAgent } from "../support/procs/agent.ts";
import { agentWorld } from "../support/procs/agent_world.ts";
import { endpointSlice } from "../support/fakes/endpoint_slices.ts";
import { statusOf } from "../support/procs/status.ts";

const DELAY_MS = 1000;

async function world(name: string) {
  const w = await agentWorld(name);
  return {
    ...w,
    args: (...extra: string[]) =>
      w.args(
        "--network=10.0.100.0/24",
        "--kube-proxy-health=off",
        `--announce-delay=${DELAY_MS}ms`,
        ...extra,
      ),
  };
}

Deno.test("endpoints scaled to zero withdraw the address at once; back, it returns after the hold-down", async () => {
  await using w = await world("scale");
  w.api.create({ name: "web", externalIPs: ["10.0.100.30"] });
  w.api.createObject("endpointslices", endpointSlice("web", [{ address: "10.244.1.1" }]));
  await using agent = startAgent(["run", ...w.args("--metrics-address=127.0.0.1:0")]);
  await agent.waitForLine(/assuming address 10\.0\.100\.30/);
  assert.deepEqual(await w.ns.hostAddresses(), ["10.0.100.30"]);

  w.api.replaceObject("endpointslices", endpointSlice("web", []));
  await agent.waitForLine(/forfeiting address 10\.0\.100\.30/);
  assert.deepEqual(await w.ns.hostAddresses(), []);
  const status = await statusOf(agent);
  const report = JSON.parse((await status.get("/status")).body);
  assert.equal(report.addresses[0].state, "no_usable_endpoint");
  assert.match(report.addresses[0].line, /withheld: no usable endpoint/);
  const m = await status.metrics();
  assert.equal(m.get('kubegw_addresses{state="no_usable_endpoint"}'), 1);
  assert.equal(m.get('kubegw_addresses{state="announced"}'), 0);

  const back = performance.now();
  const from = agent.lines.length;
  w.api.replaceObject("endpointslices", endpointSlice("web", [{ address: "10.244.1.2" }]));
  await agent.waitForLine(/assuming address 10\.0\.100\.30/, 10_000, from);
  const waited = performance.now() - back;
  assert.ok(waited >= DELAY_MS, `came back after ${Math.round(waited)}ms, before the hold-down`);
  assert.deepEqual(await w.ns.hostAddresses(), ["10.0.100.30"]);
});

Deno.test("a Local Service is announced only once it has an endpoint on this node", async () => {
  await using w = await world("local");
  w.api.create({ name: "local", externalIPs: ["10.0.100.30"], externalTrafficPolicy: "Local" });
  w.api.createObject(
    "endpointslices",
    endpointSlice("local", [{ address: "10.244.1.1", nodeName: "worker1" }]),
  );
  await using agent = startAgent([
    "run",
    ...w.args("--metrics-address=127.0.0.1:0", "--node-name=gw1"),
  ]);
  const status = await statusOf(agent);
  // A Cluster Service created after it is announced: the agent has seen both.
  w.api.create({ name: "marker", externalIPs: ["10.0.100.31"] });
  w.api.createObject("endpointslices", endpointSlice("marker", [{ address: "10.244.1.9" }]));
  await agent.waitForLine(/assuming address 10\.0\.100\.31/);
  assert.deepEqual(await w.ns.hostAddresses(), ["10.0.100.31"]);
  const report = JSON.parse((await status.get("/status")).body);
  assert.deepEqual(
    report.addresses.map((a: { address: string; state: string }) => [a.address, a.state]),
    [["10.0.100.30", "no_endpoint_on_node"], ["10.0.100.31", "announced"]],
  );

  w.api.replaceObject(
    "endpointslices",
    endpointSlice("local", [{ address: "10.244.1.1", nodeName: "gw1" }]),
  );
  await agent.waitForLine(/assuming address 10\.0\.100\.30/);
  assert.deepEqual(await w.ns.hostAddresses(), ["10.0.100.30", "10.0.100.31"]);
});

Deno.test("kube-gw plan shows each address's source, Services and state", async () => {
  await using w = await world("plan");
  w.api.create({ name: "ready", externalIPs: ["10.0.100.30"] });
  w.api.createObject("endpointslices", endpointSlice("ready", [{ address: "10.244.1.1" }]));
  w.api.create({ name: "empty", externalIPs: ["10.0.100.31"] });
  w.api.create({
    name: "lb",
    type: "LoadBalancer",
    loadBalancerClass: "kube-gw.io/anycast",
    status: { loadBalancer: { ingress: [{ ip: "10.0.100.40", ipMode: "VIP" }] } },
  });
  w.api.createObject("endpointslices", endpointSlice("lb", [{ address: "10.244.1.3" }]));
  const r = await runKubeGw(["plan", ...w.args()]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.match(lines[0], /^ACTION +ADDRESS +SOURCE +STATE$/);
  assert.match(
    lines[1],
    /^add +10\.0\.100\.30 +externalIP +announced \["default\/ready" Cluster 1 IPv4 endpoints ok\]$/,
  );
  assert.match(
    lines[2],
    /^- +10\.0\.100\.31 +externalIP +withheld: no usable endpoint \["default\/empty" Cluster 0 IPv4 endpoints no_usable_endpoint\]$/,
  );
  assert.match(lines[3], /^add +10\.0\.100\.40 +LoadBalancer +announced \["default\/lb"/);
  assert.equal(lines[4], "2 to add, 0 to remove, 1 withheld");
  assert.deepEqual(await w.ns.hostAddresses(), [], "plan changes nothing");
});
