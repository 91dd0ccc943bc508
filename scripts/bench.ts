/**
 * `deno task bench`: convergence latency, initial sync at scale, churn,
 * memory and API cost of the agent, against the prototype's algorithm
 * (scripts/bench/prototype.ts) and the kernel floor (one `ip -batch`). Uses the
 * fake API server and the real `ip` in throwaway namespaces; needs root.
 *
 * Prints a table and writes bench-results.json. Exits non-zero when a scenario
 * breaks (an address never arrives, the kernel ends in the wrong state, a
 * process fails); missing a timing target never fails the run.
 *
 * Usage: deno task bench [--small] [--only ID,...] [--runs N] [--size N]
 *                        [--prototype-runs N] [--cpu-prof DIR] [--logs DIR] [--out FILE]
 *
 * `--size N`: one size for initial_sync, memory and endpoints (N Services).
 *
 * IDs: event_latency, initial_sync, churn, memory, api_cost, renewal, endpoints, fuzz,
 * route_mode, route_events, controller_fuzz; opt-in (only with --only): fabric_scale (the BGP
 * fabric with FRR, minutes at the full size).
 *
 * @module
 */

import { sweepStale } from "../test/support/procs/netns.ts";
import { apiCost } from "./bench/api_cost.ts";
import { type BenchConfig, FULL, SMALL } from "./bench/config.ts";
import { churn } from "./bench/churn.ts";
import { eventLatency } from "./bench/event_latency.ts";
import { fuzz } from "./bench/fuzz.ts";
import { controllerFuzz } from "./bench/controller_fuzz.ts";
import { initialSync } from "./bench/initial_sync.ts";
import { endpoints } from "./bench/endpoints.ts";
import { memory } from "./bench/memory.ts";
import { renewal } from "./bench/renewal.ts";
import { fabricScale } from "./bench/fabric_scale.ts";
import { routeEvents } from "./bench/route_events.ts";
import { routeMode } from "./bench/route_mode.ts";
import { killAll, readProc, spawnLogged } from "./bench/processes.ts";
import { formatTable, type ScenarioResult } from "./bench/report.ts";
import { disposeAll } from "./bench/stage.ts";
import { kubeGwCommand } from "../test/support/procs/agent.ts";

const ROOT = new URL("../", import.meta.url).pathname;

const SCENARIOS: Record<string, (cfg: BenchConfig) => Promise<ScenarioResult>> = {
  event_latency: eventLatency,
  initial_sync: initialSync,
  churn,
  memory,
  api_cost: apiCost,
  renewal,
  fuzz,
  endpoints,
  route_mode: routeMode,
  route_events: routeEvents,
  controller_fuzz: controllerFuzz,
  fabric_scale: fabricScale,
};

/** Scenarios run only when `--only` names them. */
const OPT_IN: ReadonlySet<string> = new Set(["fabric_scale"]);

interface Args {
  readonly config: BenchConfig;
  readonly only: readonly string[];
  readonly out: string;
}

function parseArgs(argv: readonly string[]): Args {
  let config: BenchConfig = FULL;
  let only = Object.keys(SCENARIOS).filter((id) => !OPT_IN.has(id));
  let out = `${ROOT}bench-results.json`;
  let runs: number | undefined;
  let size: number | undefined;
  let prototypeRuns: number | undefined;
  let cpuProfDir: string | undefined;
  let logDir: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case "--small":
        config = SMALL;
        break;
      case "--only":
        only = value().split(",").map((s) => s.trim()).filter(Boolean);
        for (const id of only) if (!(id in SCENARIOS)) throw new Error(`unknown scenario ${id}`);
        break;
      case "--runs":
        runs = Number(value());
        if (!Number.isInteger(runs) || runs < 1) throw new Error("--runs: a positive integer");
        break;
      case "--size":
        size = Number(value());
        if (!Number.isInteger(size) || size < 1) throw new Error("--size: a positive integer");
        break;
      case "--prototype-runs":
        prototypeRuns = Number(value());
        if (!Number.isInteger(prototypeRuns) || prototypeRuns < 0) {
          throw new Error("--prototype-runs: a whole number");
        }
        break;
      case "--cpu-prof":
        cpuProfDir = value();
        break;
      case "--logs":
        logDir = value();
        break;
      case "--out":
        out = value();
        break;
      default:
        throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (size !== undefined) {
    config = {
      ...config,
      initialSync: { sizes: [size] },
      routeMode: { sizes: [size] },
      memory: { ...config.memory, sizes: [size] },
      endpoints: {
        ...config.endpoints,
        services: Math.max(size, config.endpoints.withdrawals + 1),
      },
    };
  }
  if (prototypeRuns !== undefined) config = { ...config, prototypeRuns };
  return { config: { ...config, ...(runs ? { runs } : {}), cpuProfDir, logDir }, only, out };
}

async function text(path: string): Promise<string> {
  try {
    return await readProc(path);
  } catch {
    return "";
  }
}

async function machine(): Promise<Record<string, unknown>> {
  const cpuinfo = await text("/proc/cpuinfo");
  const mem = /^MemTotal:\s+(\d+) kB/m.exec(await text("/proc/meminfo"));
  const ipV = await new Deno.Command("ip", { args: ["-V"], stdout: "piped" }).output();
  return {
    nproc: navigator.hardwareConcurrency,
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "unknown",
    memTotalMB: mem ? Math.round(Number(mem[1]) / 1024) : undefined,
    kernel: (await text("/proc/sys/kernel/osrelease")).trim(),
    deno: Deno.version.deno,
    iproute2: new TextDecoder().decode(ipV.stdout).trim(),
    loadavgAtStart: (await text("/proc/loadavg")).trim(),
  };
}

async function cleanupAndExit(code: number): Promise<never> {
  await killAll();
  await disposeAll();
  Deno.exit(code);
}

async function main(): Promise<number> {
  const args = parseArgs(Deno.args);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => {
      console.error(`\n${sig}: stopping, removing namespaces`);
      cleanupAndExit(130);
    });
  }
  await sweepStale();
  const info = await machine();
  console.error(
    `kube-gw bench (${args.config.mode}): ${info.nproc} CPUs, ${info.cpu}, kernel ${info.kernel}`,
  );
  // The agent runs from dist/kube-gw.js (kubeGwCommand), which nothing else
  // rebuilds: a bundle left from older code measures that code, or hangs
  // where it lacks a watch a scenario waits for (EndpointSlices in scenario 6).
  const bundle = await new Deno.Command("deno", {
    args: ["run", "--quiet", "-P=build", "scripts/build.ts", "bundle"],
    cwd: ROOT,
    stdin: "null",
  }).output();
  if (!bundle.success) {
    throw new Error(`deno task bundle failed:\n${new TextDecoder().decode(bundle.stderr)}`);
  }
  // Warm Deno's module cache so the first measured start is not a cold one.
  const warm = spawnLogged([...kubeGwCommand(), "version"]);
  if (!(await warm.status).success) throw new Error(`kube-gw version failed:\n${warm.tail()}`);
  console.error(`agent: ${warm.stdout.trim()} (dist/kube-gw.js, rebuilt)`);

  const results: ScenarioResult[] = [];
  const started = performance.now();
  for (const id of args.only) {
    const t = performance.now();
    console.error(`== ${id}`);
    let result: ScenarioResult;
    try {
      result = await SCENARIOS[id](args.config);
    } catch (err) {
      console.error(`!! ${id} broke: ${(err as Error).stack ?? err}`);
      result = { id, title: id, rows: [], details: {}, broken: (err as Error).message };
      await killAll();
      await disposeAll();
    }
    results.push(result);
    if (result.rows.length > 0) console.error(formatTable(result.rows));
    console.error(`   ${id}: ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  const rows = results.flatMap((r) => r.rows);
  const broken = results.filter((r) => r.broken);
  const totalS = (performance.now() - started) / 1000;
  const summary = {
    mode: args.config.mode,
    date: new Date().toISOString(),
    machine: { ...info, loadavgAtEnd: (await text("/proc/loadavg")).trim() },
    config: args.config,
    durationSeconds: Math.round(totalS),
    scenarios: results,
  };
  await Deno.writeTextFile(args.out, JSON.stringify(summary, null, 2) + "\n");
  console.log(
    `\nkube-gw benchmarks (${args.config.mode}), ${info.nproc} CPUs (${info.cpu}), ` +
      `${new Date().toISOString().slice(0, 10)}, ${totalS.toFixed(0)} s\n`,
  );
  console.log(formatTable(rows));
  const missed = rows.filter((r) => r.target && !r.target.met).length;
  console.log(
    `\n${results.length - broken.length} scenarios completed, ${broken.length} broken; ` +
      `targets: ${rows.filter((r) => r.target?.met).length} met, ${missed} missed ` +
      `(timing targets never fail the run). Results: ${args.out}`,
  );
  for (const b of broken) console.log(`BROKEN ${b.id}: ${b.broken}`);
  return broken.length === 0 ? 0 : 1;
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main();
  } catch (err) {
    console.error(`bench: ${(err as Error).message}`);
    code = 2;
  }
  await cleanupAndExit(code);
}
