/**
 * One fuzz run, shared by the e2e test (small) and the
 * bench (full size): the corpus of `fuzz_corpus.ts` seeded into the fake API
 * server, the agent as a process (the shipped flags: `--allow-run=ip` only) on
 * a throwaway namespace, `ip monitor address` watching the interface for the
 * whole run. The corpus is listed at start, then every Service is sent again
 * by WATCH (MODIFIED, values reversed). Returns what was seen; the caller
 * asserts or reports.
 *
 * @module
 */

import { startAgent, writeKubeconfig } from "./agent.ts";
import { FakeApiServer } from "../fakes/apiserver.ts";
import {
  FUZZ_NETWORKS,
  type FuzzCorpus,
  fuzzCorpus,
  type FuzzOptions,
  SENTINEL,
} from "../fakes/fuzz_corpus.ts";
import { type AddressEvent, AddressMonitor } from "./address_monitor.ts";
import { Netns } from "./netns.ts";

/** A second sentinel, for the end of the WATCH phase. */
const SENTINEL2 = "10.0.100.255";

/** What one fuzz run saw. */
export interface FuzzResult {
  readonly corpus: FuzzCorpus;
  /** Addresses the monitor saw added that are not in `corpus.expected` (nor a sentinel). */
  readonly unexpectedAdds: readonly string[];
  /** Addresses added with a prefix that is not a host prefix. */
  readonly nonHostAdds: readonly string[];
  /** The managed addresses at the end, sentinels left out, sorted. */
  readonly final: readonly string[];
  /** Whether the marker file a shell would create exists. */
  readonly markerExists: boolean;
  /** `refusing ...` lines at the first list, and new ones after every Service was sent again. */
  readonly refusalLines: number;
  readonly refusalLinesAfterResend: number;
  /** Refusal lines that appeared more than once. */
  readonly duplicateRefusals: number;
  readonly logLines: number;
  readonly longestLogLine: number;
  /** Lines that do not start as the agent's lines do (a forged or split line). */
  readonly strayLines: readonly string[];
  /** The agent's peak resident memory (VmHWM), in bytes. */
  readonly peakRss: number;
  readonly exitCode: number;
  /** From the agent's start to the last sentinel, in milliseconds. */
  readonly ms: number;
}

/** VmHWM of a process, read by a helper `deno eval` (the test's own set cannot read /proc). */
export async function peakRssOf(pid: number): Promise<number> {
  const out = await new Deno.Command("deno", {
    args: ["eval", `console.log(Deno.readTextFileSync("/proc/${pid}/status"))`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const m = /^VmHWM:\s+(\d+) kB/m.exec(new TextDecoder().decode(out.stdout));
  if (!m) throw new Error(`no VmHWM for pid ${pid}: ${new TextDecoder().decode(out.stderr)}`);
  return Number(m[1]) * 1024;
}

/** Runs the agent on a corpus; cleans up everything it started, whatever happens. */
export async function runFuzz(
  options: Omit<FuzzOptions, "marker">,
  agentArgs: readonly string[] = [],
  agentEnv: Record<string, string> = {},
): Promise<FuzzResult> {
  const marker = `/tmp/kube-gw-fuzz-${Deno.pid}-${options.seed}`;
  await Deno.remove(marker).catch(() => {});
  const corpus = fuzzCorpus({ ...options, marker });
  await using ns = await Netns.create("fuzz");
  await using api = await FakeApiServer.start();
  await using kc = await writeKubeconfig(api, {});
  api.seedObjects("services", corpus.objects);
  // Every address change on the interface, from before the agent starts to after it stopped.
  await using changes = await AddressMonitor.start(ns.name);
  const t0 = performance.now();
  await using agent = startAgent([
    "run",
    `--network=${FUZZ_NETWORKS.join(",")}`,
    `--netns=${ns.name}`,
    `--kubeconfig=${kc.path}`,
    "--metrics-address=off",
    // Not about the announce gate: every desired address goes out, and there is no kube-proxy here.
    "--announce=always",
    "--kube-proxy-health=off",
    ...agentArgs,
  ], agentEnv);
  const refusal = /WARN refusing externalIP /;
  await agent.waitForLine(/first list complete/, 60_000);
  // The sentinel gets a plan, and a line, of its own: a large first plan is logged as one summary.
  if (corpus.expected.size > 0) await agent.waitForLine(/ INFO assuming /, 60_000);
  api.create({ name: "sentinel", externalIPs: [SENTINEL] });
  await agent.waitForLine(
    new RegExp(`assuming address ${SENTINEL.replaceAll(".", "\\.")}$`),
    60_000,
  );
  const refusalLines = agent.lines.filter((l) => refusal.test(l)).length;
  // Every Service again, by WATCH: nothing new may be logged.
  for (const obj of corpus.objects) {
    const spec = obj.spec as Record<string, unknown> | undefined;
    const ips = spec?.externalIPs;
    api.replaceObject(
      "services",
      Array.isArray(ips) ? { ...obj, spec: { ...spec, externalIPs: [...ips].reverse() } } : obj,
    );
  }
  api.update({ name: "sentinel", externalIPs: [SENTINEL2] });
  await agent.waitForLine(
    new RegExp(`assuming address ${SENTINEL2.replaceAll(".", "\\.")}$`),
    60_000,
  );
  const ms = performance.now() - t0;
  const peakRss = await peakRssOf(agent.pid);
  const exitCode = (await agent.stop("SIGTERM")).code;
  const final = (await ns.hostAddresses()).filter((a) => a !== SENTINEL && a !== SENTINEL2);
  // Once the marker is through, every change the agent made is in the history.
  await changes.sync();
  const added = changes.history.filter((e) => !e.deleted);
  const refusals = agent.lines.filter((l) => refusal.test(l));
  const sentinels = new Set([SENTINEL, SENTINEL2]);
  const prefixOk = (a: AddressEvent) => a.prefixLength === (a.address.includes(":") ? 128 : 32);
  const stamp = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARN|ERROR|FATAL) /;
  return {
    corpus,
    unexpectedAdds: added.filter((a) =>
      !corpus.expected.has(a.address) && !sentinels.has(a.address)
    )
      .map((a) => a.address),
    nonHostAdds: added.filter((a) => !prefixOk(a)).map((a) => `${a.address}/${a.prefixLength}`),
    final,
    markerExists: await Deno.stat(marker).then(() => true, () => false),
    refusalLines,
    refusalLinesAfterResend: refusals.length - refusalLines,
    duplicateRefusals: refusals.length - new Set(refusals.map((l) => l.slice(25))).size,
    logLines: agent.lines.length,
    longestLogLine: Math.max(...agent.lines.map((l) => l.length)),
    strayLines: agent.lines.filter((l) => !stamp.test(l)).slice(0, 5),
    peakRss,
    exitCode,
    ms,
  };
}
