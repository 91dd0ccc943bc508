/**
 * Scenario 3, churn: with N Services present and synced, Services are updated
 * at a steady rate for a while. Updates cycle through three kinds: add a fresh
 * external IP, change one original IP to a fresh one, remove one original IP.
 * Every fresh address is new and never removed, every original one is removed
 * at most once, so each kernel change belongs to exactly one update.
 *
 * Lag of an update: from the watch event being written to the monitor
 * reporting the last kernel change the update implies. Convergence: from the
 * last update's event to the last kernel change of all. The `ip` processes
 * the agent spawned in the churn window are counted from outside with
 * `perf stat -e sched:sched_process_exec -p PID` (children inherit the
 * counter); reconciles come from the agent's /metrics.
 *
 * The floor, in the same run: the same updates at the same rate, written as
 * `ip -batch` lines to one long-lived `ip -force -batch -` process (no agent,
 * no process per change) on a namespace holding the same addresses; lag from
 * the write of the update's lines to the kernel's report.
 *
 * The runs take {@linkcode ChurnOptions}: scenario `route_events` drives the
 * same churn against an agent in route mode (and a floor writing the same
 * route lines), at its own size.
 *
 * @module
 */

import { addBatch, addressAt, BLOCK } from "./addresses.ts";
import type { BenchConfig } from "./config.ts";
import type { Watched } from "./monitor.ts";
import { heldRoutes, ROUTE } from "./route_mode.ts";
import { routeBatchScript } from "../../lib/kernel/route_store.ts";
import { seededServices, syncAgent } from "./initial_sync.ts";
import {
  busyShare,
  cpuTimes,
  ExecCounter,
  metricsPort,
  parseMetrics,
  processCpuMs,
  reconciles,
  scrape,
} from "./processes.ts";
import type { Row, ScenarioResult } from "./report.ts";
import { allAdded, IpBatch, service, sleep, Stage, within } from "./stage.ts";
import { waitReadyz } from "../../test/support/procs/status.ts";
import { acrossRuns, type Distribution, distribution } from "./stats.ts";

/** What driving a churn measured (agent or floor). */
export interface Driven {
  readonly updates: number;
  readonly achievedPerSecond: number;
  readonly lag: Distribution;
  readonly convergeMs: number;
  /** Lag p99 per second of churn, to show whether lag builds up. */
  readonly p99PerSecond: number[];
  /** Share of the whole machine's CPU busy during the churn (every process, ours or not). */
  readonly cpuBusy: number;
  /** Kernel address changes the updates implied (adds + removals). */
  readonly changes: number;
  /** CPU time of the `ip` processes applying them (perf task-clock), or null without perf. */
  readonly ipCpuMs: number | null;
}

/** How a churn run holds the addresses, and its size. */
export interface ChurnOptions {
  /** `address` (the default mode) or `route` (`--install-as route`). */
  readonly mode: Watched;
  readonly size: BenchConfig["churn"];
}

/** What a namespace holds in `mode`: host addresses on lo, or kube-gw's routes. */
function held(stage: Stage, mode: Watched): Promise<string[]> {
  return mode === "route" ? heldRoutes(stage.ns.name) : stage.ns.hostAddresses();
}

/** One churn run of the agent. */
export interface ChurnRun extends Driven {
  readonly reconciles: number;
  readonly reconcilesByResult: Record<string, number>;
  /** Reconcile durations: upper bound (s) → count, from /metrics, over the whole run. */
  readonly reconcileSeconds: Record<string, number>;
  /** `ip` processes the agent started in the window (perf), or null without perf. */
  readonly ipProcesses: number | null;
  /** CPU time of the agent itself in the window (its children not included). */
  readonly agentCpuMs: number;
  /** Time the agent spent in reconciles (plan + waiting for `ip`) in the window. */
  readonly reconcileMs: number;
  /** How long the exec counter was attached. */
  readonly windowMs: number;
}

interface Expect {
  readonly ip: string;
  readonly kind: "add" | "del";
}

/** The state of one Service during churn. */
export interface ChurnService {
  readonly name: string;
  /** Original addresses not yet changed or removed. */
  originals: string[];
  /** Current external IPs. */
  ips: string[];
}

/**
 * The next update for a Service: kind by `k mod 3`, falling back to adding a
 * fresh IP when no original is left. Mutates `svc`; returns the kernel changes.
 */
export function nextUpdate(svc: ChurnService, k: number, fresh: () => string): Expect[] {
  const kind = svc.originals.length === 0 ? 0 : k % 3;
  if (kind === 0) {
    const f = fresh();
    svc.ips = [...svc.ips, f];
    return [{ ip: f, kind: "add" }];
  }
  const old = svc.originals.shift()!;
  if (kind === 1) {
    const f = fresh();
    svc.ips = svc.ips.map((ip) => ip === old ? f : ip);
    return [{ ip: f, kind: "add" }, { ip: old, kind: "del" }];
  }
  svc.ips = svc.ips.filter((ip) => ip !== old);
  return [{ ip: old, kind: "del" }];
}

/**
 * Drives the churn against a stage: `apply` makes one update happen and
 * resolves with its start time (t0). Returns when every change was seen.
 */
async function drive(
  opts: ChurnOptions,
  stage: Stage,
  addresses: readonly string[],
  apply: (svc: ChurnService, expect: readonly Expect[]) => Promise<number>,
): Promise<{ driven: Driven; want: Set<string> }> {
  const { services: n, perSecond, seconds } = opts.size;
  const svcs: ChurnService[] = [];
  for (let i = 0; i < n; i++) {
    const ips = [addresses[2 * i], addresses[2 * i + 1]];
    svcs.push({ name: `svc-${i}`, originals: [...ips], ips: [...ips] });
  }
  let freshSeq = 0;
  const fresh = () => addressAt(BLOCK.fresh, freshSeq++);
  const total = perSecond * seconds;
  const outcomes: Promise<{ t0: number; t1: number }>[] = [];
  let changes = 0;
  const cpu0 = await cpuTimes();
  const start = performance.now();
  let k = 0;
  while (k < total) {
    const due = Math.min(total, Math.floor((performance.now() - start) * perSecond / 1000) + 1);
    for (; k < due; k++) {
      const svc = svcs[k % n];
      const expect = nextUpdate(svc, k, fresh);
      changes += expect.length;
      const now = performance.now();
      const seen = expect.map((e) => stage.monitor.waitFor(e.ip, e.kind, now));
      const started = apply(svc, expect);
      outcomes.push(
        Promise.all([started, ...seen]).then(([t0, ...ts]) => ({ t0, t1: Math.max(...ts) })),
      );
    }
    await sleep(4);
  }
  const sent = performance.now();
  const results = await within(Promise.all(outcomes), 60_000, "churn: kernel changes");
  const cpuBusy = busyShare(cpu0, await cpuTimes());
  const lastEvent = results[results.length - 1].t0;
  let lastChange = 0;
  for (const r of results) lastChange = Math.max(lastChange, r.t1);
  const perSec: number[][] = [];
  for (const r of results) (perSec[Math.floor((r.t0 - start) / 1000)] ??= []).push(r.t1 - r.t0);
  const want = new Set(svcs.flatMap((s) => s.ips));
  const have = await held(stage, opts.mode);
  const unwanted = have.filter((a) => !want.has(a));
  if (have.length !== want.size || unwanted.length > 0) {
    throw new Error(
      `after churn the namespace holds ${have.length} addresses, ${want.size} wanted (${unwanted.length} unwanted)`,
    );
  }
  return {
    driven: {
      updates: total,
      achievedPerSecond: total / ((sent - start) / 1000),
      lag: distribution(results.map((r) => r.t1 - r.t0)),
      convergeMs: lastChange - lastEvent,
      p99PerSecond: [...perSec].map((l) => distribution(l ?? []).p99),
      cpuBusy,
      changes,
      ipCpuMs: null,
    },
    want,
  };
}

function histogram(m: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  let prev = 0;
  for (const [k, v] of m) {
    const b = /^kubegw_reconcile_duration_seconds_bucket\{le="([^"]+)"\}$/.exec(k);
    if (!b) continue;
    out[b[1]] = v - prev;
    prev = v;
  }
  return out;
}

/** One run of the agent under churn; `perf` counts its `ip` processes. */
export async function churnAgentRun(
  cfg: BenchConfig,
  perf: boolean,
  opts: ChurnOptions = { mode: "address", size: cfg.churn },
): Promise<ChurnRun> {
  const { specs, addresses } = seededServices(opts.size.services);
  await using stage = await Stage.create(
    `s3${opts.mode[0]}-${opts.size.services}`,
    specs,
    opts.mode === "route" ? { args: ["--install-as=route"], watch: "route" } : {},
  );
  const { agent } = await syncAgent(
    cfg,
    stage,
    addresses,
    async () => (await held(stage, opts.mode)).length,
  );
  await using _ = agent;
  const port = await metricsPort(agent);
  await waitReadyz(port, 30_000);
  const m0 = await scrape(port);
  const before = reconciles(m0);
  const counter = perf ? await ExecCounter.attach(agent.pid) : undefined;
  const agentCpu0 = await processCpuMs(agent.pid);
  const windowStart = performance.now();
  const { driven } = await drive(opts, stage, addresses, (svc) => {
    stage.api.update(service(svc.name, svc.ips));
    return stage.whenWritten(stage.api.resourceVersion);
  }).catch((err) => {
    throw new Error(`${err.message}\n${agent.tail()}`);
  });
  const agentCpuMs = await processCpuMs(agent.pid) - agentCpu0;
  const counts = counter ? await counter.count() : undefined;
  const windowMs = performance.now() - windowStart;
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = parseMetrics(text);
  const after = reconciles(m);
  const reconcileSum = (x: Map<string, number>) =>
    x.get("kubegw_reconcile_duration_seconds_sum") ?? NaN;
  await agent.stop();
  const byResult: Record<string, number> = {};
  for (const key of Object.keys(after.byResult)) {
    byResult[key] = after.byResult[key] - (before.byResult[key] ?? 0);
  }
  return {
    ...driven,
    reconciles: after.total - before.total,
    reconcilesByResult: byResult,
    reconcileSeconds: histogram(m),
    ipProcesses: counts?.execs ?? null,
    ipCpuMs: counts ? counts.cpuMs - agentCpuMs : null,
    agentCpuMs,
    reconcileMs: (reconcileSum(m) - reconcileSum(m0)) * 1000,
    windowMs,
  };
}

/** The batch lines of these changes: addresses on lo, or route mode's routes. */
function floorLines(mode: Watched, add: readonly string[], remove: readonly string[]): string {
  if (mode === "route") return routeBatchScript({ add, remove }, ROUTE);
  return addBatch(add) + remove.map((a) => `address del ${a}/32 dev lo\n`).join("");
}

/** The same churn written as `ip -batch` lines to one long-lived `ip`: the floor. */
export async function churnFloorRun(
  cfg: BenchConfig,
  perf: boolean,
  opts: ChurnOptions = { mode: "address", size: cfg.churn },
): Promise<Driven> {
  const { addresses } = seededServices(opts.size.services);
  await using stage = await Stage.create(`s3f${opts.mode[0]}-${opts.size.services}`, [], {
    watch: opts.mode,
  });
  const seeded = stage.monitor.waitForAll(addresses, "add");
  const batch = new IpBatch(stage.ns.name);
  try {
    await batch.write(floorLines(opts.mode, addresses, []));
    await allAdded(
      stage.monitor,
      seeded,
      addresses.length,
      async () => (await held(stage, opts.mode)).length,
      120_000,
      "churn floor: seeding",
    );
    const counter = perf ? await ExecCounter.attach(batch.pid) : undefined;
    const { driven } = await drive(opts, stage, addresses, (_svc, expect) => {
      const t0 = performance.now();
      const add = expect.filter((e) => e.kind === "add").map((e) => e.ip);
      const remove = expect.filter((e) => e.kind === "del").map((e) => e.ip);
      batch.write(floorLines(opts.mode, add, remove));
      return Promise.resolve(t0);
    });
    const counts = counter ? await counter.count() : undefined;
    return { ...driven, ipCpuMs: counts?.cpuMs ?? null };
  } finally {
    await batch.close().catch(() => {});
  }
}

/** Runs scenario 3. */
export async function churn(cfg: BenchConfig): Promise<ScenarioResult> {
  const perf = await ExecCounter.available();
  const runs: ChurnRun[] = [];
  const floors: Driven[] = [];
  for (let r = 0; r < cfg.runs; r++) {
    runs.push(await churnAgentRun(cfg, perf));
    floors.push(await churnFloorRun(cfg, perf));
  }
  const { services, perSecond, seconds } = cfg.churn;
  const scenario = "3 churn";
  const what = `${services} Services, ${perSecond}/s for ${seconds} s`;
  const vsFloor = (value: ReturnType<typeof acrossRuns>, f: ReturnType<typeof acrossRuns>) => ({
    label: "floor" as const,
    value: f,
    ratio: value.median / f.median,
    ratioText: "kube-gw/floor",
  });
  const p50 = acrossRuns(runs.map((r) => r.lag.p50));
  const p99 = acrossRuns(runs.map((r) => r.lag.p99));
  const conv = acrossRuns(runs.map((r) => r.convergeMs));
  const rows: Row[] = [
    {
      scenario,
      metric: `${what}: lag p50`,
      unit: "ms",
      value: p50,
      compare: vsFloor(p50, acrossRuns(floors.map((f) => f.lag.p50))),
    },
    {
      scenario,
      metric: `${what}: lag p99`,
      unit: "ms",
      value: p99,
      compare: vsFloor(p99, acrossRuns(floors.map((f) => f.lag.p99))),
      target: { text: "p99 ≤ 250 ms", met: p99.median <= 250 },
    },
    {
      scenario,
      metric: "converged after churn stops",
      unit: "ms",
      value: conv,
      compare: vsFloor(conv, acrossRuns(floors.map((f) => f.convergeMs))),
      target: { text: "≤ 1 s", met: conv.median <= 1000 },
    },
    {
      scenario,
      metric: "reconciles (/metrics)",
      unit: "count",
      value: acrossRuns(runs.map((r) => r.reconciles)),
    },
  ];
  if (perf) {
    // The agent re-reads the interface at every resync (README: default 30 s):
    // one `ip -json` read per resync on top of one `ip -batch` per reconcile.
    const resyncs = (r: ChurnRun) => Math.ceil(r.windowMs / 30_000);
    rows.push({
      scenario,
      metric: "ip processes spawned (perf exec count)",
      unit: "count",
      value: acrossRuns(runs.map((r) => r.ipProcesses ?? NaN)),
      target: {
        text: "≤ reconciles (+ 1 read per 30 s resync)",
        met: runs.every((r) => (r.ipProcesses ?? Infinity) <= r.reconciles + resyncs(r)),
      },
    });
  }
  if (perf) {
    const perChange = (d: Driven) => (d.ipCpuMs ?? NaN) / d.changes;
    const ipc = acrossRuns(runs.map(perChange));
    rows.push({
      scenario,
      metric: "ip + kernel CPU per address change",
      unit: "ms",
      value: ipc,
      compare: vsFloor(ipc, acrossRuns(floors.map(perChange))),
      note: "perf task-clock minus the agent's own CPU",
    });
    rows.push({
      scenario,
      metric: "agent's own CPU per update",
      unit: "ms",
      value: acrossRuns(runs.map((r) => r.agentCpuMs / r.updates)),
    });
  }
  rows.push({
    scenario,
    metric: "whole machine CPU busy during churn (context)",
    unit: "percent",
    value: acrossRuns(runs.map((r) => 100 * r.cpuBusy)),
    compare: {
      label: "floor",
      value: acrossRuns(floors.map((f) => 100 * f.cpuBusy)),
      ratio: NaN,
      ratioText: "",
    },
  });
  return {
    id: "churn",
    title: `Churn (${what})`,
    rows,
    details: {
      ipProcessCount: perf
        ? "perf stat -e sched:sched_process_exec -p AGENT_PID over the churn window"
        : "perf unavailable: not counted; see reconciles",
      runs,
      floor: floors,
    },
  };
}
