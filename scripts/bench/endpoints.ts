/**
 * Scenario 6, endpoints: N Services with two external IPs and one
 * EndpointSlice of three ready endpoints each, synced by the agent with
 * `--announce ready`.
 *
 * - Withdrawal latency: one Service at a time, its slice is emptied; from the
 *   watch event being written to the monitor reporting the removal of the
 *   Service's last address (withdrawals skip the hold-down).
 * - Updates that change nothing: `perSecond` slice updates a second for
 *   `seconds`, each replacing a Service's three endpoints with three other
 *   ready ones (pods restarting behind a Service that keeps ready endpoints).
 *   Counted: reconciles (from /metrics), address changes (monitor), `ip`
 *   processes (perf, when available), and the agent's CPU time over the window.
 *   The agent runs with `--resync-interval=0`: the periodic resync reads the
 *   interface with an `ip` process of its own, whatever the events.
 *
 * @module
 */

import type { BenchConfig } from "./config.ts";
import { seededServices, syncAgent } from "./initial_sync.ts";
import { ExecCounter, metricsPort, processCpuMs, reconciles, scrape } from "./processes.ts";
import type { Row, ScenarioResult } from "./report.ts";
import { K8S_NAMESPACE, sleep, slice, Stage, within } from "./stage.ts";
import { acrossRuns, type Distribution, distribution } from "./stats.ts";
import { endpointSlice } from "../../test/support/fakes/endpoint_slices.ts";

interface EndpointsRun {
  readonly withdraw: Distribution;
  readonly updates: number;
  readonly achievedPerSecond: number;
  readonly reconciles: number;
  readonly addressChanges: number;
  readonly ipProcesses: number | null;
  readonly agentCpuShare: number;
}

function rvOf(obj: { metadata: { resourceVersion: string } }): string {
  return obj.metadata.resourceVersion;
}

async function run(cfg: BenchConfig): Promise<EndpointsRun> {
  const { services, withdrawals, perSecond, seconds } = cfg.endpoints;
  const { specs, addresses } = seededServices(services);
  // No resync: its periodic read of the interface is an `ip` process of its own.
  await using stage = await Stage.create(`s6-${services}`, specs, {
    slices: true,
    args: ["--resync-interval=0"],
  });
  const { agent } = await syncAgent(cfg, stage, addresses);
  await using _ = agent;
  const port = await metricsPort(agent);

  // Withdrawals, one at a time.
  const lags: number[] = [];
  for (let i = 0; i < withdrawals; i++) {
    const name = specs[i].name;
    const ips = specs[i].externalIPs as string[];
    const obj = stage.api.replaceObject(
      "endpointslices",
      endpointSlice(name, [], { namespace: K8S_NAMESPACE }),
    );
    const written = await stage.whenWritten(rvOf(obj));
    const gone = await within(
      Promise.all(ips.map((ip) => stage.monitor.waitFor(ip, "del", written))),
      10_000,
      `withdrawal of ${name}`,
    );
    lags.push(Math.max(...gone) - written);
  }

  // Updates that change no announcement, on the Services that still have endpoints.
  const before = await scrape(port);
  const held = (await stage.ns.hostAddresses()).length;
  const perf = await ExecCounter.available() ? await ExecCounter.attach(agent.pid) : undefined;
  const cpu0 = await processCpuMs(agent.pid);
  const t0 = performance.now();
  const total = perSecond * seconds;
  const tickMs = 20;
  const perTick = Math.max(1, Math.round(perSecond * tickMs / 1000));
  let sent = 0;
  let last = "";
  while (sent < total) {
    const due = t0 + (sent / perSecond) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    for (let k = 0; k < perTick && sent < total; k++, sent++) {
      const j = withdrawals + (sent % (services - withdrawals));
      last = rvOf(stage.api.replaceObject("endpointslices", slice(specs[j].name, sent + 1)));
    }
  }
  await stage.whenWritten(last);
  const t1 = performance.now();
  await sleep(500); // let the agent read what was written last
  const cpu1 = await processCpuMs(agent.pid);
  const execs = perf ? (await perf.count()).execs : null;
  const after = await scrape(port);
  const heldAfter = (await stage.ns.hostAddresses()).length;
  return {
    withdraw: distribution(lags),
    updates: total,
    achievedPerSecond: total / ((t1 - t0) / 1000),
    reconciles: reconciles(after).total - reconciles(before).total,
    addressChanges: Math.abs(heldAfter - held),
    ipProcesses: execs,
    agentCpuShare: (cpu1 - cpu0) / (t1 - t0 + 500),
  };
}

/** Runs scenario 6. */
export async function endpoints(cfg: BenchConfig): Promise<ScenarioResult> {
  const runs: EndpointsRun[] = [];
  for (let r = 0; r < cfg.runs; r++) runs.push(await run(cfg));
  const { services, perSecond } = cfg.endpoints;
  const scenario = "6 endpoints";
  const p50 = acrossRuns(runs.map((r) => r.withdraw.p50));
  const p99 = acrossRuns(runs.map((r) => r.withdraw.p99));
  const cpu = acrossRuns(runs.map((r) => r.agentCpuShare * 100));
  const ips = runs.map((r) => r.ipProcesses);
  const rows: Row[] = [
    {
      scenario,
      metric: `${services} Services: slice emptied → address withdrawn, p50`,
      unit: "ms",
      value: p50,
      target: { text: "≤ 10 ms", met: p50.median <= 10 },
    },
    {
      scenario,
      metric: `${services} Services: slice emptied → address withdrawn, p99`,
      unit: "ms",
      value: p99,
      target: { text: "≤ 50 ms", met: p99.median <= 50 },
    },
    {
      scenario,
      metric: `${perSecond} no-op slice updates/s: reconciles`,
      unit: "count",
      value: acrossRuns(runs.map((r) => r.reconciles)),
      target: { text: "0 (no ip process)", met: runs.every((r) => r.reconciles === 0) },
    },
    {
      scenario,
      metric: `${perSecond} no-op slice updates/s: ip processes (perf)`,
      unit: "count",
      value: acrossRuns(ips.map((n) => n ?? NaN)),
      note: ips.some((n) => n === null) ? "perf unavailable" : undefined,
    },
    {
      scenario,
      metric: `${perSecond} no-op slice updates/s: agent CPU, % of one core`,
      unit: "percent",
      value: cpu,
      target: { text: "< 25%", met: cpu.median < 25 },
    },
  ];
  const result: ScenarioResult = {
    id: "endpoints",
    title: "Endpoints: withdrawal latency, updates that change no announcement",
    rows,
    details: { runs },
  };
  const moved = runs.find((r) => r.addressChanges !== 0);
  if (moved) result.broken = `no-op updates changed ${moved.addressChanges} addresses`;
  return result;
}
