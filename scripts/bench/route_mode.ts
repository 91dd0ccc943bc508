/**
 * Scenario `route_mode`: initial sync of N Services with two external IPs
 * each (`--announce always`), the agent holding them as routes
 * (`--install-as route`) beside the agent holding them as addresses, in the
 * same run. Measured: start → every route present (`ip monitor route`); the
 * agent's own part, from its first complete list (its log line's timestamp)
 * to the last route; the `ip -batch` floor of exactly the route lines the
 * agent writes, into a fresh namespace, in one `ip -batch` and split over
 * as many side by side as the agent runs; the agent's peak RSS. Address mode
 * is measured up to 10,000 Services (20,000 addresses already take seconds:
 * the kernel walks the interface's address list on each insert).
 *
 * @module
 */

import type { BenchConfig } from "./config.ts";
import { ASSUMED, convergeLimitMs, seededServices } from "./initial_sync.ts";
import { procMemory, startBenchAgent } from "./processes.ts";
import type { Row, ScenarioResult } from "./report.ts";
import { allAdded, IpBatch, Stage } from "./stage.ts";
import { acrossRuns } from "./stats.ts";
import { defaultBatches, routeBatchLines, splitBatch } from "../../lib/kernel/route_store.ts";
import { waitFor } from "../../test/support/wait.ts";

/** The route mode flags the agent runs with; the floor writes the same lines. */
export const ROUTE = { protocol: 200, table: "main" } as const;

/** Address mode is measured up to this many Services. */
const ADDRESS_MODE_MAX = 10_000;

interface Sync {
  /** Agent spawn → last address or route reported. */
  readonly ms: number;
  /** The agent's first complete list → last route reported. */
  readonly agentPartMs: number;
  readonly peakRss: number;
}

/** When the agent logged `line` (its ISO timestamp), on this process's `performance` clock. */
function loggedAt(line: string): number {
  const stamp = Date.parse(line.slice(0, line.indexOf(" ")));
  return stamp - performance.timeOrigin;
}

/** The addresses of kube-gw's routes (protocol {@linkcode ROUTE}) in a namespace, sorted. */
export async function heldRoutes(netns: string): Promise<string[]> {
  const out = await new Deno.Command("ip", {
    args: ["-n", netns, "-json", "route", "show", "table", "main", "proto", String(ROUTE.protocol)],
    stdout: "piped",
  }).output();
  const routes = JSON.parse(new TextDecoder().decode(out.stdout)) as { dst: string }[];
  return routes.map((r) => r.dst.replace(/\/(32|128)$/, "")).sort();
}

async function agentRun(cfg: BenchConfig, n: number, mode: "address" | "route"): Promise<Sync> {
  const { specs, addresses } = seededServices(n);
  await using stage = await Stage.create(`rm-${mode[0]}-${n}`, specs, {
    args: mode === "route" ? ["--install-as=route"] : [],
    watch: mode,
  });
  const all = stage.monitor.waitForAll(addresses, "add");
  const t0 = performance.now();
  await using agent = startBenchAgent(stage.agentArgs(), cfg);
  const listed = agent.waitForLine(/ INFO first list complete/, convergeLimitMs(addresses.length));
  const logged = agent.track(ASSUMED);
  const held = async () =>
    mode === "route"
      ? (await heldRoutes(stage.ns.name)).length
      : (await stage.ns.hostAddresses()).length;
  const sync = await allAdded(
    stage.monitor,
    all,
    addresses.length,
    held,
    convergeLimitMs(addresses.length),
    `${mode} mode sync`,
  ).catch((err) => {
    throw new Error(`${err.message}\n${agent.tail()}`);
  });
  if (sync.lost) console.error(`   ${mode} mode, ${n}: ip monitor lost part of the burst`);
  const t1 = sync.at;
  const firstList = loggedAt(await listed);
  await waitFor("the agent to log every address", () => logged() >= addresses.length, 60_000, 50);
  const mem = await procMemory(agent.pid);
  const holds = await held();
  if (holds !== addresses.length) {
    throw new Error(`${mode} mode: expected ${addresses.length}, the namespace holds ${holds}`);
  }
  await agent.stop();
  return { ms: t1 - t0, agentPartMs: t1 - firstList, peakRss: mem.hwm };
}

/**
 * The floor: the agent's route lines written to `batches` `ip -batch` side by
 * side, split as the agent splits them (1: the plain `ip -batch` floor).
 */
async function floorRun(n: number, batches: number): Promise<number> {
  const { addresses } = seededServices(n);
  await using stage = await Stage.create(`rm-f${batches}-${n}`, [], { watch: "route" });
  const all = stage.monitor.waitForAll(addresses, "add");
  const scripts = splitBatch(routeBatchLines({ add: addresses, remove: [] }, ROUTE), batches);
  const t0 = performance.now();
  await Promise.all(scripts.map(async (script) => {
    const batch = new IpBatch(stage.ns.name);
    await batch.write(script);
    await batch.close();
  }));
  const sync = await allAdded(
    stage.monitor,
    all,
    addresses.length,
    async () => (await heldRoutes(stage.ns.name)).length,
    60_000,
    "route floor: monitor reports every route",
  );
  if (sync.lost) console.error(`   route floor, ${n}: ip monitor lost part of the burst`);
  const t1 = sync.at;
  return t1 - t0;
}

/** Runs scenario `route_mode`. */
export async function routeMode(cfg: BenchConfig): Promise<ScenarioResult> {
  const rows: Row[] = [];
  const details: Record<string, unknown> = {};
  for (const n of cfg.routeMode.sizes) {
    const route: Sync[] = [];
    const address: Sync[] = [];
    const floor: number[] = [];
    const split: number[] = [];
    const batches = defaultBatches();
    for (let r = 0; r < cfg.runs; r++) {
      route.push(await agentRun(cfg, n, "route"));
      floor.push(await floorRun(n, 1));
      if (batches > 1) split.push(await floorRun(n, batches));
      if (n <= ADDRESS_MODE_MAX) address.push(await agentRun(cfg, n, "address"));
    }
    const scenario = "R route mode";
    const addrs = `${n} Services, ${2 * n} addresses`;
    const big = 2 * n === 100_000;
    const start = acrossRuns(route.map((s) => s.ms));
    rows.push({
      scenario,
      metric: `${addrs}: route mode, start → all routes present`,
      unit: "ms",
      value: start,
      target: big ? { text: "≤ 3 s", met: start.median <= 3000 } : undefined,
    });
    rows.push({
      scenario,
      metric: `${addrs}: route mode, first complete list → last route`,
      unit: "ms",
      value: acrossRuns(route.map((s) => s.agentPartMs)),
    });
    rows.push({
      scenario,
      metric: `${addrs}: ip -batch floor, same route lines`,
      unit: "ms",
      value: acrossRuns(floor),
    });
    const overFloor = acrossRuns(route.map((s, i) => s.agentPartMs / floor[i]));
    rows.push({
      scenario,
      metric: `${addrs}: route mode (first list → last route) / floor, per run`,
      unit: "ratio",
      value: overFloor,
      target: big ? { text: "≤ 1.5× floor", met: overFloor.median <= 1.5 } : undefined,
    });
    if (split.length > 0) {
      rows.push({
        scenario,
        metric:
          `${addrs}: the same lines in ${batches} ip -batch side by side, as the agent runs them`,
        unit: "ms",
        value: acrossRuns(split),
      });
      rows.push({
        scenario,
        metric: `${addrs}: route mode (first list → last route) / that floor, per run`,
        unit: "ratio",
        value: acrossRuns(route.map((s, i) => s.agentPartMs / split[i])),
      });
    }
    const rss = acrossRuns(route.map((s) => s.peakRss));
    rows.push({
      scenario,
      metric: `${addrs}: route mode, agent peak RSS (VmHWM)`,
      unit: "bytes",
      value: rss,
      target: big ? { text: "≤ 250 MB", met: rss.median <= 250 * 1024 * 1024 } : undefined,
    });
    if (address.length > 0) {
      rows.push({
        scenario,
        metric: `${addrs}: address mode, start → all addresses present`,
        unit: "ms",
        value: acrossRuns(address.map((s) => s.ms)),
      });
      rows.push({
        scenario,
        metric: `${addrs}: address mode / route mode, start → all present, per run`,
        unit: "ratio",
        value: acrossRuns(address.map((s, i) => s.ms / route[i].ms)),
      });
      rows.push({
        scenario,
        metric: `${addrs}: address mode, agent peak RSS (VmHWM)`,
        unit: "bytes",
        value: acrossRuns(address.map((s) => s.peakRss)),
      });
    }
    details[String(n)] = { route, address, floorMs: floor, splitFloorMs: split, batches };
  }
  return {
    id: "route_mode",
    title: "Route mode beside address mode: initial sync, the ip -batch floor of the route lines",
    rows,
    details,
  };
}
