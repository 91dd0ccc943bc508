/**
 * Scenario: the cost of `--address-lifetime`. Two figures:
 *
 * - one renewal of N host addresses, the `ip -batch` of `address replace`
 *   lines the agent sends (renewalScript), timed alone with `perf stat -e
 *   task-clock` (CPU of the `ip` process, user and system);
 * - the average CPU share of an agent holding N addresses with
 *   `--address-lifetime` over a window of whole renewal intervals after its
 *   initial sync: `perf stat -p` on the agent (its `ip` children inherit the
 *   counters), with `--resync-interval=0` so that only renewals start `ip`.
 *   The agent's own idle cost is included: an upper bound.
 *
 * @module
 */

import { renewalIntervalMs } from "../../lib/agent/address_lifetime.ts";
import { batchScript, renewalScript } from "../../lib/kernel/iproute2.ts";
import type { BenchConfig } from "./config.ts";
import { convergeLimitMs, seededServices } from "./initial_sync.ts";
import { ExecCounter, metricsPort, scrape, spawnLogged, startBenchAgent } from "./processes.ts";
import type { Row, ScenarioResult } from "./report.ts";
import { IpBatch, Stage, within } from "./stage.ts";
import { acrossRuns } from "./stats.ts";
import { waitFor } from "../../test/support/wait.ts";

/** CPU milliseconds of one `ip -n NS -force -batch FILE`, by `perf stat`. */
async function ipBatchCpuMs(netns: string, file: string): Promise<number> {
  const perf = spawnLogged([
    "perf",
    "stat",
    "-x,",
    "-e",
    "task-clock",
    "--",
    "ip",
    "-n",
    netns,
    "-force",
    "-batch",
    file,
  ]);
  const st = await perf.status;
  if (!st.success) throw new Error(`perf stat ip -batch failed:\n${perf.tail()}`);
  const line = perf.lines.find((l) => l.split(",")[2]?.startsWith("task-clock"));
  const ms = line ? Number(line.split(",")[0]) : NaN;
  if (!Number.isFinite(ms)) throw new Error(`perf stat printed no task-clock:\n${perf.tail()}`);
  return ms;
}

/** One renewal of `n` addresses already held with a lifetime: CPU ms of the `ip` process. */
async function renewalRun(n: number, lifetimeSeconds: number): Promise<number> {
  const { addresses } = seededServices(Math.ceil(n / 2));
  const held = addresses.slice(0, n);
  await using stage = await Stage.create(`rn-${n}`);
  const add = new IpBatch(stage.ns.name);
  await add.write(batchScript({ add: held, remove: [] }, "lo", { lifetimeSeconds }));
  await add.close();
  const file = await Deno.makeTempFile({ prefix: "kube-gw-renewal-", suffix: ".batch" });
  try {
    await Deno.writeTextFile(file, renewalScript(held, "lo", lifetimeSeconds));
    const ms = await ipBatchCpuMs(stage.ns.name, file);
    const present = (await stage.ns.hostAddresses()).length;
    if (present !== n) throw new Error(`after the renewal ${present} of ${n} addresses are there`);
    return ms;
  } finally {
    await Deno.remove(file).catch(() => {});
  }
}

/** What the agent cost over the window. */
interface AgentShare {
  readonly windowMs: number;
  readonly cpuMs: number;
  readonly sharePercent: number;
  readonly execs: number;
  readonly renewals: number;
}

/** An agent holding `n` addresses with a lifetime, measured over `windowMs` after its sync. */
async function agentShare(
  cfg: BenchConfig,
  n: number,
  lifetimeSeconds: number,
  windowMs: number,
): Promise<AgentShare> {
  if (!await ExecCounter.available()) {
    throw new Error("perf stat with tracepoints is not available");
  }
  const { specs, addresses } = seededServices(Math.ceil(n / 2));
  await using stage = await Stage.create(`rna-${n}`, specs);
  const all = stage.monitor.waitForAll(addresses, "add");
  await using agent = startBenchAgent([
    ...stage.agentArgs(),
    `--address-lifetime=${lifetimeSeconds}s`,
    "--resync-interval=0",
  ], cfg);
  await within(all.done, convergeLimitMs(addresses.length), "agent initial sync");
  const port = await metricsPort(agent);
  const renewed = async () =>
    (await scrape(port)).get('kubegw_address_renewals_total{result="ok"}') ?? 0;
  const before = await renewed();
  const counter = await ExecCounter.attach(agent.pid);
  // The measuring window: whole renewal intervals of the running agent.
  await new Promise((r) => setTimeout(r, windowMs));
  const { execs, cpuMs } = await counter.count();
  // A renewal whose ip ran inside the window may still be finishing: count it once done.
  let renewals = 0;
  await waitFor(
    "the renewals of the window to be counted",
    async () => {
      renewals = (await renewed()) - before;
      return renewals >= execs;
    },
    15_000,
    100,
  ).catch(() => {});
  return { windowMs, cpuMs, sharePercent: (100 * cpuMs) / windowMs, execs, renewals };
}

/** Runs the scenario. */
export async function renewal(cfg: BenchConfig): Promise<ScenarioResult> {
  const { addresses: n, lifetimeSeconds, intervals } = cfg.renewal;
  const rows: Row[] = [];
  const once: number[] = [];
  for (let r = 0; r < cfg.runs; r++) once.push(await renewalRun(n, lifetimeSeconds));
  const intervalMs = renewalIntervalMs(lifetimeSeconds);
  const onceStats = acrossRuns(once);
  rows.push({
    scenario: "renewal",
    metric: `one renewal of ${n} addresses: CPU of the ip -batch process`,
    unit: "ms",
    value: onceStats,
    note: "perf stat -e task-clock ip -n NS -force -batch FILE (renewalScript's lines)",
  });
  rows.push({
    scenario: "renewal",
    metric: `that renewal every ${intervalMs / 1000}s (--address-lifetime ${lifetimeSeconds}s)`,
    unit: "percent",
    value: acrossRuns(once.map((ms) => (100 * ms) / intervalMs)),
    target: {
      text: "< 5% of one core",
      met: (100 * onceStats.worst) / intervalMs < 5,
    },
  });
  const agent = await agentShare(cfg, n, lifetimeSeconds, intervalMs * intervals);
  rows.push({
    scenario: "renewal",
    metric:
      `agent holding ${n} addresses, ${intervals} renewal intervals: CPU share (agent + its ip)`,
    unit: "percent",
    value: acrossRuns([agent.sharePercent]),
    target: { text: "< 5% of one core", met: agent.sharePercent < 5 },
    note: `perf stat -p AGENT over ${intervals * intervalMs / 1000}s, ` +
      `${agent.execs} ip processes, ${agent.renewals} renewals; --resync-interval=0`,
  });
  return {
    id: "renewal",
    title: "address lifetime renewal cost",
    rows,
    details: { onceCpuMs: once, agent },
  };
}
