/**
 * Route mode on the real BGP fabric (see test/support/fabric/fabric.ts): the
 * gateways' FRR runs scripts/router/frr-gateway-route.conf (`redistribute
 * kernel`), both agents run with `--install-as route`. A Service reaches the
 * leaf with a next hop per gateway and its requests reach the pods; the
 * gateway itself reaches it; a client connecting to the Service address on a
 * port the Service does not serve, where each gateway listens on every
 * address, gets no connection (and does in address mode: the second test);
 * endpoints to zero, kube-proxy health 503 and drain withdraw the route from
 * the leaf, the last two without a failed request.
 *
 * The third test runs BIRD 2 on gw2 (scripts/router/bird-gateway-route.conf)
 * beside FRR on gw1: the Service reaches the leaf through both. The same for
 * an IPv6 Service address on a dual-stack fabric: route_mode_ipv6_test.ts.
 *
 * Each scenario prints `ROUTE_MODE {scenario} made=N failed=N`.
 */

import assert from "node:assert/strict";
import { writeKubeconfig } from "../support/procs/agent.ts";
import { endpointSlice } from "../support/fakes/endpoint_slices.ts";
import { BirdRouter } from "../support/fabric/bird.ts";
import { FABRIC, Fabric, gatewayOf } from "../support/fabric/fabric.ts";
import { DEMO_SERVICE, FakeApiServer } from "../support/fakes/apiserver.ts";
import type { ServiceObject } from "../support/fabric/kube_proxy.ts";
import { ProbeClient, type ProbeResult } from "../support/fabric/probe_client.ts";
import {
  counted,
  drainRouteMode,
  hopsAre,
  requestsAround,
  startRouteModeGateways,
} from "../support/fabric/scenario.ts";

const BOTH = [FABRIC.gw1.uplink, FABRIC.gw2.uplink];
const BOUND_MS = 5000;
const PODS = [
  { address: FABRIC.pods.pod1, nodeName: "gw1" },
  { address: FABRIC.pods.pod2, nodeName: "gw2" },
];

Deno.test("fabric, route mode: ECMP, the pods reached, the gateway's own port hidden, withdrawals without loss", async (t) => {
  await using fabric = await Fabric.start({ installAs: "route" });
  const api = await FakeApiServer.start();
  try {
    await using kc = await writeKubeconfig(api, {});
    const agents = await startRouteModeGateways(fabric, kc.path);
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
      "the Service reaches the leaf as two ECMP next hops; requests reach the pods",
      async (s) => {
        await announceDemo();
        assert.deepEqual(await fabric.leafNextHops("10.0.100.30"), BOTH);
        for (const gw of ["gw1", "gw2"] as const) {
          const routes = await fabric.ip(gw, "route", "show", "table", "main", "proto", "200");
          assert.match(routes, /^unreachable 10\.0\.100\.30 /m, `${gw} holds a route`);
          const lo = await fabric.ip(gw, "-json", "address", "show", "dev", "lo");
          assert.ok(!lo.includes('"10.0.100.30"'), `${gw} holds no address`);
        }
        const results: ProbeResult[] = [];
        for (let i = 0; i < 40; i++) results.push(await fabric.probe.get("10.0.100.30", 80));
        await counted(s, "requests", results, 40);
        const through = new Set(results.map((r) => gatewayOf((r.body ?? "").trim().split(" ")[1])));
        assert.deepEqual([...through].sort(), ["gw1", "gw2"], "both gateways carried requests");
      },
    );

    await t.step("the gateway itself reaches the Service (nat OUTPUT)", async (s) => {
      await using own = new ProbeClient(fabric.ns("gw1"), ["10.0.100.30"], fabric.runDir);
      const results: ProbeResult[] = [];
      for (let i = 0; i < 5; i++) results.push(await own.get("10.0.100.30", 80));
      await counted(s, "gateway-own", results, 5);
    });

    await t.step(
      "a port the Service does not serve: the gateways' listener is not reached",
      async () => {
        const [seen] = await fabric.connect("client", ["10.0.100.30:22"]);
        console.log(`ROUTE_MODE unserved-port route-mode: ${seen}`);
        assert.ok(!seen.startsWith("connected"), `the client reached a gateway's port 22: ${seen}`);
        // The listener is there: the gateway's own address answers.
        const [own] = await fabric.connect("client", [`${FABRIC.gw1.loopback}:22`]);
        assert.equal(own, "connected:gw1-listener");
      },
    );

    await t.step("endpoints to zero: both gateways withdraw the route", async () => {
      api.replaceObject("endpointslices", endpointSlice("nginx", []));
      await fabric.monitor.waitFor(
        (fib) => !fib.has("10.0.100.30/32") && !fib.has("10.0.100.31/32"),
        BOUND_MS,
        "no route for the Service addresses",
      );
      assert.deepEqual(await fabric.leafNextHops("10.0.100.30"), []);
      api.replaceObject("endpointslices", endpointSlice("nginx", PODS));
      await fabric.monitor.waitFor(
        (fib) => hopsAre(fib, "10.0.100.30/32", BOTH),
        BOUND_MS,
        "the route back with both gateways",
      );
    });

    await t.step("gw1's kube-proxy health 503: gw1 withdraws, no request fails", async (s) => {
      const results = await requestsAround(fabric, async () => {
        fabric.kubeProxyHealth("gw1").set("unhealthy");
        await fabric.monitor.waitFor(
          (fib) => hopsAre(fib, "10.0.100.30/32", [FABRIC.gw2.uplink]),
          15_000,
          "the Service address through gw2 only",
        );
      });
      await counted(s, "health-503", results, 10);
      fabric.kubeProxyHealth("gw1").set("healthy");
      await fabric.monitor.waitFor(
        (fib) => hopsAre(fib, "10.0.100.30/32", BOTH),
        15_000,
        "gw1 back",
      );
    });

    await t.step("drain on gw1: the leaf drops gw1, no request fails", async (s) => {
      const results = await requestsAround(fabric, async () => {
        await drainRouteMode(fabric, "gw1", agents.gw1);
        await fabric.monitor.waitFor(
          (fib) => hopsAre(fib, "10.0.100.30/32", [FABRIC.gw2.uplink]),
          BOUND_MS,
          "the Service address through gw2 only",
        );
      });
      await counted(s, "drain", results, 10);
      assert.equal(await fabric.ip("gw1", "route", "show", "table", "main", "proto", "200"), "");
    });
    await agents.gw2.stop("SIGTERM");
  } finally {
    await api.close();
  }
});

Deno.test("fabric, address mode: a client reaches the gateways' own port 22 on the Service address", async () => {
  await using fabric = await Fabric.start();
  const api = await FakeApiServer.start();
  try {
    await using kc = await writeKubeconfig(api, {});
    const agents = [
      await fabric.startAgent("gw1", kc.path),
      await fabric.startAgent("gw2", kc.path),
    ];
    for (const gw of ["gw1", "gw2"] as const) await fabric.listen(gw, 22);
    api.createObject("endpointslices", endpointSlice("nginx", PODS));
    await fabric.programKubeProxy(api.create(DEMO_SERVICE) as unknown as ServiceObject);
    await fabric.monitor.waitFor(
      (fib) => hopsAre(fib, "10.0.100.30/32", BOTH),
      BOUND_MS,
      "the Service address with a next hop per gateway",
    );
    const [seen] = await fabric.connect("client", ["10.0.100.30:22"]);
    console.log(`ROUTE_MODE unserved-port address-mode: ${seen}`);
    assert.match(seen, /^connected:gw[12]-listener$/, "address mode exposes the gateway's port");
    for (const a of agents) await a.stop("SIGTERM");
  } finally {
    await api.close();
  }
});

Deno.test("fabric, route mode with BIRD on gw2 and FRR on gw1: two ECMP next hops, no failed request", async (t) => {
  await using fabric = await Fabric.start({ installAs: "route", bird: "gw2" });
  const api = await FakeApiServer.start();
  try {
    await using kc = await writeKubeconfig(api, {});
    const args = ["--install-as=route", "--announce-delay=500ms"];
    const agents = [
      await fabric.startAgent("gw1", kc.path, args),
      await fabric.startAgent("gw2", kc.path, args),
    ];
    await Promise.all(agents.map((a) => a.waitForLine(/first list complete/, 30_000)));
    api.createObject("endpointslices", endpointSlice("nginx", PODS));
    await fabric.programKubeProxy(api.create(DEMO_SERVICE) as unknown as ServiceObject);

    await t.step("the leaf has a next hop through FRR's gw1 and BIRD's gw2", async (s) => {
      await fabric.monitor.waitFor(
        (fib) => hopsAre(fib, "10.0.100.30/32", BOTH),
        15_000,
        "the Service address with a next hop per gateway",
      );
      assert.deepEqual(await fabric.leafNextHops("10.0.100.30"), BOTH);
      const bird = fabric.router("gw2");
      assert.ok(bird instanceof BirdRouter, "gw2 runs BIRD");
      const learned = await bird.birdc("show", "route", "10.0.100.30/32", "all");
      assert.match(learned, /kernel4/, "BIRD learned kube-gw's route from the kernel");
      const results: ProbeResult[] = [];
      for (let i = 0; i < 40; i++) results.push(await fabric.probe.get("10.0.100.30", 80));
      await counted(s, "bird-frr-requests", results, 40);
      const through = new Set(results.map((r) => gatewayOf((r.body ?? "").trim().split(" ")[1])));
      assert.deepEqual([...through].sort(), ["gw1", "gw2"], "both gateways carried requests");
    });

    await t.step("gw2's kube-proxy health 503: BIRD withdraws, no request fails", async (s) => {
      const results = await requestsAround(fabric, async () => {
        fabric.kubeProxyHealth("gw2").set("unhealthy");
        await fabric.monitor.waitFor(
          (fib) => hopsAre(fib, "10.0.100.30/32", [FABRIC.gw1.uplink]),
          15_000,
          "the Service address through gw1 only",
        );
      });
      await counted(s, "bird-health-503", results, 10);
      fabric.kubeProxyHealth("gw2").set("healthy");
      await fabric.monitor.waitFor(
        (fib) => hopsAre(fib, "10.0.100.30/32", BOTH),
        15_000,
        "gw2 back",
      );
    });
    for (const a of agents) await a.stop("SIGTERM");
  } finally {
    await api.close();
  }
});
