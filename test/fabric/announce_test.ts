/**
 * Announce only what can be delivered, on the real BGP fabric (see
 * test/support/fabric.ts): a Service whose endpoints go to zero leaves the
 * leaf's FIB from both gateways; a Local Service with its pod on gw1 only is
 * announced by gw1 only, and every client request to it succeeds.
 */

import assert from "node:assert/strict";
import { writeKubeconfig } from "../support/agent.ts";
import { endpointSlice } from "../support/endpoint_slices.ts";
import { FABRIC, Fabric } from "../support/fabric.ts";
import { DEMO_SERVICE, FakeApiServer } from "../support/fake_apiserver.ts";
import type { ServiceObject } from "../support/kube_proxy.ts";
import type { ProbeResult } from "../support/probe_client.ts";
import type { FibView } from "../support/route_monitor.ts";

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

function describe(r: ProbeResult): string {
  return r.ok ? `ok ${r.body?.trim()}` : `FAILED ${r.error ?? `status ${r.status}`}`;
}

Deno.test("fabric: endpoints decide which gateways announce", async (t) => {
  await using fabric = await Fabric.start();
  const api = await FakeApiServer.start();
  try {
    await using kc = await writeKubeconfig(api, {});
    const extra = (gw: string) => [
      `--node-name=${gw}`,
      "--announce-delay=500ms",
      // The kube-proxy stand-in has no health endpoint.
      "--kube-proxy-health=off",
    ];
    const agents = {
      gw1: await fabric.startAgent("gw1", kc.path, extra("gw1")),
      gw2: await fabric.startAgent("gw2", kc.path, extra("gw2")),
    };
    await Promise.all(
      Object.values(agents).map((a) => a.waitForLine(/first list complete/, 30_000)),
    );

    await t.step(
      "endpoints to zero: both gateways withdraw and the leaf's route goes",
      async () => {
        api.createObject("endpointslices", endpointSlice("nginx", PODS));
        const svc = api.create(DEMO_SERVICE) as unknown as ServiceObject;
        await fabric.programKubeProxy(svc);
        await fabric.monitor.waitFor(
          (fib) => hopsAre(fib, "10.0.100.30/32", BOTH),
          BOUND_MS,
          "the Service address with a next hop per gateway",
        );
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
      },
    );
  } finally {
    await api.close();
  }
});
