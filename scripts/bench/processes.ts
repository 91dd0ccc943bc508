/**
 * Processes the benchmark starts and measures: the agent (started exactly as
 * the README does, through `kubeGwCommand()`), the prototype, and `perf stat`
 * counting the agent's execs. Also /proc and /metrics readers.
 *
 * @module
 */

import { kubeGwCommand, LoggedProcess } from "../../test/support/procs/agent.ts";

export { LoggedProcess };

const ROOT = new URL("../../", import.meta.url).pathname;
const decoder = new TextDecoder();

/** Every process still running, so an interrupt can stop them. */
const live = new Set<LoggedProcess>();

/** Kills every process this module started that still runs. */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop("SIGKILL")));
}

/** Starts a process, logged and known to {@linkcode killAll} until it exits. */
export function spawnLogged(argv: readonly string[], keepLines = true): LoggedProcess {
  const p = new LoggedProcess(argv, { keepLines });
  live.add(p);
  p.status.finally(() => live.delete(p));
  return p;
}

/** Where to keep profiles and logs of the agents, when asked to. */
export interface AgentDiagnostics {
  /** Write a V8 CPU profile of every agent into this directory (`--cpu-prof`). */
  readonly cpuProfDir?: string;
  /** Write every agent's log to `agent-PID.log` in this directory when it exits. */
  readonly logDir?: string;
}

/**
 * Starts the agent the way the README does (`deno run -P=agent main.ts`).
 * With `diag.cpuProfDir`, `--cpu-prof` goes right after `run` (profiling only).
 */
export function startBenchAgent(
  args: readonly string[],
  diag: AgentDiagnostics = {},
): LoggedProcess {
  const [deno, run, ...rest] = kubeGwCommand();
  const prof = diag.cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${diag.cpuProfDir}`] : [];
  const agent = spawnLogged([deno, run, ...prof, ...rest, ...args]);
  if (diag.logDir) {
    const path = `${diag.logDir}/agent-${agent.pid}.log`;
    agent.status.then(() => Deno.writeTextFile(path, agent.lines.join("\n") + "\n")).catch(
      () => {},
    );
  }
  return agent;
}

/** Starts the prototype (scripts/bench/prototype.ts) with the permissions it needs. */
export function startPrototype(
  server: string,
  network: string,
  netns: string,
): LoggedProcess {
  return spawnLogged([
    "deno",
    "run",
    "--quiet",
    "--no-prompt",
    "--allow-net=127.0.0.1",
    "--allow-run=ip",
    `${ROOT}scripts/bench/prototype.ts`,
    "--server",
    server,
    "--network",
    network,
    "--netns",
    netns,
    "--interface",
    "lo",
  ]);
}

/** Memory figures of a process from /proc/PID/status, in bytes. */
export interface ProcMemory {
  readonly rss: number;
  /** Peak RSS (VmHWM). */
  readonly hwm: number;
}

/**
 * Reads a file under /proc. Deno grants /proc only with --allow-all, so the
 * benchmark asks `cat` instead of widening its own permissions.
 */
export async function readProc(path: string): Promise<string> {
  if (!path.startsWith("/proc/")) throw new Error(`not a /proc path: ${path}`);
  const out = await new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) throw new Error(`cat ${path}: ${decoder.decode(out.stderr).trim()}`);
  return decoder.decode(out.stdout);
}

/** Reads VmRSS and VmHWM of a running process. */
export async function procMemory(pid: number): Promise<ProcMemory> {
  const text = await readProc(`/proc/${pid}/status`);
  const kb = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text);
    if (!m) throw new Error(`/proc/${pid}/status has no ${key}`);
    return Number(m[1]) * 1024;
  };
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

/** Whole-machine CPU time counters from /proc/stat, in clock ticks. */
export interface CpuTimes {
  readonly busy: number;
  readonly total: number;
}

/** Reads the machine's CPU counters (all CPUs). */
export async function cpuTimes(): Promise<CpuTimes> {
  const line = (await readProc("/proc/stat")).split("\n").find((l) => l.startsWith("cpu "));
  if (!line) throw new Error("/proc/stat has no cpu line");
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0); // user … steal; guest is in user
  const idle = f[3] + f[4]; // idle + iowait
  return { busy: total - idle, total };
}

/** The share of the machine's CPU time that was busy between two readings (0–1). */
export function busyShare(a: CpuTimes, b: CpuTimes): number {
  return (b.busy - a.busy) / Math.max(1, b.total - a.total);
}

/** Parses Prometheus text into `name{labels}` → value. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const sp = line.lastIndexOf(" ");
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

/** Fetches the agent's /metrics. */
export async function scrape(port: number): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (!res.ok) throw new Error(`/metrics: HTTP ${res.status}`);
  return parseMetrics(await res.text());
}

/** The sum of `kubegw_reconciles_total` over its results. */
export function reconciles(
  m: Map<string, number>,
): { total: number; byResult: Record<string, number> } {
  const byResult: Record<string, number> = {};
  let total = 0;
  for (const [k, v] of m) {
    const r = /^kubegw_reconciles_total\{result="(\w+)"\}$/.exec(k);
    if (r) {
      byResult[r[1]] = v;
      total += v;
    }
  }
  return { total, byResult };
}

/** The port of the agent's status server, from its log. */
export async function metricsPort(agent: LoggedProcess, timeoutMs = 15_000): Promise<number> {
  const line = await agent.waitForLine(/serving metrics on [^ ]*:\d+/, timeoutMs);
  return Number(/:(\d+)\s*$/.exec(line.trim())![1]);
}

/** CPU time (user + system) of one process, not counting its children, in ms. */
export async function processCpuMs(pid: number): Promise<number> {
  const stat = await readProc(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of /proc/PID/stat (utime, stime), in clock ticks of 10 ms.
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** What `perf stat` counted for a process and the children it started while attached. */
export interface PerfCounts {
  /** Processes started (sched_process_exec). */
  readonly execs: number;
  /** CPU time of the process and those children (task-clock), in ms. */
  readonly cpuMs: number;
}

/**
 * Counts a process's child execs and CPU time with `perf stat`; children
 * inherit the counters, so every `ip` the agent runs is included.
 */
export class ExecCounter {
  private constructor(readonly proc: LoggedProcess) {}

  /** Whether `perf stat` with tracepoints works here. */
  static async available(): Promise<boolean> {
    try {
      const out = await new Deno.Command("perf", {
        args: ["stat", "-x,", "-e", "sched:sched_process_exec", "--", "/bin/true"],
        stdout: "null",
        stderr: "piped",
      }).output();
      return out.success && /sched:sched_process_exec/.test(decoder.decode(out.stderr));
    } catch {
      return false;
    }
  }

  /** Attaches to `pid`; counts from about 300 ms after the call. */
  static async attach(pid: number): Promise<ExecCounter> {
    const proc = spawnLogged([
      "perf",
      "stat",
      "-x,",
      "-e",
      "sched:sched_process_exec,task-clock",
      "-p",
      String(pid),
    ]);
    await new Promise((r) => setTimeout(r, 300));
    return new ExecCounter(proc);
  }

  /** Detaches and returns what was counted. */
  async count(): Promise<PerfCounts> {
    await this.proc.stop("SIGINT");
    const value = (event: string) => {
      const line = this.proc.lines.find((l) => l.split(",")[2]?.startsWith(event));
      const n = line ? Number(line.split(",")[0]) : NaN;
      if (!Number.isFinite(n)) {
        throw new Error(`perf stat printed no ${event}:\n${this.proc.tail()}`);
      }
      return n;
    };
    return { execs: value("sched:sched_process_exec"), cpuMs: value("task-clock") };
  }
}
