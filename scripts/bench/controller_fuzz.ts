/**
 * Scenario `controller_fuzz`: the LoadBalancer controller's fuzz run
 * (`test/support/procs/controller_fuzz_run.ts`) at the configured size, as a
 * process behind the fake API server: hostile pools.yaml documents up to a
 * megabyte (alias bombs, deep nesting, 256 pools of 64 CIDRs, 100,000 keys,
 * every wrong type), Services with hostile annotations, ports and shapes,
 * contested claims at start, and edits while it runs. Every figure is the
 * controller process's.
 *
 *   deno task bench --only controller_fuzz            # 1,000 Services, 2,000 edits, 60 documents
 *   deno task bench --small --only controller_fuzz    # 150 Services, 200 edits, 40 documents
 *
 * @module
 */

import { runControllerFuzz } from "../../test/support/procs/controller_fuzz_run.ts";
import type { BenchConfig } from "./config.ts";
import type { Row, ScenarioResult } from "./report.ts";
import { acrossRuns } from "./stats.ts";

/** Runs the controller fuzz scenario. */
export async function controllerFuzz(cfg: BenchConfig): Promise<ScenarioResult> {
  const scenario = "controller_fuzz";
  const size = cfg.controllerFuzz;
  const runs = [];
  for (let r = 0; r < cfg.runs; r++) {
    runs.push(await runControllerFuzz({ seed: 17 + r, ...size }));
  }
  const problems: string[] = [];
  for (const r of runs) {
    if (r.violations.length) problems.push(`address on two Services: ${r.violations[0]}`);
    if (r.finalViolations.length) problems.push(`at the end: ${r.finalViolations[0]}`);
    if (r.unexplained.length) problems.push(`refusal without an Event: ${r.unexplained[0]}`);
    const silent = r.pools.filter((p) => p.outcome === "no answer");
    if (silent.length) problems.push(`pools edit neither applied nor refused: ${silent[0].kind}`);
    if (r.exitCode !== 0) problems.push(`exit ${r.exitCode}`);
  }
  const what = `${size.services} Services, ${size.edits} edits, ${size.poolsDocs} pools.yaml`;
  const slowest = runs.map((r) => Math.max(...r.pools.map((p) => p.ms)));
  const slowKind = runs[0].pools.reduce((a, b) => (b.ms > a.ms ? b : a));
  const rows: Row[] = [
    {
      scenario,
      metric: `controller, ${what}: peak RSS`,
      unit: "bytes",
      value: acrossRuns(runs.map((r) => r.peakRss)),
      target: { text: "≤ 200 MB", met: runs.every((r) => r.peakRss <= 200e6) },
    },
    {
      scenario,
      metric: "controller: slowest pools.yaml (≤ 1 MiB) refused or applied",
      unit: "ms",
      value: acrossRuns(slowest),
      target: { text: "≤ 1 s", met: slowest.every((ms) => ms <= 1000) },
      note: `${slowKind.kind}, ${slowKind.bytes} bytes (first run)`,
    },
    {
      scenario,
      metric: "controller: /healthz polls that failed (every 100 ms, whole run)",
      unit: "count",
      value: acrossRuns(runs.map((r) => r.healthz.failures)),
      target: { text: "0", met: runs.every((r) => r.healthz.failures === 0) },
    },
    {
      scenario,
      metric: "controller: slowest /healthz answer",
      unit: "ms",
      value: acrossRuns(runs.map((r) => r.healthz.maxMs)),
    },
    {
      scenario,
      metric: "controller: an address on two Services outside a sharing key",
      unit: "count",
      value: acrossRuns(runs.map((r) => r.violations.length + r.finalViolations.length)),
      target: {
        text: "0",
        met: runs.every((r) => !r.violations.length && !r.finalViolations.length),
      },
    },
    {
      scenario,
      metric: "controller: refusals without their Event",
      unit: "count",
      value: acrossRuns(runs.map((r) => r.unexplained.length)),
      target: { text: "0", met: runs.every((r) => r.unexplained.length === 0) },
    },
    {
      scenario,
      metric: "controller: Events posted a second, busiest 10 s",
      unit: "count",
      value: acrossRuns(runs.map((r) => r.eventRate10s)),
      target: { text: "≤ 10", met: runs.every((r) => r.eventRate10s <= 10) },
    },
    {
      scenario,
      metric: `controller, ${what}: from start to every Warning told`,
      unit: "ms",
      value: acrossRuns(runs.map((r) => r.ms)),
    },
  ];
  return {
    id: scenario,
    title: "Hostile input to the LoadBalancer controller: pools.yaml, annotations, Service shapes",
    rows,
    details: {
      runs: runs.map((r) => ({
        services: r.services,
        steps: r.steps,
        withAddress: r.withAddress,
        withoutAddress: r.withoutAddress,
        failures: r.failures,
        statusWrites: r.statusWrites,
        eventsPosted: r.eventsPosted,
        busiestEventSecond: r.busiestEventSecond,
        refusalsPastBurst: r.refusalsPastBurst,
        healthz: r.healthz,
        pools: r.pools,
        violations: r.violations.slice(0, 20),
        unexplained: r.unexplained.slice(0, 20),
      })),
    },
    ...(problems.length ? { broken: problems.join("; ") } : {}),
  };
}
