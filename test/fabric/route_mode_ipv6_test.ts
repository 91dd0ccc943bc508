/**
 * Route mode for an IPv6 Service address, on a dual-stack fabric (see
 * test/support/fabric/fabric.ts, `ipv6: true`): IPv6 on every link and pod,
 * IPv6 unicast over the leaf's BGP sessions, kube-proxy's `ip6` table, and
 * the agents managing 2001:db8:100::/64 beside 10.0.100.0/24 with
 * `--install-as route`. Run twice: FRR on both gateways
 * (scripts/router/frr-gateway-route.conf), then BIRD 2 on gw2
 * (scripts/router/bird-gateway-route.conf) beside FRR on gw1. Each time the
 * /128 reaches the leaf with a next hop per gateway (their link-local
 * addresses, as FRR and BIRD send them), requests to [VIP]:80 reach the pods
 * over IPv6, each gateway reaches the Service itself (nat OUTPUT of the `ip6`
 * table), a client connecting to [VIP]:22, where each gateway listens on
 * [::]:22, gets no connection, and kube-proxy health 503 on gw1 (FRR) and a
 * drain of gw2 (FRR, then BIRD) withdraw that gateway's next hop without a
 * failed request.
 *
 * Each scenario prints `ROUTE_MODE {scenario} made=N failed=N`.
 */

import assert from "node:assert/strict";
import { writeKubeconfig } from "../support/procs/agent.ts";
import { endpointSlice } from "../support/fakes/endpoint_slices.ts";
import { BirdRouter } from "../support/fabric/bird.ts";
import { Fabric, FABRIC6, gatewayOf } from "../support/fabric/fabric.ts";
import { FrrRouter } from "../support/fabric/frr.ts";
import { FakeApiServer } from "../support/fakes/apiserver.ts";
import type { ServiceObject } from "../support/fabric/kube_proxy.ts";
import { ProbeClient, type ProbeResult } from "../support/fabric/probe_client.ts";
import {
  counted,
  drainRouteMode,
  hopsAre,
  requestsAround,
  startRouteModeGateways,
} from "../support/fabric/scenario.ts";

const VIP6 = FABRIC6.vips[0];
const PODS6 = [
  { address: FABRIC6.pods.pod1, nodeName: "gw1" },
  { address: FABRIC6.pods.pod2, nodeName: "gw2" },
];
/** A single-stack IPv6 Service with an IPv6 external IP, on the pods' IPv6 addresses. */
const SERVICE6 = {
  namespace: "default",
  name: "nginx6",
  labels: { name: "nginx" },
  type: "ClusterIP",
  clusterIP: "fd00:10:96::10",
  ipFamilies: ["IPv6"],
  ipFamilyPolicy: "SingleStack",
  externalIPs: [VIP6],
  ports: [{ name: "port1", port: 80, protocol: "TCP", targetPort: 80 }],
  selector: { name: "nginx" },
};

for (const gw2Runs of ["FRR", "BIRD"] as const) {
  Deno.test(`fabric, route mode, IPv6, ${gw2Runs} on gw2 and FRR on gw1: the /128 through both, the pods reached, the gateway's own port hidden, withdrawals without loss`, async (t) => {
    const bird = gw2Runs === "BIRD" ? "gw2" : undefined;
    await using fabric = await Fabric.start({ installAs: "route", bird, ipv6: true });
    const api = await FakeApiServer.start();
    try {
      await using kc = await writeKubeconfig(api, {});
      const agents = await startRouteModeGateways(fabric, kc.path);
      api.createObject("endpointslices", endpointSlice("nginx6", PODS6, { addressType: "IPv6" }));
      await fabric.programKubeProxy(api.create(SERVICE6) as unknown as ServiceObject);
      // The leaf's next hops for the gateways' IPv6 routes are their link-local addresses.
      const hop6 = { gw1: await fabric.uplinkHop6("gw1"), gw2: await fabric.uplinkHop6("gw2") };
      const BOTH6 = [hop6.gw1, hop6.gw2].sort();

      await t.step(
        "the /128 reaches the leaf as two ECMP next hops; requests reach the pods",
        async (s) => {
          await fabric.monitor.waitFor(
            (fib) => hopsAre(fib, `${VIP6}/128`, BOTH6),
            15_000,
            "the IPv6 Service address with a next hop per gateway",
          );
          assert.deepEqual(await fabric.leafNextHops(VIP6), BOTH6);
          for (const gw of ["gw1", "gw2"] as const) {
            const routes = await fabric.ip(
              gw,
              "-6",
              "route",
              "show",
              "table",
              "main",
              "proto",
              "200",
            );
            assert.match(routes, new RegExp(`^unreachable ${VIP6} `, "m"), `${gw} holds a route`);
            const lo = await fabric.ip(gw, "-json", "address", "show", "dev", "lo");
            assert.ok(!lo.includes(`"${VIP6}"`), `${gw} holds no address`);
          }
          const router = fabric.router("gw2");
          if (gw2Runs === "BIRD") {
            assert.ok(router instanceof BirdRouter, "gw2 runs BIRD");
            const learned = await router.birdc("show", "route", `${VIP6}/128`, "all");
            assert.match(learned, /kernel6/, "BIRD learned kube-gw's IPv6 route from the kernel");
          } else {
            assert.ok(router instanceof FrrRouter, "gw2 runs FRR");
          }
          const results: ProbeResult[] = [];
          for (let i = 0; i < 40; i++) results.push(await fabric.probe.get(VIP6, 80));
          await counted(s, `v6-${gw2Runs}-requests`, results, 40);
          const seen = results.map((r) => (r.body ?? "").trim().split(" ")[1]);
          assert.ok(seen.every((from) => from.includes(":")), "the pods answered over IPv6");
          const through = new Set(seen.map(gatewayOf));
          assert.deepEqual([...through].sort(), ["gw1", "gw2"], "both gateways carried requests");
        },
      );

      await t.step("each gateway itself reaches the Service (ip6 nat OUTPUT)", async (s) => {
        for (const gw of ["gw1", "gw2"] as const) {
          await using own = new ProbeClient(fabric.ns(gw), [`[${VIP6}]`], fabric.runDir);
          const results: ProbeResult[] = [];
          for (let i = 0; i < 5; i++) results.push(await own.get(VIP6, 80));
          await counted(s, `v6-${gw2Runs}-gateway-own-${gw}`, results, 5);
        }
      });

      await t.step("[VIP]:22: the gateways' listener on [::]:22 is not reached", async () => {
        const [seen] = await fabric.connect("client", [`[${VIP6}]:22`]);
        console.log(`ROUTE_MODE v6-${gw2Runs}-unserved-port route-mode: ${seen}`);
        assert.ok(!seen.startsWith("connected"), `the client reached a gateway's port 22: ${seen}`);
        // The listener is there: the gateway's own IPv6 address answers.
        const [own] = await fabric.connect("client", [`[${FABRIC6.gw1.uplink}]:22`]);
        assert.equal(own, "connected:gw1-listener");
      });

      await t.step(
        "gw1's kube-proxy health 503: FRR withdraws the /128, no request fails",
        async (s) => {
          const results = await requestsAround(
            fabric,
            async () => {
              fabric.kubeProxyHealth("gw1").set("unhealthy");
              await fabric.monitor.waitFor(
                (fib) => hopsAre(fib, `${VIP6}/128`, [hop6.gw2]),
                15_000,
                "the IPv6 Service address through gw2 only",
              );
            },
            10,
            VIP6,
          );
          await counted(s, `v6-${gw2Runs}-health-503`, results, 10);
          fabric.kubeProxyHealth("gw1").set("healthy");
          await fabric.monitor.waitFor(
            (fib) => hopsAre(fib, `${VIP6}/128`, BOTH6),
            15_000,
            "gw1 back",
          );
        },
      );

      await t.step(`drain on gw2: ${gw2Runs} withdraws the /128, no request fails`, async (s) => {
        const results = await requestsAround(
          fabric,
          async () => {
            await drainRouteMode(fabric, "gw2", agents.gw2);
            await fabric.monitor.waitFor(
              (fib) => hopsAre(fib, `${VIP6}/128`, [hop6.gw1]),
              15_000,
              "the IPv6 Service address through gw1 only",
            );
          },
          10,
          VIP6,
        );
        await counted(s, `v6-${gw2Runs}-drain`, results, 10);
        assert.equal(
          await fabric.ip("gw2", "-6", "route", "show", "table", "main", "proto", "200"),
          "",
        );
      });
      await agents.gw1.stop("SIGTERM");
    } finally {
      await api.close();
    }
  });
}
