/**
 * Scenario `route_events`: how fast route mode follows Services once synced.
 * Event latency (watch event written → the kernel reports the route change)
 * of an agent with `--install-as route` beside one in address mode, in the
 * same run, run after run alternating; then churn (scenario 3's updates and
 * lag) against an agent holding N Services × 2 addresses as routes, beside
 * the `ip -batch` floor writing the same route lines.
 *
 * @module
 */

import { churnAgentRun, churnFloorRun, type ChurnRun, type Driven } from "./churn.ts";
import type { BenchConfig } from "./config.ts";
import { latencyRun, type RunLatency } from "./event_latency.ts";
import { ExecCounter } from "./processes.ts";
import type { Row, ScenarioResult } from "./report.ts";
import { acrossRuns } from "./stats.ts";

/** Runs scenario `route_events`. */
export async function routeEvents(cfg: BenchConfig): Promise<ScenarioResult> {
  const route: RunLatency[] = [];
  const address: RunLatency[] = [];
  for (let r = 0; r < cfg.runs; r++) {
    route.push(await latencyRun(cfg, { mode: "route" }));
    address.push(await latencyRun(cfg, { mode: "address" }));
  }
  const n = cfg.latency.events;
  const rows: Row[] = (["p50", "p99", "max"] as const).map((q) => {
    const value = acrossRuns(route.map((a) => a.all[q]));
    const av = acrossRuns(address.map((a) => a.all[q]));
    const target = q === "p50"
      ? { text: "p50 ≤ 5 ms", met: value.median <= 5 }
      : q === "p99"
      ? { text: "p99 ≤ 20 ms", met: value.median <= 20 }
      : undefined;
    return {
      scenario: "R route events",
      metric: `route mode, Service event → route, ${q}, ${n} creates + ${n} deletes`,
      unit: "ms",
      value,
      compare: {
        label: "address mode",
        value: av,
        ratio: value.median / av.median,
        ratioText: "route/address",
      },
      target,
    };
  });

  const perf = await ExecCounter.available();
  const size = cfg.routeEvents.churn;
  const churns: ChurnRun[] = [];
  const floors: Driven[] = [];
  for (let r = 0; r < cfg.runs; r++) {
    churns.push(await churnAgentRun(cfg, perf, { mode: "route", size }));
    floors.push(await churnFloorRun(cfg, perf, { mode: "route", size }));
  }
  const what = `route mode, ${size.services} Services (${2 * size.services} routes), ` +
    `${size.perSecond}/s for ${size.seconds} s`;
  const vsFloor = (pick: (d: Driven) => number) => {
    const value = acrossRuns(churns.map(pick));
    const f = acrossRuns(floors.map(pick));
    return {
      value,
      compare: {
        label: "floor" as const,
        value: f,
        ratio: value.median / f.median,
        ratioText: "kube-gw/floor",
      },
    };
  };
  const big = 2 * size.services >= 100_000;
  const p99 = vsFloor((d) => d.lag.p99);
  rows.push(
    {
      scenario: "R route churn",
      metric: `${what}: lag p50`,
      unit: "ms",
      ...vsFloor((d) => d.lag.p50),
    },
    {
      scenario: "R route churn",
      metric: `${what}: lag p99`,
      unit: "ms",
      ...p99,
      target: big ? { text: "p99 ≤ 50 ms", met: p99.value.median <= 50 } : undefined,
    },
    {
      scenario: "R route churn",
      metric: "route mode: converged after churn stops",
      unit: "ms",
      ...vsFloor((d) => d.convergeMs),
    },
    {
      scenario: "R route churn",
      metric: "route mode: updates/s achieved",
      unit: "count",
      value: acrossRuns(churns.map((c) => c.achievedPerSecond)),
    },
    {
      scenario: "R route churn",
      metric: "route mode: reconciles (/metrics)",
      unit: "count",
      value: acrossRuns(churns.map((c) => c.reconciles)),
    },
    {
      scenario: "R route churn",
      metric: "whole machine CPU busy during churn (context)",
      unit: "percent",
      value: acrossRuns(churns.map((c) => 100 * c.cpuBusy)),
    },
  );
  return {
    id: "route_events",
    title: "Route mode: event latency beside address mode; churn at scale beside its floor",
    rows,
    details: { latency: { route, address }, churn: { runs: churns, floor: floors } },
  };
}
