/**
 * Steps the route-mode fabric tests share: a check of the leaf's next hops,
 * requests counted and printed as `ROUTE_MODE {scenario} made=N failed=N`,
 * requests sent while the routes change, and a gateway's drain.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Fabric } from "./fabric.ts";
import type { ProbeResult } from "./probe_client.ts";
import type { FibView } from "./route_monitor.ts";
import { waitFor } from "../wait.ts";
import { type LoggedProcess, runKubeGw } from "../procs/agent.ts";

/**
 * Starts kube-gw in route mode on both gateways and waits for their first
 * lists; puts a listener on port 22 of each gateway (sshd's stand-in). The
 * hold-down is 500 ms and damping off: the tests withdraw one address several
 * times in a few seconds (endpoints to zero, health 503, drain), which damping
 * (default half-life 30 s) would keep withdrawn.
 */
export async function startRouteModeGateways(fabric: Fabric, kubeconfig: string) {
  const args = ["--install-as=route", "--announce-delay=500ms", "--announce-damping=0"];
  const agents = {
    gw1: await fabric.startAgent("gw1", kubeconfig, args),
    gw2: await fabric.startAgent("gw2", kubeconfig, args),
  };
  await Promise.all(Object.values(agents).map((a) => a.waitForLine(/first list complete/, 30_000)));
  for (const gw of ["gw1", "gw2"] as const) await fabric.listen(gw, 22);
  return agents;
}

/** Whether the FIB routes `dst` through exactly the next hops `want`. */
export function hopsAre(fib: FibView, dst: string, want: readonly string[]): boolean {
  const got = fib.get(dst);
  return got !== undefined && got.length === want.length && want.every((h) => got.includes(h));
}

function describe(r: ProbeResult): string {
  return r.ok ? `ok ${r.body?.trim()}` : `FAILED ${r.error ?? `status ${r.status}`}`;
}

/** Prints and checks one scenario's counts, in a step named with them. */
export async function counted(
  t: Deno.TestContext,
  scenario: string,
  results: readonly ProbeResult[],
  minimum: number,
): Promise<void> {
  const failed = results.filter((r) => !r.ok);
  console.log(`ROUTE_MODE ${scenario} made=${results.length} failed=${failed.length}`);
  await t.step(`${scenario}: ${results.length} requests, ${failed.length} failed`, () => {
    assert.ok(results.length >= minimum, `at least ${minimum} requests`);
    assert.deepEqual(failed.map(describe), []);
  });
}

/** Requests to `vip`:80 one after another until `during` resolves, then `after` more. */
export async function requestsAround(
  fabric: Fabric,
  during: () => Promise<void>,
  after = 10,
  vip = "10.0.100.30",
): Promise<ProbeResult[]> {
  const results: ProbeResult[] = [];
  let stop = false;
  const loop = (async () => {
    while (!stop) results.push(await fabric.probe.get(vip, 80));
  })();
  try {
    await during();
    const n = results.length;
    await waitFor(`${after} more requests`, () => results.length >= n + after, 30_000);
  } finally {
    stop = true;
    await loop;
  }
  return results;
}

/**
 * Drains gateway `gw` as an operator does in route mode: stops its agent
 * (SIGTERM; the routes stay), then runs `kube-gw drain` in its namespace.
 */
export async function drainRouteMode(
  fabric: Fabric,
  gw: "gw1" | "gw2",
  agent: LoggedProcess,
): Promise<void> {
  assert.equal((await agent.stop("SIGTERM")).code, 0);
  const drain = await runKubeGw([
    "drain",
    `--network=${fabric.networks}`,
    `--netns=${fabric.ns(gw)}`,
    "--install-as=route",
  ]);
  assert.equal(drain.code, 0, drain.stderr);
}
