/**
 * Benchmarks of `kube-gw controller`, each against the fake API
 * server with the controller as a process (the bundle, with the shipped
 * permission flags):
 *
 * - **latency**: Service created → status written (the status write reaching
 *   the store, seen as the MODIFIED event the server sends), over N Services
 *   created one at a time, and over N created in one burst (queueing
 *   included). Targets p50 ≤ 20 ms, p99 ≤ 100 ms.
 * - **memory**: peak RSS (`VmHWM`) of a controller that allocated addresses
 *   to M existing Services. Target ≤ 100 MB with 10,000.
 * - **memory-held**: the same M Services already holding their addresses
 *   (a restart: list and rebuild, no writes), until the rebuild is logged.
 * - **takeover**: two controllers; the leader is killed (SIGKILL) and a Service
 *   created at once; time until the new leader wrote its status. Target
 *   within lease duration + retry period (17 s).
 * - **restart**: R Services holding their addresses, one controller (with
 *   leader election) restarted K times (SIGTERM, which releases the Lease; or
 *   SIGKILL, after which the next one waits for the Lease to expire);
 *   after each start, a Service is created as soon as `/readyz` answers, and
 *   timed until its status is written. A restart must not make a new Service
 *   wait longer than a decision and a write.
 *
 * Usage: deno run -P=bench scripts/bench/controller.ts [--services N] [--memory M]
 *          [--restart-services R] [--restarts K] [--restart-signal SIGTERM|SIGKILL] [--only a,b]
 * Needs `deno task bundle` first (dist/kube-gw.js). Diagnostics, with
 * `--allow-env=BENCH_DEBUG,BENCH_V8_FLAGS,BENCH_MALLOC_ARENA_MAX`: BENCH_DEBUG=1
 * prints the memory metrics after the memory run; BENCH_V8_FLAGS runs the
 * controller with `--v8-flags=...` in place of the shipped ones (`AGENT_V8_FLAG`); BENCH_MALLOC_ARENA_MAX
 * passes MALLOC_ARENA_MAX to it.
 *
 * @module
 */

import { FakeApiServer } from "../../test/support/fakes/apiserver.ts";
import {
  freePort,
  kubeGwCommand,
  LoggedProcess,
  startAgent,
  writeKubeconfig,
} from "../../test/support/procs/agent.ts";
import { waitFor } from "../../test/support/wait.ts";
import { waitReadyz } from "../../test/support/procs/status.ts";

const CLASS = "kube-gw.io/anycast";
/** The controller's environment besides PATH (BENCH_MALLOC_ARENA_MAX sets glibc's arena cap). */
const ENV: Record<string, string> = Deno.env.get("BENCH_MALLOC_ARENA_MAX")
  ? { MALLOC_ARENA_MAX: Deno.env.get("BENCH_MALLOC_ARENA_MAX")! }
  : {};

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function summary(ms: number[]): { n: number; p50: number; p99: number; max: number } {
  const s = [...ms].sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 100) / 100;
  return { n: s.length, p50: r(percentile(s, 50)), p99: r(percentile(s, 99)), max: r(s.at(-1)!) };
}

function hasIngress(obj: Record<string, unknown>): boolean {
  const st = obj.status as { loadBalancer?: { ingress?: unknown[] } } | undefined;
  return (st?.loadBalancer?.ingress?.length ?? 0) > 0;
}

async function startController(
  kubeconfig: string,
  extra: string[],
): Promise<{ proc: LoggedProcess; port: number }> {
  const port = freePort();
  const v8 = Deno.env.get("BENCH_V8_FLAGS");
  const start = v8
    ? (args: string[], env: Record<string, string>) => {
      // In place of the shipped V8 flags (AGENT_V8_FLAG), not besides them.
      const [deno, run, ...rest] = kubeGwCommand().filter((a) => !a.startsWith("--v8-flags="));
      return new LoggedProcess([deno, run, `--v8-flags=${v8}`, ...rest, ...args], { env });
    }
    : startAgent;
  const proc = start([
    "controller",
    `--kubeconfig=${kubeconfig}`,
    "--pool=10.64.0.0/16",
    `--metrics-address=127.0.0.1:${port}`,
    "--log-level=warning",
    ...extra,
  ], ENV);
  await waitReadyz(port, 60_000);
  return { proc, port };
}

async function peakRss(pid: number): Promise<number> {
  const out = await new Deno.Command("cat", { args: [`/proc/${pid}/status`] }).output();
  const m = /VmHWM:\s+(\d+) kB/.exec(new TextDecoder().decode(out.stdout));
  return m ? Number(m[1]) * 1024 : NaN;
}

async function latency(n: number) {
  const api = await FakeApiServer.start();
  await using kc = await writeKubeconfig(api);
  const written = new Map<string, number>();
  api.onEventWritten = (type, obj, at) => {
    const md = obj.metadata as { name: string };
    if (type === "MODIFIED" && hasIngress(obj) && !written.has(md.name)) written.set(md.name, at);
  };
  const { proc } = await startController(kc.path, ["--leader-elect=false"]);
  try {
    const created = new Map<string, number>();
    // One at a time: each Service alone in the queue.
    for (let i = 0; i < n; i++) {
      const name = `one-${i}`;
      created.set(name, performance.now());
      api.create({ name, namespace: "bench", type: "LoadBalancer", loadBalancerClass: CLASS });
      await waitFor(`${name} written`, () => written.has(name), 10_000, 1);
    }
    const oneAtATime = [...created].map(([name, t]) => written.get(name)! - t);
    // A burst: n Services created in one go.
    const burstCreated = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const name = `burst-${i}`;
      burstCreated.set(name, performance.now());
      api.create({ name, namespace: "bench", type: "LoadBalancer", loadBalancerClass: CLASS });
    }
    await waitFor(
      "the burst written",
      () => [...burstCreated.keys()].every((k) => written.has(k)),
      60_000,
      20,
    );
    const burst = [...burstCreated].map(([name, t]) => written.get(name)! - t);
    return { oneAtATime: summary(oneAtATime), burst: summary(burst) };
  } finally {
    await proc.stop("SIGKILL");
    await api.close();
  }
}

/** `held`: the Services already hold their addresses (a restart: list and rebuild, no writes). */
async function memory(m: number, held = false) {
  const api = await FakeApiServer.start();
  await using kc = await writeKubeconfig(api);
  api.seed(
    Array.from({ length: m }, (_, i) => ({
      name: `svc-${i}`,
      namespace: `ns-${i % 100}`,
      type: "LoadBalancer",
      loadBalancerClass: CLASS,
      ports: [{ port: 443, protocol: "TCP", targetPort: 8443 }],
      ...(held
        ? {
          status: {
            loadBalancer: { ingress: [{ ip: `10.64.${i >> 8}.${i & 255}`, ipMode: "VIP" }] },
          },
        }
        : {}),
    })),
  );
  const start = performance.now();
  const { proc, port } = await startController(kc.path, ["--leader-elect=false"]);
  try {
    if (held) {
      // Rebuilt: the pool-use gauge counts every held address.
      await waitFor(
        `${m} addresses rebuilt`,
        async () => {
          const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
          const used = /^kubegw_lb_pool_used_addresses\{[^}]*\} (\d+)/m.exec(text);
          return Number(used?.[1] ?? 0) >= m;
        },
        300_000,
        200,
      );
      // Then every Service is decided once (no write is needed): give it a moment.
      await new Promise((r) => setTimeout(r, 2000));
    } else {
      await waitFor(
        `${m} Services written`,
        () => api.clientWrites({ resource: "services", subresource: "status" }).length >= m,
        300_000,
        500,
      );
    }
    const allocatedMs = Math.round(performance.now() - start);
    if (Deno.env.get("BENCH_DEBUG")) {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      const text = await res.text();
      console.error(
        text.split("\n").filter((l) =>
          /^(kubegw_heap|kubegw_external|process_res|kubegw_lb_events)/.test(l)
        ).join("\n"),
      );
      console.error(`log lines: ${proc.lines.length}`, proc.lines.slice(0, 5));
    }
    return {
      services: m,
      ...(held
        ? { held: true, statusWrites: api.clientWrites({ resource: "services" }).length }
        : {}),
      peakRssMB: Math.round((await peakRss(proc.pid)) / 1e5) / 10,
      allocatedMs,
    };
  } finally {
    await proc.stop("SIGKILL");
    await api.close();
  }
}

async function takeover() {
  const api = await FakeApiServer.start();
  await using kc = await writeKubeconfig(api);
  const a = await startController(kc.path, []);
  const b = await startController(kc.path, []);
  try {
    const holder = () =>
      (api.get("leases", "kube-gw-controller", "kube-system")?.spec as
        | { holderIdentity?: string }
        | undefined)?.holderIdentity;
    await waitFor("a leader", () => !!holder(), 20_000);
    // Which process leads: the one whose log names the holder.
    const leader = [a, b].find((c) =>
      c.proc.lines.some((l) => l.includes(`leader as ${holder()}`))
    ) ??
      a;
    let writtenAt = 0;
    api.onEventWritten = (type, obj, at) => {
      if (
        type === "MODIFIED" && (obj.metadata as { name: string }).name === "after" &&
        hasIngress(obj)
      ) {
        writtenAt ||= at;
      }
    };
    const killed = performance.now();
    await leader.proc.stop("SIGKILL");
    api.create({
      name: "after",
      namespace: "bench",
      type: "LoadBalancer",
      loadBalancerClass: CLASS,
    });
    await waitFor("the new leader's first allocation", () => writtenAt > 0, 60_000, 10);
    return { killedToFirstAllocationMs: Math.round(writtenAt - killed), targetMs: 17_000 };
  } finally {
    await a.proc.stop("SIGKILL");
    await b.proc.stop("SIGKILL");
    await api.close();
  }
}

/** The R Services of `restart`, each holding its address in its status. */
function heldServices(r: number) {
  return Array.from({ length: r }, (_, i) => ({
    name: `svc-${i}`,
    namespace: `ns-${i % 100}`,
    type: "LoadBalancer",
    loadBalancerClass: CLASS,
    ports: [{ port: 443, protocol: "TCP", targetPort: 8443 }],
    status: { loadBalancer: { ingress: [{ ip: `10.64.${i >> 8}.${i & 255}`, ipMode: "VIP" }] } },
  }));
}

async function restart(r: number, k: number, signal: Deno.Signal) {
  const api = await FakeApiServer.start();
  await using kc = await writeKubeconfig(api);
  api.seed(heldServices(r));
  const written = new Map<string, number>();
  api.onEventWritten = (type, obj, at) => {
    const md = obj.metadata as { name: string };
    if (type === "MODIFIED" && hasIngress(obj) && !written.has(md.name)) written.set(md.name, at);
  };
  const runs = [];
  for (let i = 0; i < k; i++) {
    const started = performance.now();
    const { proc } = await startController(kc.path, ["--log-level=info"]);
    const readyMs = performance.now() - started;
    const name = `after-${i}`;
    const created = performance.now();
    api.create({ name, namespace: "bench", type: "LoadBalancer", loadBalancerClass: CLASS });
    try {
      await waitFor(`${name} written`, () => written.has(name), 180_000, 5);
    } catch (err) {
      console.error(proc.lines.slice(-30).join("\n"));
      throw err;
    }
    const ms = written.get(name)! - created;
    const lines = proc.lines.filter((l) => /leader|rebuilt|first list|WARN|ERROR/.test(l));
    runs.push({ readyMs: Math.round(readyMs), newServiceMs: Math.round(ms) });
    if (ms > 5000) console.error(`restart ${i}: ${Math.round(ms)} ms\n${lines.join("\n")}`);
    await proc.stop(signal);
  }
  await api.close();
  return { services: r, signal, runs, worstMs: Math.max(...runs.map((x) => x.newServiceMs)) };
}

if (import.meta.main) {
  let n = 1000;
  let m = 10_000;
  let r = 20_000;
  let k = 6;
  let signal: Deno.Signal = "SIGTERM";
  let only = ["latency", "memory", "memory-held", "takeover", "restart"];
  for (let i = 0; i < Deno.args.length; i++) {
    const [flag, inline] = Deno.args[i].split(/=(.*)/s, 2);
    const value = () => inline ?? Deno.args[++i];
    if (flag === "--services") n = Number(value());
    else if (flag === "--memory") m = Number(value());
    else if (flag === "--restart-services") r = Number(value());
    else if (flag === "--restarts") k = Number(value());
    else if (flag === "--restart-signal") signal = value() as Deno.Signal;
    else if (flag === "--only") only = value().split(",");
    else throw new Error(`unknown argument ${flag}`);
  }
  const results: Record<string, unknown> = {};
  if (only.includes("latency")) results.latency = await latency(n);
  if (only.includes("memory")) results.memory = await memory(m);
  if (only.includes("memory-held")) results.memoryHeld = await memory(m, true);
  if (only.includes("takeover")) results.takeover = await takeover();
  if (only.includes("restart")) results.restart = await restart(r, k, signal);
  console.log(JSON.stringify(results, null, 2));
}
