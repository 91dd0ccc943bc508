/**
 * Scenario 2, initial sync at scale: N Services with two external IPs each,
 * and one EndpointSlice of three ready endpoints each, are in the API before
 * the agent starts (it runs with `--announce ready`, the default). Measured from spawning the agent to the
 * monitor reporting the last of the 2N addresses, with the agent's peak RSS
 * (VmHWM). In the same run: the kernel floor, one `ip -batch` of exactly the
 * same lines the agent sends into a fresh namespace (spawn → last address
 * reported), and the prototype from its spawn (its first random 1–10 s sleep
 * included, as it behaves; the sleep is recorded too).
 *
 * @module
 */

import { addBatch, addressAt, BLOCK, NETWORK } from "./addresses.ts";
import type { BenchConfig } from "./config.ts";
import { procMemory, startBenchAgent, startPrototype } from "./processes.ts";
import type { Row, ScenarioResult } from "./report.ts";
import { allAdded, IpBatch, service, Stage, within } from "./stage.ts";
import { acrossRuns } from "./stats.ts";
import type { ServiceSpec } from "../../test/support/fakes/apiserver.ts";
import { waitFor } from "../../test/support/wait.ts";

/** N Services `svc-i` with addresses 2i and 2i+1 of the seeded block. */
export function seededServices(n: number): { specs: ServiceSpec[]; addresses: string[] } {
  const specs: ServiceSpec[] = [];
  const addresses: string[] = [];
  for (let i = 0; i < n; i++) {
    const ips = [addressAt(BLOCK.seeded, 2 * i), addressAt(BLOCK.seeded, 2 * i + 1)];
    addresses.push(...ips);
    specs.push(service(`svc-${i}`, ips));
  }
  return { specs, addresses };
}

/** Generous upper bound for converging `count` addresses (a broken run, not a slow one). */
export function convergeLimitMs(count: number): number {
  return Math.max(60_000, count * 20);
}

interface AgentSync {
  readonly ms: number;
  readonly peakRss: number;
}

/**
 * Starts an agent on a seeded stage and waits until every address is present;
 * `held` counts them in the kernel when the monitor lost part of the burst.
 * @default held the host addresses on lo
 */
/**
 * The agent's lines for the addresses it added: one per address, or one
 * summary line for a large plan (its count in the group).
 */
export const ASSUMED = / INFO assuming (?:address |(\d+) addresses )/;

export async function syncAgent(
  cfg: BenchConfig,
  stage: Stage,
  addresses: readonly string[],
  held: () => Promise<number> = async () => (await stage.ns.hostAddresses()).length,
): Promise<{ agent: ReturnType<typeof startBenchAgent>; ms: number; logged: () => number }> {
  const all = stage.monitor.waitForAll(addresses, "add");
  const t0 = performance.now();
  const agent = startBenchAgent(stage.agentArgs(), cfg);
  const logged = agent.track(ASSUMED);
  try {
    const { at: t1 } = await allAdded(
      stage.monitor,
      all,
      addresses.length,
      held,
      convergeLimitMs(addresses.length),
      "agent initial sync",
    ).catch((err) => {
      throw new Error(`${err.message}\n${agent.tail()}`);
    });
    // The agent logs each address after applying; its peak includes that.
    await waitFor("the agent to log every address", () => logged() >= addresses.length, 60_000, 50);
    return { agent, ms: t1 - t0, logged };
  } catch (err) {
    await agent.stop("SIGKILL");
    throw err;
  }
}

async function agentRun(cfg: BenchConfig, n: number): Promise<AgentSync> {
  const { specs, addresses } = seededServices(n);
  await using stage = await Stage.create(`s2-${n}`, specs, { slices: true });
  const { agent, ms } = await syncAgent(cfg, stage, addresses);
  await using _ = agent;
  const mem = await procMemory(agent.pid);
  const present = await stage.ns.hostAddresses();
  if (present.length !== addresses.length) {
    throw new Error(
      `expected ${addresses.length} addresses, the namespace holds ${present.length}`,
    );
  }
  await agent.stop();
  return { ms, peakRss: mem.hwm };
}

async function floorRun(n: number): Promise<number> {
  const { addresses } = seededServices(n);
  await using stage = await Stage.create(`s2f-${n}`);
  const all = stage.monitor.waitForAll(addresses, "add");
  const t0 = performance.now();
  const batch = new IpBatch(stage.ns.name);
  await batch.write(addBatch(addresses));
  await batch.close();
  const t1 = await within(all.done, 30_000, "floor: monitor reports every address");
  return t1 - t0;
}

async function prototypeRun(n: number): Promise<{ ms: number; firstSleepMs: number }> {
  const { specs, addresses } = seededServices(n);
  await using stage = await Stage.create(`s2p-${n}`, specs);
  const all = stage.monitor.waitForAll(addresses, "add");
  const t0 = performance.now();
  await using proto = startPrototype(stage.api.url, NETWORK, stage.ns.name);
  const t1 = await within(all.done, convergeLimitMs(addresses.length) + 10_000, "prototype sync");
  const pass = await proto.waitForLine(/^pass 1 /, convergeLimitMs(addresses.length));
  await proto.stop();
  return { ms: t1 - t0, firstSleepMs: Number(/slept=(\d+)/.exec(pass)?.[1]) };
}

/** Runs scenario 2. */
export async function initialSync(cfg: BenchConfig): Promise<ScenarioResult> {
  const rows: Row[] = [];
  const details: Record<string, unknown> = {};
  for (const n of cfg.initialSync.sizes) {
    const agent: AgentSync[] = [];
    const floor: number[] = [];
    const proto: { ms: number; firstSleepMs: number }[] = [];
    // The prototype takes minutes per run past 10,000 Services: one run there.
    const protoRuns = n > 10_000 ? Math.min(1, cfg.prototypeRuns) : cfg.prototypeRuns;
    for (let r = 0; r < Math.max(cfg.runs, protoRuns); r++) {
      if (r < cfg.runs) {
        agent.push(await agentRun(cfg, n));
        floor.push(await floorRun(n));
      }
      if (r < protoRuns) proto.push(await prototypeRun(n));
    }
    const ms = acrossRuns(agent.map((a) => a.ms));
    const fl = acrossRuns(floor);
    const pr = acrossRuns(proto.map((p) => p.ms));
    // Per run, agent time over the floor measured right after it.
    const overFloor = acrossRuns(agent.map((a, i) => a.ms / floor[i]));
    const scenario = "2 initial sync";
    const addrs = `${n} Services, ${2 * n} addresses`;
    rows.push({
      scenario,
      metric: `${addrs}: start → all present`,
      unit: "ms",
      value: ms,
      compare: {
        label: "prototype",
        value: pr,
        ratio: pr.median / ms.median,
        ratioText: "prototype/kube-gw",
      },
      note: proto.length < agent.length ? `prototype: ${proto.length} run` : undefined,
    });
    rows.push({
      scenario,
      metric: `${addrs}: ip -batch floor, same lines`,
      unit: "ms",
      value: fl,
    });
    rows.push({
      scenario,
      metric: `${addrs}: kube-gw / floor, per run`,
      unit: "ratio",
      value: overFloor,
      target: 2 * n === 20_000 ? { text: "≤ 1.5× floor", met: overFloor.median <= 1.5 } : undefined,
    });
    rows.push({
      scenario,
      metric: `${addrs}: agent peak RSS (VmHWM)`,
      unit: "bytes",
      value: acrossRuns(agent.map((a) => a.peakRss)),
    });
    details[String(n)] = { agent, floorMs: floor, prototype: proto };
  }
  return {
    id: "initial_sync",
    title: "Initial sync at scale (agent start → every address present)",
    rows,
    details,
  };
}
