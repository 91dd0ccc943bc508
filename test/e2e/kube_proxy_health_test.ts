/**
 * The agent as a process, gated by a fake kube-proxy health endpoint (a tiny
 * server on 127.0.0.1 that answers 200, 503, `nodeEligible: false`, or is
 * not there at all): after a boot nothing is announced before the first 200;
 * three failed polls withdraw; `nodeEligible: false` withdraws at the next
 * poll; a 200 brings the address back after the hold-down.
 */
import assert from "node:assert/strict";
import { FakeApiServer } from "../support/fakes/apiserver.ts";
import { FakeKubeProxyHealth } from "../support/fakes/kube_proxy_health.ts";
import { Netns } from "../support/procs/netns.ts";
import { startAgent, writeKubeconfig } from "../support/procs/agent.ts";
import { endpointSlice } from "../support/fakes/endpoint_slices.ts";
import { statusOf } from "../support/procs/status.ts";

Deno.test("kube-proxy's health gates the announcements: 200, 503, nodeEligible false, refused", async () => {
  await using ns = await Netns.create("kphealth");
  const api = await FakeApiServer.start();
  // Counts the agent's polls by the answer given: the test waits for polls, not for time.
  await using proxy = FakeKubeProxyHealth.start();
  proxy.set("unhealthy");
  try {
    await using kc = await writeKubeconfig(api, {});
    api.create({ name: "web", externalIPs: ["10.0.100.30"] });
    api.createObject("endpointslices", endpointSlice("web", [{ address: "10.244.1.1" }]));
    await using agent = startAgent([
      "run",
      "--network=10.0.100.0/24",
      `--netns=${ns.name}`,
      `--kubeconfig=${kc.path}`,
      "--metrics-address=127.0.0.1:0",
      `--kube-proxy-health=${proxy.url}`,
      "--announce-delay=500ms",
      // Damping off: the test chains outages to see the gate and the hold-down act on each;
      // damping has its own tests (test/unit/agent/announce_damping_test.ts).
      "--announce-damping=0",
    ]);
    const status = await statusOf(agent);
    const state = async () => JSON.parse((await status.get("/status")).body).addresses[0]?.state;

    // A boot (nothing on the interface) and kube-proxy stale: nothing goes out.
    await agent.waitForLine(/first list complete/);
    // The second poll arrives after the agent has taken in the first answer.
    await proxy.waitPolls("unhealthy", 2, 15_000);
    assert.equal(await state(), "kube_proxy_unhealthy");
    assert.deepEqual(await ns.hostAddresses(), []);

    // The first 200: announced (a new address needs no hold-down).
    proxy.set("healthy");
    await agent.waitForLine(/assuming address 10\.0\.100\.30/);

    // Three 503s in a row withdraw; a 200 brings it back after the hold-down.
    let from = agent.lines.length;
    let polls = proxy.polls.unhealthy;
    proxy.set("unhealthy");
    await agent.waitForLine(/forfeiting address 10\.0\.100\.30/, 15_000, from);
    assert.ok(proxy.polls.unhealthy - polls >= 3, `${proxy.polls.unhealthy - polls} failed polls`);
    assert.deepEqual(await ns.hostAddresses(), []);
    from = agent.lines.length;
    proxy.set("healthy");
    const back = performance.now();
    await agent.waitForLine(/assuming address 10\.0\.100\.30/, 15_000, from);
    assert.ok(performance.now() - back >= 500, "not back before the hold-down");

    // nodeEligible: false withdraws at the next poll, not after three.
    from = agent.lines.length;
    polls = proxy.polls.ineligible;
    proxy.set("ineligible");
    await agent.waitForLine(/forfeiting address 10\.0\.100\.30/, 15_000, from);
    assert.ok(proxy.polls.ineligible - polls <= 2, `${proxy.polls.ineligible - polls} polls`);
    assert.match(
      JSON.parse((await status.get("/status")).body).health.reason,
      /nodeEligible: false/,
    );
    from = agent.lines.length;
    proxy.set("healthy");
    await agent.waitForLine(/assuming address 10\.0\.100\.30/, 15_000, from);

    // kube-proxy gone (connection refused): three polls, then withdrawn.
    from = agent.lines.length;
    await proxy.close();
    await agent.waitForLine(/forfeiting address 10\.0\.100\.30/, 15_000, from);
    assert.deepEqual(await ns.hostAddresses(), []);
    const m = await status.metrics();
    assert.equal(m.get('kubegw_addresses{state="kube_proxy_unhealthy"}'), 1);
  } finally {
    await api.close();
  }
});
