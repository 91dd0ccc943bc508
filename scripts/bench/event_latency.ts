/**
 * Scenario 1, event latency: Services created one after another (one external
 * IP each), then deleted one after another. Each event's latency runs from
 * the moment the fake API server wrote it to the agent's watch stream to the
 * moment this process read the kernel's report of the address change.
 *
 * kube-gw: every create waits for its address before the next one.
 * Prototype: it polls every 1–10 s, so a sequential run would take hours; a
 * sample of events is issued at random (exponential) gaps instead, so they
 * land at random points of its sleep, and each one's latency is measured from
 * its create (or delete) call: there is no watch to write to.
 *
 * {@linkcode latencyRun} measures an agent in either mode: scenario
 * `route_events` runs it in route mode beside address mode.
 *
 * @module
 */

import { addressAt, BLOCK, NETWORK } from "./addresses.ts";
import type { BenchConfig } from "./config.ts";
import type { Watched } from "./monitor.ts";
import { metricsPort, startBenchAgent, startPrototype } from "./processes.ts";
import { waitReadyz } from "../../test/support/procs/status.ts";
import type { Row, ScenarioResult } from "./report.ts";
import { K8S_NAMESPACE, service, sleep, Stage, within } from "./stage.ts";
import { acrossRuns, type Distribution, distribution } from "./stats.ts";

/** Event latencies of one run. */
export interface RunLatency {
  readonly create: Distribution;
  readonly delete: Distribution;
  readonly all: Distribution;
}

/**
 * One run of the agent: `cfg.latency.events` creates, then as many deletes,
 * each waiting for its change; `mode` is how the agent holds the addresses.
 * @default mode "address"
 */
export async function latencyRun(
  cfg: BenchConfig,
  opts: { readonly mode: Watched } = { mode: "address" },
): Promise<RunLatency> {
  await using stage = await Stage.create(
    opts.mode === "route" ? "s1r" : "s1",
    [],
    opts.mode === "route" ? { args: ["--install-as=route"], watch: "route" } : {},
  );
  await using agent = startBenchAgent(stage.agentArgs(), cfg);
  await waitReadyz(await metricsPort(agent), 30_000);
  const create: number[] = [];
  const del: number[] = [];
  for (let i = 0; i < cfg.latency.events; i++) {
    const ip = addressAt(BLOCK.seeded, i);
    const seen = stage.monitor.waitFor(ip, "add", performance.now());
    stage.api.create(service(`lat-${i}`, [ip]));
    const t0 = await stage.whenWritten(stage.api.resourceVersion);
    const t1 = await within(seen, 10_000, `address ${ip} after its create`);
    create.push(t1 - t0);
  }
  for (let i = 0; i < cfg.latency.events; i++) {
    const ip = addressAt(BLOCK.seeded, i);
    const gone = stage.monitor.waitFor(ip, "del", performance.now());
    stage.api.delete(`lat-${i}`, K8S_NAMESPACE);
    const t0 = await stage.whenWritten(stage.api.resourceVersion);
    const t1 = await within(gone, 10_000, `removal of ${ip} after its delete`);
    del.push(t1 - t0);
  }
  const status = await agent.stop();
  if (!status.success && status.signal !== "SIGTERM") {
    throw new Error(`agent exited with ${status.code}:\n${agent.tail()}`);
  }
  return {
    create: distribution(create),
    delete: distribution(del),
    all: distribution([...create, ...del]),
  };
}

function exponential(meanMs: number): number {
  return -Math.log(1 - Math.random()) * meanMs;
}

async function prototypeRun(cfg: BenchConfig): Promise<RunLatency> {
  await using stage = await Stage.create("s1p");
  await using proto = startPrototype(stage.api.url, NETWORK, stage.ns.name);
  const n = cfg.latency.prototypeEvents;
  const measure = async (kind: "add" | "del") => {
    const pending: Promise<number>[] = [];
    for (let i = 0; i < n; i++) {
      await sleep(exponential(cfg.latency.prototypeMeanGapMs));
      const ip = addressAt(BLOCK.seeded, i);
      const t0 = performance.now();
      const seen = stage.monitor.waitFor(ip, kind, t0);
      if (kind === "add") stage.api.create(service(`lat-${i}`, [ip]));
      else stage.api.delete(`lat-${i}`, K8S_NAMESPACE);
      pending.push(
        within(seen, 60_000, `prototype: ${kind} of ${ip}`).then((t1) => t1 - t0),
      );
    }
    return await Promise.all(pending);
  };
  const create = await measure("add");
  const del = await measure("del");
  await proto.stop();
  return {
    create: distribution(create),
    delete: distribution(del),
    all: distribution([...create, ...del]),
  };
}

/** Runs scenario 1. */
export async function eventLatency(cfg: BenchConfig): Promise<ScenarioResult> {
  const agent: RunLatency[] = [];
  for (let r = 0; r < cfg.runs; r++) agent.push(await latencyRun(cfg));
  const proto: RunLatency[] = [];
  for (let r = 0; r < cfg.prototypeRuns; r++) proto.push(await prototypeRun(cfg));
  const scenario = `1 event latency`;
  const n = cfg.latency.events;
  const rows: Row[] = (["p50", "p99", "max"] as const).map((q) => {
    const value = acrossRuns(agent.map((a) => a.all[q]));
    const pv = acrossRuns(proto.map((p) => p.all[q]));
    const target = q === "p50"
      ? { text: "p50 ≤ 10 ms", met: value.median <= 10 }
      : q === "p99"
      ? { text: "p99 ≤ 50 ms", met: value.median <= 50 }
      : undefined;
    return {
      scenario,
      metric: `${q}, ${n} creates + ${n} deletes`,
      unit: "ms",
      value,
      compare: {
        label: "prototype",
        value: pv,
        ratio: pv.median / value.median,
        ratioText: "prototype/kube-gw",
      },
      target,
    };
  });
  rows[0] = {
    ...rows[0],
    note: `prototype: ${cfg.latency.prototypeEvents} + ${cfg.latency.prototypeEvents} sampled`,
  };
  return {
    id: "event_latency",
    title: "Event latency (watch event written → kernel reports the address change)",
    rows,
    details: { agentRuns: agent, prototypeRuns: proto },
  };
}
