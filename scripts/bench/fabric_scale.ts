/**
 * Scenario `fabric_scale` (opt-in: `--only fabric_scale`; it takes minutes and
 * needs FRR): route mode at scale on the BGP test fabric
 * (test/support/fabric/fabric.ts). One gateway's agent, `--install-as route`,
 * holds N Services × 2 addresses; its FRR (scripts/router/frr-gateway-route.conf,
 * zebra with the netlink buffer docs/router.md gives it) announces them to
 * the leaf. Measured: agent start → every route in the gateway's kernel (the
 * agent's sync); the sync → every route in the leaf's kernel (target: within
 * 10 s for 100,000); `kube-gw drain` → none left on the leaf; the RSS of
 * zebra and bgpd on the gateway and the leaf, which must still run at the end.
 *
 * @module
 */

import { addressAt, BLOCK, NETWORK } from "./addresses.ts";
import type { BenchConfig } from "./config.ts";
import { seededServices } from "./initial_sync.ts";
import { AddressMonitor } from "./monitor.ts";
import { procMemory } from "./processes.ts";
import type { Row, ScenarioResult } from "./report.ts";
import { allAdded } from "./stage.ts";
import { acrossRuns } from "./stats.ts";
import { Fabric } from "../../test/support/fabric/fabric.ts";
import { FrrRouter } from "../../test/support/fabric/frr.ts";
import { FakeApiServer } from "../../test/support/fakes/apiserver.ts";
import { runKubeGw, writeKubeconfig } from "../../test/support/procs/agent.ts";

interface DaemonMemory {
  readonly rss: number;
  readonly hwm: number;
}

interface ScaleRun {
  readonly routes: number;
  /** Agent spawn → the last route in gw1's kernel. */
  readonly syncMs: number;
  /** The last route in gw1's kernel → the last one in the leaf's. */
  readonly leafMs: number;
  /** `kube-gw drain` started → the leaf holds none of them. */
  readonly drainMs: number;
  /** Where `ip monitor` lost part of a burst (times are then its last report). */
  readonly monitorLost: readonly string[];
  /** `router daemon` → memory, read after the routes reached the leaf. */
  readonly memory: Record<string, DaemonMemory>;
}

async function frrMemory(fabric: Fabric, label: string): Promise<Record<string, DaemonMemory>> {
  const router = fabric.router(label);
  if (!(router instanceof FrrRouter)) throw new Error(`${label} runs no FRR`);
  const pids = await router.pids();
  const out: Record<string, DaemonMemory> = {};
  for (const d of ["zebra", "bgpd"]) {
    if (!pids[d]) throw new Error(`${label}: no pid file of ${d}`);
    // Throws when the daemon is gone: it must have stayed up.
    out[`${label} ${d}`] = await procMemory(pids[d]).catch((cause) => {
      throw new Error(`${label}: ${d} (pid ${pids[d]}) is not running`, { cause });
    });
  }
  return out;
}

/** Routes of the bench's network in a namespace of the fabric (`ip route show root`). */
async function routesIn(fabric: Fabric, label: string, proto: string): Promise<number> {
  const out = await fabric.ip(label, "route", "show", "root", NETWORK, "proto", proto);
  return out.split("\n").filter((l) => l.trim() !== "").length;
}

/**
 * Resolves with the time `pred` held on the leaf's monitor; if the monitor
 * lost part of a burst (quiet for 2 s without `pred`), with the time of its
 * last event once `counted()` says the kernel is there (`lost` set).
 */
async function onLeaf(
  fabric: Fabric,
  pred: (size: number) => boolean,
  counted: () => Promise<boolean>,
  what: string,
  limitMs: number,
): Promise<{ at: number; lost: boolean }> {
  const monitor = fabric.monitor;
  let stopped = false;
  const poll = async () => {
    let seen = monitor.history.length;
    let quietSince = performance.now();
    while (!stopped) {
      await new Promise((r) => setTimeout(r, 500));
      if (monitor.history.length !== seen) {
        seen = monitor.history.length;
        quietSince = performance.now();
      } else if (performance.now() - quietSince >= 2000) {
        if (await counted()) return { at: monitor.history.at(-1)?.at ?? 0, lost: true };
        quietSince = performance.now();
      }
    }
    return await new Promise<never>(() => {});
  };
  const seen = monitor.waitFor((fib) => pred(fib.size), limitMs, what)
    .then((at) => ({ at, lost: false }))
    .catch((err: Error) => {
      throw new Error(`${err.message.slice(0, 300)}…; the leaf has ${monitor.fib.size}`);
    });
  try {
    return await Promise.race([seen, poll()]);
  } finally {
    stopped = true;
  }
}

async function scaleRun(n: number): Promise<ScaleRun> {
  const { specs, addresses } = seededServices(n);
  const first = addressAt(BLOCK.seeded, 0);
  await using fabric = await Fabric.start({ installAs: "route" });
  const api = await FakeApiServer.start();
  try {
    api.seed(specs);
    await using kc = await writeKubeconfig(api, {});
    // The gateway's FRR announces the bench's network too (its prefix list names the fabric's).
    await (fabric.router("gw1") as FrrRouter).vtysh(
      "configure terminal",
      `ip prefix-list KUBE-GW-SERVICES seq 20 permit ${NETWORK} ge 32`,
    );
    await using gwRoutes = await AddressMonitor.start(fabric.ns("gw1"), undefined, "route");
    const onGateway = gwRoutes.waitForAll(addresses, "add");
    const base = fabric.monitor.fib.size;
    const leafHas = onLeaf(
      fabric,
      (size) => size >= base + addresses.length,
      async () => await routesIn(fabric, "leaf", "bgp") >= addresses.length,
      `${addresses.length} routes on the leaf`,
      limit(n),
    );
    const t0 = performance.now();
    const agent = await fabric.startAgent("gw1", kc.path, [
      "--install-as=route",
      `--network=${NETWORK}`,
      "--announce=always",
    ]);
    const sync = await allAdded(
      gwRoutes,
      onGateway,
      addresses.length,
      () => routesIn(fabric, "gw1", "200"),
      limit(n),
      "the agent's sync on gw1",
    ).catch((err) => {
      throw new Error(`${err.message}\n${agent.tail()}`);
    });
    const synced = sync.at;
    const leafSeen = await leafHas;
    const onLeafAt = leafSeen.at;
    if (await routesIn(fabric, "leaf", "bgp") !== addresses.length) {
      throw new Error(`the leaf does not hold exactly the ${addresses.length} routes`);
    }
    if (!fabric.monitor.fib.has(`${first}/32`)) throw new Error(`the leaf lacks ${first}/32`);
    const memory = {
      ...(await frrMemory(fabric, "gw1")),
      ...(await frrMemory(fabric, "leaf")),
    };
    assertEstablished(await (fabric.router("leaf") as FrrRouter).vtysh("show bgp summary json"));

    const kept = fabric.monitor.fib.size - addresses.length;
    const drained = onLeaf(
      fabric,
      (size) => size <= kept,
      async () => await routesIn(fabric, "leaf", "bgp") === 0,
      "the leaf without the routes",
      limit(n),
    );
    await agent.stop("SIGTERM");
    const d0 = performance.now();
    const drain = await runKubeGw([
      "drain",
      `--network=${NETWORK}`,
      `--netns=${fabric.ns("gw1")}`,
      "--install-as=route",
    ]);
    if (drain.code !== 0) throw new Error(`drain failed: ${drain.stderr}`);
    const drainSeen = await drained;
    const drainedAt = drainSeen.at;
    // Still up after the withdrawal of every route.
    await frrMemory(fabric, "gw1");
    await frrMemory(fabric, "leaf");
    return {
      routes: addresses.length,
      syncMs: synced - t0,
      leafMs: Math.max(0, onLeafAt - synced),
      drainMs: drainedAt - d0,
      monitorLost: [sync.lost && "gw1", leafSeen.lost && "leaf", drainSeen.lost && "drain"]
        .filter((x): x is string => typeof x === "string"),
      memory,
    };
  } finally {
    await api.close();
  }
}

/** Generous bound for a broken run, not a slow one. */
function limit(n: number): number {
  return Math.max(60_000, n * 2);
}

function assertEstablished(summaryJson: string): void {
  const summary = JSON.parse(summaryJson) as {
    ipv4Unicast?: { peers?: Record<string, { state: string }> };
  };
  const peers = Object.entries(summary.ipv4Unicast?.peers ?? {});
  const down = peers.filter(([, p]) => p.state !== "Established");
  if (peers.length !== 2 || down.length > 0) {
    throw new Error(`leaf BGP sessions: ${JSON.stringify(summary.ipv4Unicast?.peers)}`);
  }
}

/** Runs scenario `fabric_scale`. */
export async function fabricScale(cfg: BenchConfig): Promise<ScenarioResult> {
  const n = cfg.fabricScale.services;
  const runs: ScaleRun[] = [];
  for (let r = 0; r < cfg.fabricScale.runs; r++) runs.push(await scaleRun(n));
  const scenario = "F fabric scale";
  const what = `${2 * n} routes from gw1 (FRR)`;
  const leaf = acrossRuns(runs.map((r) => r.leafMs));
  const rows: Row[] = [
    {
      scenario,
      metric: `${what}: agent start → all in gw1's kernel (the sync)`,
      unit: "ms",
      value: acrossRuns(runs.map((r) => r.syncMs)),
    },
    {
      scenario,
      metric: `${what}: the sync → all on the leaf`,
      unit: "ms",
      value: leaf,
      target: 2 * n >= 100_000 ? { text: "≤ 10 s", met: leaf.median <= 10_000 } : undefined,
    },
    {
      scenario,
      metric: `${what}: kube-gw drain → none on the leaf`,
      unit: "ms",
      value: acrossRuns(runs.map((r) => r.drainMs)),
    },
  ];
  for (const key of Object.keys(runs[0].memory)) {
    rows.push({
      scenario,
      metric: `${what}: ${key} RSS with every route (VmRSS; stayed up)`,
      unit: "bytes",
      value: acrossRuns(runs.map((r) => r.memory[key].rss)),
    });
    rows.push({
      scenario,
      metric: `${what}: ${key} peak RSS (VmHWM)`,
      unit: "bytes",
      value: acrossRuns(runs.map((r) => r.memory[key].hwm)),
    });
  }
  return {
    id: "fabric_scale",
    title: "Route mode on the BGP fabric at scale (FRR gateway → FRR leaf)",
    rows,
    details: { runs },
  };
}
