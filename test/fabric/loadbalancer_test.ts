/**
 * LoadBalancer Services on the BGP test fabric (see test/support/fabric/fabric.ts),
 * with `kube-gw controller` allocating from a pool and both gateways' agents
 * announcing only what they can deliver:
 *
 * 1. a LoadBalancer Service of class kube-gw.io/anycast gets an address from
 *    the pool, both gateways announce it, the leaf installs it with two next
 *    hops, and the client's requests spread over both gateways and all succeed;
 * 2. (a) its endpoints go to zero: both gateways withdraw and the route leaves
 *    the leaf; endpoints back: the route returns after the hold-down;
 *    (b) a Local Service with its pod on gw1 only is announced by gw1 alone,
 *    and every request succeeds, with the client's address kept;
 *    (c) gw1's kube-proxy health turns 503: gw1 withdraws and no request fails
 *    while the leaf moves to gw2; 200 again: gw1 comes back after the hold-down;
 *    `nodeEligible: false` withdraws gw1 at the first poll, again without a
 *    failed request.
 *
 * Prints the counts of client requests made and failed in each scenario and the
 * times to the leaf's FIB in one `FABRIC_TIMING {json}` line, and puts them in
 * step names (Deno's TAP reporter drops console output).
 */

import assert from "node:assert/strict";
import { freePort, type LoggedProcess, writeKubeconfig } from "../support/procs/agent.ts";
import { endpointSlice } from "../support/fakes/endpoint_slices.ts";
import { FABRIC, Fabric, type GatewayName, gatewayOf } from "../support/fabric/fabric.ts";
import { FakeApiServer } from "../support/fakes/apiserver.ts";
import type { ServiceObject } from "../support/fabric/kube_proxy.ts";
import type { ProbeResult } from "../support/fabric/probe_client.ts";
import type { FibView } from "../support/fabric/route_monitor.ts";
import { describeResult as describe, RequestLoop } from "../support/fabric/request_loop.ts";
import { waitFor } from "../support/wait.ts";
import { waitReadyz } from "../support/procs/status.ts";

const CLASS = "kube-gw.io/anycast";
const BOTH = [FABRIC.gw1.uplink, FABRIC.gw2.uplink];
const ONLY_GW1 = [FABRIC.gw1.uplink];
const ONLY_GW2 = [FABRIC.gw2.uplink];
/** The agents' default hold-down (`--announce-delay`). */
const HOLD_DOWN_MS = 2000;
/** Bound on a change reaching the leaf's FIB, beyond what the agent waits on purpose. */
const BOUND_MS = 3000;
/** Three failed polls 2 s apart close the gate: up to 3 intervals, plus the bound. */
const HEALTH_BOUND_MS = 3 * 2000 + 1000 + BOUND_MS;
const HTTP = [{ name: "http", port: 80, protocol: "TCP", targetPort: 80 }];

function hopsAre(fib: FibView, dst: string, want: readonly string[]): boolean {
  const got = fib.get(dst);
  return got !== undefined && got.length === want.length && want.every((h) => got.includes(h));
}

/** The pod that answered and the address it saw the request come from. */
function answer(r: ProbeResult): { pod: string; from: string; gw: GatewayName | undefined } {
  const [pod, from] = (r.body ?? "").trim().split(" ");
  return { pod, from, gw: gatewayOf(from) };
}

/** The ingress addresses in a Service's status. */
function ingressOf(api: FakeApiServer, name: string): string[] {
  const svc = api.get("services", name) as ServiceObject | undefined;
  return (svc?.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? "");
}

/** One address's entry in an agent's `/status`. */
interface AddressState {
  readonly address: string;
  readonly state: string;
}

async function agentStatus(port: number): Promise<AddressState[]> {
  const res = await fetch(`http://127.0.0.1:${port}/status`);
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new Error(`/status on ${port}: HTTP ${res.status}`);
  }
  return ((await res.json()) as { addresses: AddressState[] }).addresses;
}

/** No request of `loop` failed, and every one started after `at` was answered by gw2. */
function assertNoFailureThenGw2(loop: RequestLoop, at: number): void {
  assert.deepEqual(loop.failed, []);
  assert.deepEqual(
    loop.results.filter((x) => x.started > at && answer(x.r).gw !== "gw2")
      .map((x) => describe(x.r)),
    [],
  );
}

Deno.test("fabric: LoadBalancer Services from the controller's pool, announced only while they can be delivered", async (t) => {
  await using fabric = await Fabric.start();
  const api = await FakeApiServer.start();
  const timing: Record<string, number> = {};
  try {
    await using kc = await writeKubeconfig(api, {});
    const controllerPort = freePort();
    const controller = await fabric.startController(kc.path, [
      `--pool=${FABRIC.lbPool.cidr}`,
      "--leader-elect=false",
      `--metrics-address=127.0.0.1:${controllerPort}`,
    ]);
    const statusPort = { gw1: freePort(), gw2: freePort() };
    const agents: Record<GatewayName, LoggedProcess> = {
      // Damping off: the test chains outages to see the gate and the hold-down act on each;
      // damping has its own tests (test/unit/agent/announce_damping_test.ts).
      gw1: await fabric.startAgent("gw1", kc.path, [
        `--metrics-address=127.0.0.1:${statusPort.gw1}`,
        "--announce-damping=0",
      ]),
      gw2: await fabric.startAgent("gw2", kc.path, [
        `--metrics-address=127.0.0.1:${statusPort.gw2}`,
        "--announce-damping=0",
      ]),
    };
    await Promise.all(
      Object.values(agents).map((a) => a.waitForLine(/first list complete/, 30_000)),
    );
    await waitReadyz(controllerPort).catch((err) => {
      throw new Error(`${err.message}; controller log:\n${controller.tail()}`);
    });

    const web = { name: "web", type: "LoadBalancer", loadBalancerClass: CLASS, ports: HTTP };
    const webSlice = endpointSlice("web", [
      { address: FABRIC.pods.pod1, nodeName: FABRIC.podNode.pod1 },
      { address: FABRIC.pods.pod2, nodeName: FABRIC.podNode.pod2 },
    ], { name: "web-1" });
    let webIp = "";
    let webSvc: ServiceObject | undefined;

    await t.step(
      "a LoadBalancer Service gets a pool address, both gateways announce it, requests spread over both and all succeed",
      async (s) => {
        // Its pods are ready first, as after a rollout.
        api.createObject("endpointslices", webSlice);
        const created = performance.now();
        api.create(web);
        await waitFor(
          "web's status to get an address",
          () => ingressOf(api, "web").length > 0,
          10_000,
        )
          .catch((err) => {
            throw new Error(`${err.message}; controller log:\n${controller.tail()}`);
          });
        const allocated = performance.now();
        [webIp] = ingressOf(api, "web");
        assert.ok(
          (FABRIC.lbPool.addresses as readonly string[]).includes(webIp),
          `${webIp} is not in ${FABRIC.lbPool.cidr}`,
        );
        webSvc = api.get("services", "web") as unknown as ServiceObject;
        await fabric.programServices([{ service: webSvc, pods: ["pod1", "pod2"] }]);
        const at = await fabric.monitor.waitFor(
          (fib) => hopsAre(fib, `${webIp}/32`, BOTH),
          BOUND_MS + HOLD_DOWN_MS,
          `${webIp}/32 with a next hop per gateway`,
        );
        timing.lbAllocated = allocated - created;
        timing.lbEcmp = at - created;
        assert.deepEqual(await fabric.leafNextHops(webIp), [...BOTH].sort());

        const before = { gw1: await fabric.synCount("gw1"), gw2: await fabric.synCount("gw2") };
        const results: ProbeResult[] = [];
        for (let i = 0; i < 40; i++) results.push(await fabric.probe.get(webIp, 80));
        const syns = {
          gw1: (await fabric.synCount("gw1")) - before.gw1,
          gw2: (await fabric.synCount("gw2")) - before.gw2,
        };
        const failed = results.filter((r) => !r.ok);
        const byGw = { gw1: 0, gw2: 0 };
        const pods = new Set<string>();
        for (const r of results.filter((r) => r.ok)) {
          const a = answer(r);
          assert.ok(a.gw, `no gateway in answer ${r.body}`);
          byGw[a.gw]++;
          pods.add(a.pod);
        }
        timing.lbRequests = results.length;
        timing.lbFailed = failed.length;
        const summary = `${webIp}: ${results.length} requests, ${failed.length} failed; ` +
          `gw1 ${byGw.gw1} (SYN counter ${syns.gw1}), gw2 ${byGw.gw2} (SYN counter ${syns.gw2}); ` +
          `status written ${timing.lbAllocated.toFixed(0)} ms and ECMP at the leaf ` +
          `${timing.lbEcmp.toFixed(0)} ms after the create`;
        console.log(`loadbalancer: ${summary}`);
        await s.step(summary, () => {
          assert.deepEqual(failed.map(describe), []);
          assert.ok(
            byGw.gw1 > 0 && byGw.gw2 > 0,
            `one gateway carried all: ${JSON.stringify(byGw)}`,
          );
          assert.deepEqual(syns, byGw);
          assert.deepEqual([...pods].sort(), ["pod1", "pod2"]);
        });
      },
    );

    await t.step(
      "endpoints to zero withdraw from both gateways; back, the route returns after the hold-down",
      async (s) => {
        assert.ok(webSvc, "no web Service");
        const emptied = performance.now();
        assert.ok(api.deleteObject("endpointslices", "web-1"));
        // kube-proxy now rejects: no endpoint.
        await fabric.programServices([{ service: webSvc, pods: [] }]);
        const gone = await fabric.monitor.waitFor(
          (fib) => !fib.has(`${webIp}/32`),
          BOUND_MS,
          `${webIp}/32 gone from the leaf`,
        );
        timing.endpointsZeroWithdrawn = gone - emptied;
        for (const gw of ["gw1", "gw2"] as const) {
          assert.ok(
            !(await fabric.ip(gw, "address", "show", "dev", "lo")).includes(`${webIp}/32`),
            `${webIp} still on ${gw}'s lo`,
          );
          const st = (await agentStatus(statusPort[gw])).find((a) => a.address === webIp);
          assert.equal(st?.state, "no_usable_endpoint", `${gw}: ${JSON.stringify(st)}`);
        }

        await fabric.programServices([{ service: webSvc, pods: ["pod1", "pod2"] }]);
        const back = performance.now();
        api.createObject("endpointslices", webSlice);
        const returned = await fabric.monitor.waitFor(
          (fib) => hopsAre(fib, `${webIp}/32`, BOTH),
          HOLD_DOWN_MS + BOUND_MS,
          `${webIp}/32 back with a next hop per gateway`,
        );
        timing.endpointsBackReturned = returned - back;
        const results: ProbeResult[] = [];
        for (let i = 0; i < 20; i++) results.push(await fabric.probe.get(webIp, 80));
        const failed = results.filter((r) => !r.ok);
        timing.endpointsRequests = results.length;
        timing.endpointsFailed = failed.length;
        const summary = `withdrawn ${timing.endpointsZeroWithdrawn.toFixed(0)} ms after the ` +
          `slice was deleted; back ${timing.endpointsBackReturned.toFixed(0)} ms after it ` +
          `returned (hold-down ${HOLD_DOWN_MS} ms); then ${results.length} requests, ` +
          `${failed.length} failed`;
        console.log(`endpoints: ${summary}`);
        await s.step(summary, () => {
          assert.ok(
            timing.endpointsBackReturned >= HOLD_DOWN_MS,
            "the route came back before the hold-down",
          );
          assert.deepEqual(failed.map(describe), []);
        });
      },
    );

    let localIp = "";
    await t.step(
      "a Local Service with its pod on gw1 only is announced by gw1 alone, and every request succeeds",
      async (s) => {
        assert.ok(webSvc, "no web Service");
        api.createObject(
          "endpointslices",
          endpointSlice("local", [{ address: FABRIC.pods.pod1, nodeName: FABRIC.podNode.pod1 }], {
            name: "local-1",
          }),
        );
        const created = performance.now();
        api.create({
          name: "local",
          type: "LoadBalancer",
          loadBalancerClass: CLASS,
          externalTrafficPolicy: "Local",
          ports: HTTP,
        });
        await waitFor("local's status to get an address", () => ingressOf(api, "local").length > 0);
        [localIp] = ingressOf(api, "local");
        assert.notEqual(localIp, webIp);
        const localSvc = api.get("services", "local") as unknown as ServiceObject;
        await fabric.programServices([
          { service: webSvc, pods: ["pod1", "pod2"] },
          { service: localSvc, pods: ["pod1"] },
        ]);
        const at = await fabric.monitor.waitFor(
          (fib) => hopsAre(fib, `${localIp}/32`, ONLY_GW1),
          BOUND_MS + HOLD_DOWN_MS,
          `${localIp}/32 via gw1`,
        );
        timing.localAnnounced = at - created;
        // gw2 has decided: it withholds the address for want of an endpoint on its node.
        await waitFor(
          "gw2 to withhold the Local Service's address",
          async () =>
            (await agentStatus(statusPort.gw2)).find((a) => a.address === localIp)?.state ===
              "no_endpoint_on_node",
          BOUND_MS,
        );
        assert.ok(
          !(await fabric.ip("gw2", "address", "show", "dev", "lo")).includes(`${localIp}/32`),
        );
        assert.deepEqual(await fabric.leafNextHops(localIp), ONLY_GW1);

        const before = { gw1: await fabric.synCount("gw1"), gw2: await fabric.synCount("gw2") };
        const results: ProbeResult[] = [];
        for (let i = 0; i < 40; i++) results.push(await fabric.probe.get(localIp, 80));
        const syns = {
          gw1: (await fabric.synCount("gw1")) - before.gw1,
          gw2: (await fabric.synCount("gw2")) - before.gw2,
        };
        const failed = results.filter((r) => !r.ok);
        const seen = new Set(
          results.filter((r) => r.ok).map((r) => {
            const a = answer(r);
            return `${a.pod} from ${a.from}`;
          }),
        );
        timing.localRequests = results.length;
        timing.localFailed = failed.length;
        const summary = `${localIp}: ${results.length} requests, ${failed.length} failed; ` +
          `SYNs at gw1 ${syns.gw1}, at gw2 ${syns.gw2}; answered by ${[...seen].join(", ")}`;
        console.log(`local: ${summary}`);
        await s.step(summary, () => {
          assert.deepEqual(failed.map(describe), []);
          assert.deepEqual(syns, { gw1: results.length, gw2: 0 });
          // Only pod1, which saw the client's own address: Local keeps the source.
          assert.deepEqual([...seen], [`pod1 from ${FABRIC.client.address}`]);
        });
      },
    );

    await t.step(
      "gw1's kube-proxy health turns 503, gw1 withdraws and no request fails; 200 again brings it back after the hold-down",
      async (s) => {
        const health = fabric.kubeProxyHealth("gw1");
        // The agent polls its gateway's kube-proxy (every 2 s): wait for a poll, not for time.
        await health.waitPolls("healthy", 1, 5000).catch((err) => {
          throw new Error(`gw1's agent does not poll kube-proxy's health: ${err.message}`);
        });
        const loop = new RequestLoop(fabric.probe, { targets: [[webIp, 80]] });
        try {
          await loop.more(10);
          const turned = performance.now();
          health.set("unhealthy");
          const at = await fabric.monitor.waitFor(
            (fib) => hopsAre(fib, `${webIp}/32`, ONLY_GW2),
            HEALTH_BOUND_MS,
            `${webIp}/32 with gw2 as the only next hop`,
          );
          timing.unhealthyWithdrawn = at - turned;
          assert.ok(health.polls.unhealthy >= 3, `${health.polls.unhealthy} failed polls`);
          // Every address goes with gw1, the Local Service's too (gw1 was its only announcer).
          await fabric.monitor.waitFor(
            (fib) => !fib.has(`${localIp}/32`),
            BOUND_MS,
            `${localIp}/32 gone`,
          );
          await loop.more(20);
          await loop.stop();
          const after = loop.results.filter((x) => x.started > at);
          const inFlight = loop.results.filter((x) => x.started <= at && x.ended > at).length;
          timing.unhealthyRequests = loop.results.length;
          timing.unhealthyFailed = loop.failed.length;
          timing.unhealthyInFlight = inFlight;
          const summary = `${loop.results.length} requests, ${loop.failed.length} failed ` +
            `(${inFlight} in flight at the change, ${after.length} started after); gw1 gone ` +
            `from the leaf ${timing.unhealthyWithdrawn.toFixed(0)} ms after its health turned 503`;
          console.log(`kube-proxy health: ${summary}`);
          await s.step(summary, () => assertNoFailureThenGw2(loop, at));
        } finally {
          await loop.stop();
        }

        const healed = performance.now();
        health.set("healthy");
        const back = await fabric.monitor.waitFor(
          (fib) => hopsAre(fib, `${webIp}/32`, BOTH) && hopsAre(fib, `${localIp}/32`, ONLY_GW1),
          2000 + HOLD_DOWN_MS + BOUND_MS,
          "gw1's routes back at the leaf",
        );
        timing.healthyReturned = back - healed;
        await s.step(
          `gw1 back ${
            timing.healthyReturned.toFixed(0)
          } ms after its health turned 200 (hold-down ${HOLD_DOWN_MS} ms)`,
          () => {
            assert.ok(timing.healthyReturned >= HOLD_DOWN_MS, "gw1 came back before the hold-down");
          },
        );
      },
    );

    await t.step(
      "gw1's node becomes ineligible (nodeEligible false), gw1 withdraws at the first poll and no request fails",
      async (s) => {
        const health = fabric.kubeProxyHealth("gw1");
        const loop = new RequestLoop(fabric.probe, { targets: [[webIp, 80]] });
        try {
          await loop.more(10);
          const turned = performance.now();
          health.set("ineligible");
          const at = await fabric.monitor.waitFor(
            (fib) => hopsAre(fib, `${webIp}/32`, ONLY_GW2),
            2000 + 1000 + BOUND_MS,
            `${webIp}/32 with gw2 as the only next hop`,
          );
          timing.ineligibleWithdrawn = at - turned;
          // At once: the first poll that saw it, not three.
          assert.ok(health.polls.ineligible <= 2, `${health.polls.ineligible} ineligible polls`);
          await loop.more(20);
          await loop.stop();
          const after = loop.results.filter((x) => x.started > at);
          timing.ineligibleRequests = loop.results.length;
          timing.ineligibleFailed = loop.failed.length;
          const summary = `${loop.results.length} requests, ${loop.failed.length} failed ` +
            `(${after.length} started after); gw1 gone from the leaf ` +
            `${timing.ineligibleWithdrawn.toFixed(0)} ms after nodeEligible turned false`;
          console.log(`node ineligible: ${summary}`);
          await s.step(summary, () => assertNoFailureThenGw2(loop, at));
        } finally {
          await loop.stop();
          health.set("healthy");
        }
      },
    );

    console.log(`FABRIC_TIMING ${JSON.stringify(timing)}`);
    await Promise.all(Object.values(agents).map((a) => a.stop("SIGTERM")));
    await controller.stop("SIGTERM");
  } finally {
    await api.close();
  }
});
