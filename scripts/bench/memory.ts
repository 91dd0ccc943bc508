/**
 * Scenario 4, memory: the agent's peak (VmHWM) and steady (VmRSS after an idle
 * window) resident memory with N Services of two addresses each, next to what
 * the pieces under it take on their own: the Deno runtime with an empty
 * program, the client-node subpath the agent imports, the whole client-node
 * package, and every module of the agent loaded without running it. Every
 * probe runs with the agent's permission set (`-P=agent`).
 *
 * @module
 */

import type { BenchConfig } from "./config.ts";
import { seededServices, syncAgent } from "./initial_sync.ts";
import { metricsPort, procMemory, scrape, spawnLogged } from "./processes.ts";
import type { Row, ScenarioResult } from "./report.ts";
import { sleep, Stage } from "./stage.ts";
import { acrossRuns } from "./stats.ts";

const PROBES = [
  ["empty", "Deno runtime, empty program"],
  ["config_types", "+ import client-node/config_types (what the agent imports)"],
  ["client_node", "+ import all of client-node (not used)"],
  ["agent_modules", "+ every module of the agent, not running"],
] as const;

const ROOT = new URL("../../", import.meta.url).pathname;

async function probe(name: string): Promise<{ rss: number; hwm: number }> {
  await using p = spawnLogged([
    "deno",
    "run",
    "--quiet",
    "--no-prompt",
    "-P=agent",
    `${ROOT}scripts/bench/probes/${name}.ts`,
  ]);
  await p.waitForLine(/^ready/, 120_000);
  await sleep(300);
  return await procMemory(p.pid);
}

interface AgentMemory {
  readonly peak: number;
  readonly steady: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly external: number;
  readonly samples: number[];
}

async function agentRun(cfg: BenchConfig, n: number): Promise<AgentMemory> {
  const { specs, addresses } = seededServices(n);
  await using stage = await Stage.create(`s4-${n}`, specs, { slices: true });
  const { agent } = await syncAgent(cfg, stage, addresses);
  await using _ = agent;
  const port = await metricsPort(agent);
  const samples: number[] = [];
  const end = performance.now() + cfg.memory.idleMs;
  while (performance.now() < end) {
    samples.push((await procMemory(agent.pid)).rss);
    await sleep(Math.min(1000, cfg.memory.idleMs / 4));
  }
  const mem = await procMemory(agent.pid);
  const m = await scrape(port);
  await agent.stop();
  return {
    peak: mem.hwm,
    steady: mem.rss,
    heapUsed: heapMetric(m, "heap_used"),
    heapTotal: heapMetric(m, "heap_total"),
    external: heapMetric(m, "external"),
    samples,
  };
}

/**
 * A V8 memory figure from /metrics, under either naming the agent has used:
 * `kubegw_process_memory_bytes{kind="heap_used"}` or `kubegw_heap_used_bytes`.
 */
export function heapMetric(m: Map<string, number>, kind: string): number {
  return m.get(`kubegw_process_memory_bytes{kind="${kind}"}`) ??
    m.get(`kubegw_${kind === "external" ? "external_memory" : kind}_bytes`) ?? NaN;
}

/** Runs scenario 4. */
export async function memory(cfg: BenchConfig): Promise<ScenarioResult> {
  const scenario = "4 memory";
  const rows: Row[] = [];
  const details: Record<string, unknown> = {};
  for (const n of cfg.memory.sizes) {
    const runs: AgentMemory[] = [];
    for (let r = 0; r < cfg.runs; r++) runs.push(await agentRun(cfg, n));
    const limit = n === 100 ? 100 : n === 10_000 ? 150 : undefined;
    const peak = acrossRuns(runs.map((r) => r.peak));
    rows.push({
      scenario,
      metric: `agent, ${n} Services: peak RSS`,
      unit: "bytes",
      value: peak,
      target: limit !== undefined
        ? { text: `≤ ${limit} MB`, met: peak.worst <= limit * 1024 * 1024 }
        : undefined,
    });
    rows.push({
      scenario,
      metric: `agent, ${n} Services: steady RSS (after ${cfg.memory.idleMs / 1000} s idle)`,
      unit: "bytes",
      value: acrossRuns(runs.map((r) => r.steady)),
    });
    rows.push({
      scenario,
      metric: `agent, ${n} Services: V8 heap used (/metrics)`,
      unit: "bytes",
      value: acrossRuns(runs.map((r) => r.heapUsed)),
    });
    details[`agent_${n}`] = runs;
  }
  for (const [name, label] of PROBES) {
    const runs: { rss: number; hwm: number }[] = [];
    for (let r = 0; r < cfg.runs; r++) runs.push(await probe(name));
    rows.push({
      scenario,
      metric: `${label}: RSS`,
      unit: "bytes",
      value: acrossRuns(runs.map((r) => r.rss)),
    });
    details[`probe_${name}`] = runs;
  }
  return {
    id: "memory",
    title: "Memory (agent and the runtime pieces under it)",
    rows,
    details,
  };
}
