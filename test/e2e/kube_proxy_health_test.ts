/**
 * The agent as a process, gated by a fake kube-proxy health endpoint (a tiny
 * server on 127.0.0.1 that answers 200, 503, `nodeEligible: false`, or is
 * not there at all): after a boot nothing is announced before the first 200;
 * three failed polls withdraw; `nodeEligible: false` withdraws at the next
 * poll; a 200 brings the address back after the hold-down.
 */
import assert from "node:assert/strict";
import { FakeApiServer } from "../support/fakes/apiserver.ts";
import { Netns } from "../support/procs/netns.ts";
import { freePort, startAgent, writeKubeconfig } from "../support/procs/agent.ts";
import { endpointSlice } from "../support/fakes/endpoint_slices.ts";
import { statusOf } from "../support/procs/status.ts";
import { waitFor } from "../support/wait.ts";

type Mode = "ok" | "stale" | "ineligible";

/** kube-proxy's /healthz as far as the agent can tell, switchable, and stoppable (refused). */
class FakeKubeProxy {
  mode: Mode = "stale";
  polls = 0;
  #server: Deno.HttpServer | undefined;
  constructor(readonly port: number) {}

  start(): void {
    this.#server = Deno.serve({ hostname: "127.0.0.1", port: this.port, onListen() {} }, () => {
      this.polls++;
      const body = JSON.stringify({
        lastUpdated: new Date().toISOString(),
        currentTime: new Date().toISOString(),
        nodeEligible: this.mode !== "ineligible",
      });
      return new Response(body, {
        status: this.mode === "ok" ? 200 : 503,
        headers: { "content-type": "application/json" },
      });
    });
  }

  async stop(): Promise<void> {
    await this.#server?.shutdown();
    this.#server = undefined;
  }

  /** Resolves once `n` more polls arrived. */
  async polled(n: number): Promise<void> {
    const target = this.polls + n;
    await waitFor(`${n} polls of the health endpoint`, () => this.polls >= target, 15_000, 20);
  }
}

Deno.test("kube-proxy's health gates the announcements: 200, 503, nodeEligible false, refused", async () => {
  await using ns = await Netns.create("kphealth");
  const api = await FakeApiServer.start();
  const proxy = new FakeKubeProxy(freePort());
  proxy.start();
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
      `--kube-proxy-health=http://127.0.0.1:${proxy.port}/healthz`,
      "--announce-delay=500ms",
    ]);
    const status = await statusOf(agent);
    const state = async () => JSON.parse((await status.get("/status")).body).addresses[0]?.state;

    // A boot (nothing on the interface) and kube-proxy stale: nothing goes out.
    await agent.waitForLine(/first list complete/);
    await proxy.polled(2);
    assert.equal(await state(), "kube_proxy_unhealthy");
    assert.deepEqual(await ns.hostAddresses(), []);

    // The first 200: announced (a new address needs no hold-down).
    proxy.mode = "ok";
    await agent.waitForLine(/assuming address 10\.0\.100\.30/);

    // Three 503s in a row withdraw; a 200 brings it back after the hold-down.
    let from = agent.lines.length;
    proxy.mode = "stale";
    await agent.waitForLine(/forfeiting address 10\.0\.100\.30/, 15_000, from);
    assert.deepEqual(await ns.hostAddresses(), []);
    from = agent.lines.length;
    proxy.mode = "ok";
    const back = performance.now();
    await agent.waitForLine(/assuming address 10\.0\.100\.30/, 15_000, from);
    assert.ok(performance.now() - back >= 500, "not back before the hold-down");

    // nodeEligible: false withdraws at the next poll.
    from = agent.lines.length;
    proxy.mode = "ineligible";
    await agent.waitForLine(/forfeiting address 10\.0\.100\.30/, 6_000, from);
    assert.match(
      JSON.parse((await status.get("/status")).body).health.reason,
      /nodeEligible: false/,
    );
    from = agent.lines.length;
    proxy.mode = "ok";
    await agent.waitForLine(/assuming address 10\.0\.100\.30/, 15_000, from);

    // kube-proxy gone (connection refused): three polls, then withdrawn.
    from = agent.lines.length;
    await proxy.stop();
    await agent.waitForLine(/forfeiting address 10\.0\.100\.30/, 15_000, from);
    assert.deepEqual(await ns.hostAddresses(), []);
    const m = await status.metrics();
    assert.equal(m.get('kubegw_addresses{state="kube_proxy_unhealthy"}'), 1);
  } finally {
    await proxy.stop();
    await api.close();
  }
});
