/**
 * Two agents on one interface: with different `--selector`
 * on the same namespace they remove each other's addresses at every resync;
 * each detects it and warns once, naming the addresses, and says so on
 * `/readyz` and in `kubegw_interface_conflicts_total`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { FakeApiServer } from "../support/fakes/apiserver.ts";
import { Netns } from "../support/procs/netns.ts";
import { startAgent, writeKubeconfig } from "../support/procs/agent.ts";
import { statusOf } from "../support/procs/status.ts";

Deno.test("two agents with different selectors on one interface each warn, naming the addresses", async () => {
  await using ns = await Netns.create("fight");
  await using api = await FakeApiServer.start();
  await using kc = await writeKubeconfig(api, {});
  api.create({ name: "a", labels: { team: "a" }, externalIPs: ["10.0.100.30"] });
  api.create({ name: "b", labels: { team: "b" }, externalIPs: ["10.0.100.40"] });
  const args = (team: string, metrics: string) => [
    "run",
    "--network=10.0.100.0/24",
    `--netns=${ns.name}`,
    `--kubeconfig=${kc.path}`,
    `--selector=team=${team}`,
    "--resync-interval=1s",
    `--metrics-address=${metrics}`,
    // Not about the announce gate: every desired address goes out, and there is no kube-proxy here.
    "--announce=always",
    "--kube-proxy-health=off",
  ];
  await using a = startAgent(args("a", "127.0.0.1:0"));
  await using b = startAgent(args("b", "off"));
  const warning = /WARN another program is changing the managed addresses on the interface/;
  const named = new Set<string>();
  for (const agent of [a, b]) {
    const line = await agent.waitForLine(warning, 30_000);
    // Each names what it saw change, with how often: its own address vanishing, the other's
    // coming back (which side reaches the threshold first depends on the timing of the resyncs).
    assert.match(line, /(vanished between reads|keep coming back): 10\.0\.100\.(30|40) \(\d+×\)/);
    assert.match(line, /One interface has one agent\.$/);
    for (const m of line.matchAll(/10\.0\.100\.(30|40) \(\d+×\)/g)) named.add(m[1]);
  }
  assert.deepEqual([...named].sort(), ["30", "40"], "both addresses are named");
  const status = await statusOf(a);
  const ready = await status.get("/readyz");
  assert.deepEqual([ready.status, ready.body], [
    503,
    "another program keeps changing the managed addresses (see the warning in the log)\n",
  ]);
  const m = await status.metrics();
  assert.equal(m.get("kubegw_interface_conflicts_total"), 1);
  assert.equal(m.get("kubegw_interface_conflict"), 1);
  // Once per episode, not once per resync.
  assert.equal(a.lines.filter((l) => warning.test(l)).length, 1);
});
