/**
 * Scenario `fuzz`: the fuzz run of
 * `test/support/procs/fuzz_run.ts` at the configured size, and the agent's peak
 * resident memory (VmHWM) for one large Service object (`fuzz.bigServiceMb`,
 * 5 MB in the full run) through the fake API server, next to the same agent
 * without it. Every figure is the agent process's, not this process's.
 *
 *   deno task bench --only fuzz            # 50,000 values, a 5 MB Service
 *   deno task bench --small --only fuzz    # 10,000 values, a 1 MB Service
 *
 * @module
 */

import { startAgent, writeKubeconfig } from "../../test/support/procs/agent.ts";
import { FakeApiServer } from "../../test/support/fakes/apiserver.ts";
import { peakRssOf, runFuzz } from "../../test/support/procs/fuzz_run.ts";
import { Netns } from "../../test/support/procs/netns.ts";
import type { BenchConfig } from "./config.ts";
import type { Row, ScenarioResult } from "./report.ts";
import { acrossRuns } from "./stats.ts";

const LIMIT = 200e6;

/** Peak RSS of an agent that gets one Service of about `mb` MB of externalIPs (0: none). */
async function bigService(mb: number): Promise<{ peak: number; ips: number; refused: boolean }> {
  await using ns = await Netns.create("big");
  await using api = await FakeApiServer.start();
  await using kc = await writeKubeconfig(api, {});
  api.create({ name: "small", externalIPs: ["10.64.0.1"] });
  await using agent = startAgent([
    "run",
    "--network=10.64.0.0/10",
    `--netns=${ns.name}`,
    `--kubeconfig=${kc.path}`,
    "--metrics-address=off",
    // Not about the announce gate: every desired address goes out, and there is no kube-proxy here.
    "--announce=always",
    "--kube-proxy-health=off",
  ]);
  await agent.waitForLine(/assuming address 10\.64\.0\.1$/, 60_000);
  const ips: string[] = [];
  for (let i = 2, bytes = 0; bytes < mb * 1e6; i++) {
    const s = `10.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
    ips.push(s);
    bytes += s.length + 3;
  }
  api.create({ name: "huge", externalIPs: ips.length ? ips : ["10.64.0.2"] });
  const line = await agent.waitForLine(
    /refusing externalIP .* of Service default\/huge|assuming address 10\.64\.0\.2$|assuming \d+ addresses /,
    120_000,
  );
  // The event is handled once it is logged; the peak is behind us.
  const peak = await peakRssOf(agent.pid);
  return { peak, ips: ips.length, refused: line.includes("refusing") };
}

/** Runs the fuzz scenario. */
export async function fuzz(cfg: BenchConfig): Promise<ScenarioResult> {
  const scenario = "fuzz";
  const rows: Row[] = [];
  const details: Record<string, unknown> = {};
  const runs = [];
  for (let r = 0; r < cfg.runs; r++) {
    runs.push(
      await runFuzz({
        seed: 9 + r,
        strings: cfg.fuzz.strings,
        services: cfg.fuzz.services,
        hugeChars: cfg.fuzz.hugeChars,
      }),
    );
  }
  const problems: string[] = [];
  for (const r of runs) {
    if (r.unexpectedAdds.length) problems.push(`unexpected adds: ${r.unexpectedAdds.slice(0, 5)}`);
    if (r.nonHostAdds.length) problems.push(`non-host adds: ${r.nonHostAdds.slice(0, 5)}`);
    if (r.final.join() !== [...r.corpus.expected].sort().join()) problems.push("final set differs");
    if (r.markerExists) problems.push("a shell ran a value");
    if (r.refusalLinesAfterResend || r.duplicateRefusals) problems.push("repeated warnings");
    if (r.strayLines.length) problems.push(`stray log lines: ${r.strayLines[0].slice(0, 80)}`);
    if (r.exitCode !== 0) problems.push(`exit ${r.exitCode}`);
  }
  const n = runs[0].corpus.strings;
  const peak = acrossRuns(runs.map((r) => r.peakRss));
  rows.push({
    scenario,
    metric: `agent, ${n} hostile values in ${cfg.fuzz.services} Services: peak RSS`,
    unit: "bytes",
    value: peak,
    target: { text: "< 200 MB", met: peak.worst < LIMIT },
  });
  rows.push({
    scenario,
    metric: `agent, ${n} hostile values: list, resend by WATCH, converge`,
    unit: "ms",
    value: acrossRuns(runs.map((r) => r.ms)),
  });
  rows.push({
    scenario,
    metric: `agent, ${n} hostile values: log lines`,
    unit: "count",
    value: acrossRuns(runs.map((r) => r.logLines)),
    target: {
      text: "≤ one per (Service, value) + addresses + 100",
      met: runs.every((r) => r.logLines <= r.corpus.refusable + 2 * r.corpus.expected.size + 100),
    },
  });
  details.fuzz = runs.map((r) => ({
    strings: r.corpus.strings,
    services: r.corpus.objects.length,
    expected: r.corpus.expected.size,
    refusalLines: r.refusalLines,
    logLines: r.logLines,
    longestLogLine: r.longestLogLine,
    peakRss: r.peakRss,
    ms: r.ms,
  }));
  const big = [];
  const base = [];
  for (let r = 0; r < cfg.runs; r++) {
    big.push(await bigService(cfg.fuzz.bigServiceMb));
    base.push(await bigService(0));
  }
  const bigPeak = acrossRuns(big.map((b) => b.peak));
  rows.push({
    scenario,
    metric: `agent, one ${cfg.fuzz.bigServiceMb} MB Service (${big[0].ips} externalIPs): peak RSS`,
    unit: "bytes",
    value: bigPeak,
    target: { text: "< 200 MB", met: bigPeak.worst < LIMIT },
    note: big[0].refused ? "refused whole: more than 1,000 externalIPs" : undefined,
  });
  rows.push({
    scenario,
    metric: "agent, the same without the large Service: peak RSS",
    unit: "bytes",
    value: acrossRuns(base.map((b) => b.peak)),
  });
  details.big = big;
  details.base = base;
  return {
    id: "fuzz",
    title: "Hostile input: fuzzed externalIPs and one large Service (agent process)",
    rows,
    details,
    ...(problems.length ? { broken: problems.join("; ") } : {}),
  };
}
