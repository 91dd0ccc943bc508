/**
 * Scenario 5, API cost: the requests an idle agent makes to the API server,
 * counted by the fake API server (`FakeApiServer.requests`) from the agent's
 * start over a window, next to the prototype's over the same window. Several
 * agents run side by side, each with its own API server and namespace; each
 * is one run.
 *
 * The full run measures the whole ten minutes. A shorter window (the small
 * run) is extrapolated to ten minutes, and says so: for kube-gw from its
 * watch schedule (one paged LIST at start, then watches with `timeoutSeconds`
 * uniform in [300, 600): the first ends within ten minutes and is renewed from
 * its resource version, the second outlives the window, so 2 watches); for the
 * prototype from its measured pass time and its mean sleep of 5.5 s.
 *
 * @module
 */

import { NETWORK } from "./addresses.ts";
import type { BenchConfig } from "./config.ts";
import { seededServices } from "./initial_sync.ts";
import { type LoggedProcess, startBenchAgent, startPrototype } from "./processes.ts";
import type { Row, ScenarioResult } from "./report.ts";
import { sleep, Stage, within } from "./stage.ts";
import { acrossRuns } from "./stats.ts";

const TEN_MINUTES = 600_000;
/** The agent's LIST page size (lib/kube/list_watch.ts). */
const PAGE = 500;

interface Counted {
  readonly lists: number;
  readonly watches: number;
  /** The liveness probe's `GET /version`, every 30 s while a watch is open (lib/kube/probe.ts). */
  readonly probes: number;
  readonly total: number;
}

/** The liveness probe's period (lib/kube/client.ts). */
const PROBE_MS = 30_000;

function count(stage: Stage, from: number, windowMs: number): Counted {
  const seen = stage.api.requests.filter((r) => r.at >= from && r.at <= from + windowMs);
  const watches = seen.filter((r) => r.watch).length;
  const probes = seen.filter((r) => r.path === "/version").length;
  return { lists: seen.length - watches - probes, watches, probes, total: seen.length };
}

/** Runs scenario 5. */
export async function apiCost(cfg: BenchConfig): Promise<ScenarioResult> {
  const { services, windowMs, replicas } = cfg.apiCost;
  const { specs, addresses } = seededServices(services);
  const stages: Stage[] = [];
  const procs: LoggedProcess[] = [];
  try {
    for (let i = 0; i <= replicas; i++) stages.push(await Stage.create(`s5-${i}`, specs));
    const synced = stages.map((s) => s.monitor.waitForAll(addresses, "add").done);
    const starts: number[] = [];
    for (let i = 0; i < replicas; i++) {
      starts.push(performance.now());
      procs.push(startBenchAgent(stages[i].agentArgs(), cfg));
    }
    const protoStage = stages[replicas];
    starts.push(performance.now());
    const proto = startPrototype(protoStage.api.url, NETWORK, protoStage.ns.name);
    procs.push(proto);
    await within(Promise.all(synced), 60_000, "api cost: every agent and the prototype synced");
    await sleep(Math.max(0, starts[replicas] + windowMs - performance.now()) + 50);

    const agents = stages.slice(0, replicas).map((s, i) => count(s, starts[i], windowMs));
    const prototype = count(protoStage, starts[replicas], windowMs);
    const listRes = await fetch(`${protoStage.api.url}/api/v1/services`);
    const listBytes = (await listRes.text()).length;
    const passes = proto.lines.filter((l) => /^pass \d+ slept=/.test(l));
    const passMs = passes.map((l) => Number(/took=(\d+)/.exec(l)![1]));
    const meanPassMs = passMs.length ? passMs.reduce((a, b) => a + b, 0) / passMs.length : NaN;
    for (const p of procs) await p.stop();

    const pages = Math.max(1, Math.ceil(services / PAGE));
    const measuredTen = windowMs >= TEN_MINUTES;
    const agentTen = measuredTen
      ? acrossRuns(agents.map((a) => a.total))
      : acrossRuns(agents.map(() => pages + 2 + TEN_MINUTES / PROBE_MS));
    const protoTen = measuredTen ? prototype.total : TEN_MINUTES / (5500 + meanPassMs);
    const windowText = `${Math.round(windowMs / 1000)} s idle`;
    const scenario = "5 API cost";
    const measured = acrossRuns(agents.map((a) => a.total));
    const maxWatches = 1 + Math.floor(windowMs / 300_000);
    const maxProbes = Math.floor(windowMs / PROBE_MS);
    const idleOk = agents.every((a) =>
      a.lists === pages && a.watches <= maxWatches && a.probes <= maxProbes
    );
    const rows: Row[] = [
      {
        scenario,
        metric: `${services} Services, requests in ${windowText} (measured)`,
        unit: "requests",
        value: measured,
        compare: {
          label: "prototype",
          value: acrossRuns([prototype.total]),
          ratio: prototype.total / measured.median,
          ratioText: "prototype/kube-gw",
        },
        target: {
          text: "one LIST + one watch, renewed, + a probe per 30 s; no periodic LIST",
          met: idleOk,
        },
      },
      {
        scenario,
        metric: `LIST requests in ${windowText} (measured)`,
        unit: "requests",
        value: acrossRuns(agents.map((a) => a.lists)),
        compare: {
          label: "prototype",
          value: acrossRuns([prototype.lists]),
          ratio: prototype.lists / Math.max(1, agents[0].lists),
          ratioText: "prototype/kube-gw",
        },
      },
    ];
    if (!measuredTen) {
      rows.push({
        scenario,
        metric: "requests per 10 idle minutes",
        unit: "requests",
        value: agentTen,
        compare: {
          label: "prototype",
          value: acrossRuns([protoTen]),
          ratio: protoTen / agentTen.median,
          ratioText: "prototype/kube-gw",
        },
        note: "derived: watch schedule, probes; prototype 10 min / (5.5 s + mean pass)",
      });
    }
    rows.push({
      scenario,
      metric: "LIST bytes per 10 idle minutes",
      unit: "bytes",
      value: acrossRuns([pages * listBytes]),
      compare: {
        label: "prototype",
        value: acrossRuns([protoTen * listBytes]),
        ratio: protoTen / pages,
        ratioText: "prototype/kube-gw",
      },
      note: measuredTen ? "requests measured × list size" : "derived, as above",
    });
    return {
      id: "api_cost",
      title: `API cost (${services} Services, idle)`,
      rows,
      details: {
        windowMs,
        measuredTenMinutes: measuredTen,
        agents,
        prototype,
        prototypePassMs: passMs,
        listBytes,
        agentPerTenMinutes: agentTen.runs,
        prototypePerTenMinutes: protoTen,
      },
    };
  } finally {
    for (const p of procs) await p.stop("SIGKILL");
    for (const s of stages) await s.dispose();
  }
}
