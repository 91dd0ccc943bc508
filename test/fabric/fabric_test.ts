/**
 * The whole path on a real BGP fabric (see test/support/fabric/fabric.ts): a Service
 * becomes anycast /32s on both gateways, the leaf installs them with a next hop
 * per gateway, kube-proxy-style rules forward to the pods, and `kube-gw drain`
 * takes a gateway out without a failed request.
 *
 * Prints, per step, the time from the API server writing the watch event (or
 * from the drain command) to the change in the leaf's kernel FIB, as seen by
 * `ip monitor route`, and one `FABRIC_TIMING {json}` line for collecting runs.
 */

import { demoSlice } from "../support/fakes/endpoint_slices.ts";
import assert from "node:assert/strict";
import { runKubeGw, writeKubeconfig } from "../support/procs/agent.ts";
import { FABRIC, Fabric, type GatewayName, gatewayOf } from "../support/fabric/fabric.ts";
import { DEMO_SERVICE, FakeApiServer } from "../support/fakes/apiserver.ts";
import type { ServiceObject } from "../support/fabric/kube_proxy.ts";
import type { ProbeResult } from "../support/fabric/probe_client.ts";
import type { FibView } from "../support/fabric/route_monitor.ts";
import { describeResult as describe, RequestLoop } from "../support/fabric/request_loop.ts";

const VIPS = ["10.0.100.30/32", "10.0.100.31/32"];
const TARGETS: readonly [string, number][] = [
  ["10.0.100.30", 80],
  ["10.0.100.31", 80],
  ["10.0.100.30", 81],
];
const BOTH = [FABRIC.gw1.uplink, FABRIC.gw2.uplink];
const BOUND_MS = 3000;

function hopsAre(fib: FibView, dst: string, want: readonly string[]): boolean {
  const got = fib.get(dst);
  return got !== undefined && got.length === want.length && want.every((h) => got.includes(h));
}

/** The pod and gateway a successful answer names. */
function answer(r: ProbeResult): { pod: string; gw: GatewayName | undefined } {
  const [pod, from] = (r.body ?? "").trim().split(" ");
  return { pod, gw: gatewayOf(from) };
}

/**
 * Checks a measured time against the bound, in a step named with the number:
 * Deno's TAP reporter drops console output, step names are what `deno task
 * test` shows.
 */
async function within(t: Deno.TestContext, what: string, ms: number): Promise<void> {
  await t.step(`${what}: ${ms.toFixed(1)} ms (bound ${BOUND_MS} ms)`, () => {
    assert.ok(ms <= BOUND_MS, `${what} took ${ms.toFixed(1)} ms`);
  });
}

Deno.test("fabric: anycast gateways, ECMP, kube-proxy forwarding, drain without loss", async (t) => {
  await using fabric = await Fabric.start();
  const api = await FakeApiServer.start();
  const firstEvent = new Map<string, number>();
  api.onEventWritten = (type, obj, at) => {
    if (obj.metadata.name === DEMO_SERVICE.name && !firstEvent.has(type)) firstEvent.set(type, at);
  };
  const timing: Record<string, number> = {};
  const sinceEvent = (type: string, at: number) => {
    const sent = firstEvent.get(type);
    assert.ok(sent !== undefined, `the API server sent no ${type} event`);
    return at - sent;
  };
  try {
    await using kc = await writeKubeconfig(api, {});
    const agents = {
      gw1: await fabric.startAgent("gw1", kc.path),
      gw2: await fabric.startAgent("gw2", kc.path),
    };
    await Promise.all(
      Object.values(agents).map((a) => a.waitForLine(/first list complete/, 30_000)),
    );

    await t.step(
      "a new Service reaches the leaf's FIB as two /32s with two next hops each",
      async (s) => {
        // Its pods are ready first (as after a rollout), so the Service is announced on creation.
        api.createObject("endpointslices", demoSlice());
        const svc = api.create(DEMO_SERVICE) as unknown as ServiceObject;
        await fabric.programKubeProxy(svc);
        const added = firstEvent.get("ADDED") ?? performance.now();
        const left = () => BOUND_MS - (performance.now() - added);
        const first = await fabric.monitor.waitFor(
          (fib) => VIPS.some((v) => fib.has(v)),
          left(),
          "a first route for a Service address",
        );
        const both = await fabric.monitor.waitFor(
          (fib) => VIPS.every((v) => hopsAre(fib, v, BOTH)),
          left(),
          "both Service addresses with a next hop per gateway",
        );
        timing.createFirstRoute = sinceEvent("ADDED", first);
        timing.createEcmp = sinceEvent("ADDED", both);
        await within(s, "ADDED event -> first route in the leaf's FIB", timing.createFirstRoute);
        await within(s, "ADDED event -> both /32s with 2 next hops", timing.createEcmp);
        for (const v of VIPS) assert.deepEqual(await fabric.leafNextHops(v), [...BOTH].sort());
        // Only the Service addresses and the loopbacks come from BGP: no pod or
        // node links, no ClusterIP from kube-ipvs0.
        const bgp = JSON.parse(
          await fabric.ip("leaf", "-json", "route", "show", "proto", "bgp"),
        ) as {
          dst: string;
        }[];
        assert.deepEqual(
          bgp.map((r) => r.dst).sort(),
          [FABRIC.gw1.loopback, FABRIC.gw2.loopback, "10.0.100.30", "10.0.100.31"],
        );
        assert.deepEqual(
          (await fabric.ip("gw1", "-json", "address", "show", "dev", "kube-ipvs0")).includes(
            svc.spec.clusterIP!,
          ),
          true,
        );
      },
    );

    await t.step(
      "the client reaches every Service port, and both gateways carry traffic",
      async (s) => {
        for (const [host, port] of TARGETS) {
          const r = await fabric.probe.get(host, port);
          assert.ok(r.ok, `${host}:${port}: ${describe(r)}`);
          assert.ok(/^pod[12] /.test(r.body ?? ""), `${host}:${port} answered ${r.body}`);
        }
        const before = { gw1: await fabric.synCount("gw1"), gw2: await fabric.synCount("gw2") };
        const results: ProbeResult[] = [];
        for (let i = 0; i < 40; i++) {
          const [host, port] = TARGETS[i % TARGETS.length];
          results.push(await fabric.probe.get(host, port));
        }
        const syns = {
          gw1: (await fabric.synCount("gw1")) - before.gw1,
          gw2: (await fabric.synCount("gw2")) - before.gw2,
        };
        const failed = results.filter((r) => !r.ok);
        assert.deepEqual(failed.map(describe), []);
        const byGw = { gw1: 0, gw2: 0 };
        const pods = new Set<string>();
        for (const r of results) {
          const a = answer(r);
          assert.ok(a.gw, `no gateway in answer ${r.body}`);
          byGw[a.gw]++;
          pods.add(a.pod);
        }
        const ports = new Set(results.map((r) => r.localPort));
        const summary = `40 requests from ${ports.size} source ports: ` +
          `gw1 ${byGw.gw1} (SYN counter ${syns.gw1}), gw2 ${byGw.gw2} (SYN counter ${syns.gw2}), ` +
          `pods ${[...pods].sort().join(", ")}`;
        console.log(summary);
        await s.step(summary, () => {
          assert.ok(ports.size > 1, "the source ports did not vary");
          assert.ok(
            byGw.gw1 > 0 && byGw.gw2 > 0,
            `one gateway carried all: ${JSON.stringify(byGw)}`,
          );
          // The counters in the gateways agree with what the pods saw.
          assert.deepEqual(syns, byGw);
          assert.deepEqual([...pods].sort(), ["pod1", "pod2"]);
        });
      },
    );

    await t.step("nothing listens on a gateway's own address", async () => {
      for (const host of [FABRIC.gw1.loopback, FABRIC.gw2.loopback]) {
        const r = await fabric.probe.get(host, 80);
        assert.ok(!r.ok && /ConnectionRefused/.test(r.error ?? ""), `${host}:80: ${describe(r)}`);
      }
    });

    await t.step("drain on gw1: the leaf drops gw1 and no request fails", async (s) => {
      const loop = new RequestLoop(fabric.probe, { targets: TARGETS });
      const results = loop.results;
      try {
        await loop.more(10);
        // A running agent would put the addresses back: stop it first. SIGTERM
        // leaves the addresses in place, so nothing is withdrawn yet.
        const stopped = await agents.gw1.stop("SIGTERM");
        assert.deepEqual(stopped.code, 0);
        const gw1Vips = JSON.parse(await fabric.ip("gw1", "-json", "address", "show", "dev", "lo"));
        assert.deepEqual(
          JSON.stringify(gw1Vips).includes("10.0.100.30") &&
            JSON.stringify(gw1Vips).includes("10.0.100.31"),
          true,
        );
        assert.ok(VIPS.every((v) => hopsAre(fabric.monitor.fib, v, BOTH)), "a route left early");
        const start = performance.now();
        const drain = await runKubeGw([
          "drain",
          "--netns",
          fabric.ns("gw1"),
          "--network",
          FABRIC.serviceNetwork,
        ]);
        const exited = performance.now();
        assert.deepEqual(drain.code, 0, drain.stderr);
        const at = await fabric.monitor.waitFor(
          (fib) => VIPS.every((v) => hopsAre(fib, v, [FABRIC.gw2.uplink])),
          BOUND_MS - (performance.now() - start),
          "the Service addresses with gw2 as the only next hop",
        );
        timing.drainFromCommand = at - start;
        timing.drainFromExit = at - exited;
        await within(
          s,
          "kube-gw drain started -> gw1 gone from the leaf's FIB",
          timing.drainFromCommand,
        );
        await within(
          s,
          "kube-gw drain exited -> gw1 gone from the leaf's FIB",
          timing.drainFromExit,
        );
        await loop.more(20);
        await loop.stop();
        const failed = results.filter((x) => !x.r.ok);
        const after = results.filter((x) => x.started > at);
        const via = (x: { r: ProbeResult }) => answer(x.r).gw;
        const inFlight = results.filter((x) => x.started <= at && x.ended > at).length;
        const handedOff = await fabric.handedOff("gw2");
        timing.drainRequests = results.length;
        timing.drainFailed = failed.length;
        timing.drainInFlight = inFlight;
        timing.drainHandedOff = handedOff;
        const summary = `${results.length} requests, ${failed.length} failed ` +
          `(${results.filter((x) => x.started <= at && via(x) === "gw1").length} through gw1 ` +
          `before the leaf dropped it, ${inFlight} in flight then, ${handedOff} packets ` +
          `handed back to gw1 by gw2, ${after.length} started after)`;
        console.log(`drain: ${summary}`);
        await s.step(summary, () => {
          assert.deepEqual(failed.map((x) => describe(x.r)), []);
        });
        await s.step(
          `all ${after.length} requests started after the change went through gw2`,
          () => {
            assert.deepEqual(after.filter((x) => via(x) !== "gw2").map((x) => describe(x.r)), []);
          },
        );
        for (const v of VIPS) assert.deepEqual(await fabric.leafNextHops(v), [FABRIC.gw2.uplink]);
        assert.ok(!(await fabric.ip("gw1", "address", "show", "dev", "lo")).includes("10.0.100."));
      } finally {
        await loop.stop();
      }
    });

    await t.step("deleting the Service takes the routes out of the leaf", async (s) => {
      api.delete(DEMO_SERVICE.name);
      const deleted = firstEvent.get("DELETED") ?? performance.now();
      const at = await fabric.monitor.waitFor(
        (fib) => VIPS.every((v) => !fib.has(v)),
        BOUND_MS - (performance.now() - deleted),
        "no route for the Service addresses",
      );
      timing.delete = sinceEvent("DELETED", at);
      await within(s, "DELETED event -> routes gone from the leaf's FIB", timing.delete);
      for (const v of VIPS) assert.deepEqual(await fabric.leafNextHops(v), []);
      await fabric.programKubeProxy(undefined);
    });

    const ms = (n: number | undefined) => n === undefined ? "-" : `${n.toFixed(1)} ms`;
    console.log(
      [
        "event -> leaf FIB (ip monitor route):",
        `  ADDED   -> first route              ${ms(timing.createFirstRoute)}`,
        `  ADDED   -> both /32s, 2 next hops   ${ms(timing.createEcmp)}`,
        `  drain command start -> gw1 dropped  ${ms(timing.drainFromCommand)}`,
        `  drain command exit  -> gw1 dropped  ${ms(timing.drainFromExit)}`,
        `  DELETED -> routes gone              ${ms(timing.delete)}`,
      ].join("\n"),
    );
    console.log(`FABRIC_TIMING ${JSON.stringify(timing)}`);
    await agents.gw2.stop("SIGTERM");
  } finally {
    await api.close();
  }
});
