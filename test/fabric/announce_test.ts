/**
 * Announce only what can be delivered, on the real BGP fabric (see
 * test/support/fabric/fabric.ts): a Service whose endpoints go to zero leaves the
 * leaf's FIB from both gateways; a Local Service with its pod on gw1 only is
 * announced by gw1 only, and every client request to it succeeds; gw1's
 * kube-proxy health turning 503 takes gw1 out without a failed request.
 */

import assert from "node:assert/strict";
import { freePort, writeKubeconfig } from "../support/procs/agent.ts";
import { endpointSlice } from "../support/fakes/endpoint_slices.ts";
import { FABRIC, Fabric } from "../support/fabric/fabric.ts";
import { DEMO_SERVICE, FakeApiServer } from "../support/fakes/apiserver.ts";
import type { ServiceObject } from "../support/fabric/kube_proxy.ts";
import type { ProbeResult } from "../support/fabric/probe_client.ts";
import type { FibView } from "../support/fabric/route_monitor.ts";
import { describeResult as describe, RequestLoop } from "../support/fabric/request_loop.ts";

const BOUND_MS = 5000;
const BOTH = [FABRIC.gw1.uplink, FABRIC.gw2.uplink];
const PODS = [
  { address: FABRIC.pods.pod1, nodeName: "gw1" },
  { address: FABRIC.pods.pod2, nodeName: "gw2" },
];

function hopsAre(fib: FibView, dst: string, want: readonly string[]): boolean {
  const got = fib.get(dst);
  return got !== undefined && got.length === want.length && want.every((h) => got.includes(h));
}

/** A kube-proxy health endpoint on 127.0.0.1 (the agents run in the host's namespace). */
function healthServer(port: number, status: { code: number }): Deno.HttpServer {
  return Deno.serve(
    { hostname: "127.0.0.1", port, onListen() {} },
    () => new Response(JSON.stringify({ nodeEligible: true }), { status: status.code }),
  );
}

Deno.test("fabric: endpoints and kube-proxy health decide which gateways announce", async (t) => {
  await using fabric = await Fabric.start();
  const api = await FakeApiServer.start();
  const ports = { gw1: freePort(), gw2: freePort() };
  const health = { gw1: { code: 200 }, gw2: { code: 200 } };
  const servers = [healthServer(ports.gw1, health.gw1), healthServer(ports.gw2, health.gw2)];
  try {
    await using kc = await writeKubeconfig(api, {});
    const extra = (gw: "gw1" | "gw2") => [
      `--node-name=${gw}`,
      "--announce-delay=500ms",
      // Damping off: the test chains outages to see the gate and the hold-down act on each;
      // damping has its own tests (test/unit/agent/announce_damping_test.ts).
      "--announce-damping=0",
      `--kube-proxy-health=http://127.0.0.1:${ports[gw]}/healthz`,
    ];
    const agents = {
      gw1: await fabric.startAgent("gw1", kc.path, extra("gw1")),
      gw2: await fabric.startAgent("gw2", kc.path, extra("gw2")),
    };
    await Promise.all(
      Object.values(agents).map((a) => a.waitForLine(/first list complete/, 30_000)),
    );

    /** The demo Service with ready pods, programmed in kube-proxy, announced by both gateways. */
    const announceDemo = async () => {
      api.createObject("endpointslices", endpointSlice("nginx", PODS));
      const svc = api.create(DEMO_SERVICE) as unknown as ServiceObject;
      await fabric.programKubeProxy(svc);
      await fabric.monitor.waitFor(
        (fib) => hopsAre(fib, "10.0.100.30/32", BOTH),
        BOUND_MS,
        "the Service address with a next hop per gateway",
      );
    };

    await t.step(
      "endpoints to zero: both gateways withdraw and the leaf's route goes",
      async () => {
        await announceDemo();
        api.replaceObject("endpointslices", endpointSlice("nginx", []));
        await fabric.monitor.waitFor(
          (fib) => !fib.has("10.0.100.30/32") && !fib.has("10.0.100.31/32"),
          BOUND_MS,
          "no route for the Service addresses",
        );
        assert.deepEqual(await fabric.leafNextHops("10.0.100.30"), []);
        api.delete(DEMO_SERVICE.name);
        api.deleteObject("endpointslices", "nginx-abcde");
      },
    );

    await t.step(
      "a Local Service with its pod on gw1: only gw1 announces, no request fails",
      async (s) => {
        api.createObject(
          "endpointslices",
          endpointSlice("local", [{ address: FABRIC.pods.pod1, nodeName: "gw1" }]),
        );
        const svc = api.create({
          ...DEMO_SERVICE,
          name: "local",
          externalIPs: ["10.0.100.30"],
          externalTrafficPolicy: "Local",
        }) as unknown as ServiceObject;
        await fabric.programKubeProxy(svc);
        await fabric.monitor.waitFor(
          (fib) => hopsAre(fib, "10.0.100.30/32", [FABRIC.gw1.uplink]),
          BOUND_MS,
          "the Local Service address through gw1 only",
        );
        // Local keeps the client's address (the pod cannot name the gateway): count SYNs.
        const before = { gw1: await fabric.synCount("gw1"), gw2: await fabric.synCount("gw2") };
        const results: ProbeResult[] = [];
        for (let i = 0; i < 30; i++) results.push(await fabric.probe.get("10.0.100.30", 80));
        const failed = results.filter((r) => !r.ok);
        const through = {
          gw1: (await fabric.synCount("gw1")) - before.gw1,
          gw2: (await fabric.synCount("gw2")) - before.gw2,
        };
        const summary = `${results.length} requests, ${failed.length} failed, ` +
          `SYNs at gw1 ${through.gw1}, at gw2 ${through.gw2}`;
        console.log(summary);
        await s.step(summary, () => {
          assert.deepEqual(failed.map(describe), []);
          assert.deepEqual(through, { gw1: results.length, gw2: 0 });
        });
        assert.deepEqual(await fabric.leafNextHops("10.0.100.30"), [FABRIC.gw1.uplink]);
        const gw2Lo = await fabric.ip("gw2", "-json", "address", "show", "dev", "lo");
        assert.ok(!gw2Lo.includes('"10.0.100.30"'), "gw2 holds no address of the Local Service");
        api.delete("local");
        api.deleteObject("endpointslices", "local-abcde");
      },
    );

    await t.step(
      "gw1's kube-proxy health turns 503: gw1 withdraws, no request fails",
      async (s) => {
        await announceDemo();
        const loop = new RequestLoop(fabric.probe, { targets: [["10.0.100.30", 80]] });
        try {
          health.gw1.code = 503;
          // Three failed polls, 2 s apart, then BGP withdraws.
          await fabric.monitor.waitFor(
            (fib) => hopsAre(fib, "10.0.100.30/32", [FABRIC.gw2.uplink]),
            15_000,
            "the Service address through gw2 only",
          );
          await loop.more(10);
        } finally {
          await loop.stop();
        }
        const results = loop.results.map((x) => x.r);
        const failed = results.filter((r) => !r.ok);
        const summary = `${results.length} requests, ${failed.length} failed`;
        console.log(summary);
        await s.step(summary, () => {
          assert.ok(results.length >= 10, "requests were made throughout");
          assert.deepEqual(failed.map(describe), []);
        });
      },
    );
  } finally {
    for (const server of servers) await server.shutdown();
    await api.close();
  }
});
