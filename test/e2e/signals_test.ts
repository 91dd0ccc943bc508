/**
 * Signals to the agent as a process: a stop while `ip -batch`
 * applies a large plan leaves no `ip` process behind and logs no error, whether
 * the agent alone is signalled or the whole process tree (systemd's default);
 * SIGHUP is logged and ignored. The `ip` processes are found with `ip netns
 * pids`: every `ip -n NS` the agent runs lives in the test's namespace.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DEMO_SERVICE, type ServiceSpec } from "../support/fakes/apiserver.ts";
import { ip, Netns } from "../support/procs/netns.ts";
import { type LoggedProcess, startAgent } from "../support/procs/agent.ts";
import { agentWorld } from "../support/procs/agent_world.ts";
import { waitFor } from "../support/wait.ts";

const SERVICES = 40;
const PER_SERVICE = 250;

/** 10,000 addresses in 10.100.0.0/16: one `ip -batch` of about 1.5 s. */
function largeBatch(): ServiceSpec[] {
  return Array.from({ length: SERVICES }, (_, s) => ({
    name: `bulk-${s}`,
    externalIPs: Array.from({ length: PER_SERVICE }, (_, i) => `10.100.${s}.${i + 1}`),
  }));
}

/** The pids of the processes inside the namespace (the agent's `ip -n` runs). */
async function pidsIn(ns: Netns): Promise<number[]> {
  return (await ip("netns", "pids", ns.name)).split("\n").filter((l) => l.trim()).map(Number);
}

/** Sends `signal` to every pid at once (one `kill`); true when all were there to get it. */
async function kill(signal: string, ...pids: number[]): Promise<boolean> {
  const out = await new Deno.Command("kill", {
    args: [`-${signal}`, ...pids.map(String)],
    stdout: "null",
    stderr: "null",
  }).output();
  return out.success;
}

async function world() {
  const w = await agentWorld("sig");
  return {
    ...w,
    args: [
      "run",
      ...w.args(
        "--network=10.100.0.0/16,10.0.100.0/24",
        "--metrics-address=off",
        // Not about the announce gate: every desired address goes out, and there is no kube-proxy here.
        "--announce=always",
        "--kube-proxy-health=off",
      ),
    ],
  };
}

/** Starts the agent on the large batch and resolves once its `ip -batch` runs: the pids in the namespace. */
async function duringApply(w: Awaited<ReturnType<typeof world>>): Promise<{
  agent: LoggedProcess;
  ipPids: number[];
}> {
  w.api.seed(largeBatch());
  const agent = startAgent(w.args);
  await agent.waitForLine(/first list complete: 10000 addresses desired/, 20_000);
  let ipPids: number[] = [];
  // The batch runs once an `ip` runs and the interface holds some of the batch's addresses
  // (the `ip` seen first may be the read before it).
  await waitFor(
    "the agent's ip -batch to run",
    async () => {
      ipPids = await pidsIn(w.ns);
      if (ipPids.length === 0) return false;
      const some = await w.ns.ip("-4", "-o", "address", "show", "dev", "lo", "to", "10.100.0.0/16");
      return some.trim() !== "" && (await pidsIn(w.ns)).join() === ipPids.join();
    },
    10_000,
    2,
  );
  return { agent, ipPids };
}

Deno.test("SIGTERM to the agent alone during a large apply: ip finishes within the grace or is stopped, none is left, exit 0, no error", async () => {
  await using w = await world();
  const { agent, ipPids } = await duringApply(w);
  assert.ok(await kill("TERM", agent.pid));
  const status = await agent.status;
  const left = await pidsIn(w.ns);
  assert.deepEqual(left, [], `ip processes left after the agent exited: ${left} (were ${ipPids})`);
  assert.equal(status.code, 0, agent.tail());
  assert.ok(!agent.lines.some((l) => /ERROR/.test(l)), agent.tail());
  assert.ok(!agent.lines.some((l) => /exiting anyway/.test(l)), agent.tail());
  // The batch it started was waited for: the interface holds all of it, unless the batch outran
  // the stop's 5 s grace (a slow, loaded machine), and then the agent said it stopped ip. (An ip
  // stopped after its last address but before it exited leaves all of them: that is fine too.)
  const held = (await w.ns.hostAddresses()).length;
  const stoppedIp = agent.lines.some((l) =>
    /ip still runs \d+ms after the stop; stopping it/.test(l)
  );
  assert.ok(
    stoppedIp || held === SERVICES * PER_SERVICE,
    `${held} held, ip not stopped\n${agent.tail()}`,
  );
});

Deno.test("SIGTERM to the whole process tree during a large apply: exit 0, no ERROR, none left; the next start completes the plan", async () => {
  await using w = await world();
  const { agent, ipPids } = await duringApply(w);
  assert.ok(await kill("TERM", agent.pid, ...ipPids), "the agent and its ip got SIGTERM");
  const status = await agent.status;
  assert.deepEqual(await pidsIn(w.ns), []);
  assert.equal(status.code, 0, agent.tail());
  assert.ok(!agent.lines.some((l) => /ERROR/.test(l)), agent.tail());
  const partial = (await w.ns.hostAddresses()).length;
  console.log(`the killed batch left ${partial} of ${SERVICES * PER_SERVICE} addresses`);
  assert.ok(partial < SERVICES * PER_SERVICE, "ip was killed mid-batch");
  // The next start re-reads the interface and completes what the killed batch left undone.
  await using again = startAgent(w.args);
  await again.waitForLine(/found \d+ managed addresses/);
  await waitFor(
    "every address after the restart",
    async () => (await w.ns.hostAddresses()).length === SERVICES * PER_SERVICE,
    20_000,
    100,
  );
  assert.ok(!again.lines.some((l) => /ERROR/.test(l)), again.tail());
});

Deno.test("SIGHUP is logged and ignored: the agent keeps working; SIGTERM still stops it", async () => {
  await using w = await world();
  w.api.create(DEMO_SERVICE);
  const agent = startAgent(w.args);
  try {
    await agent.waitForLine(/assuming address 10\.0\.100\.31/);
    assert.ok(await kill("HUP", agent.pid));
    await agent.waitForLine(/WARN SIGHUP ignored: restart kube-gw to change its settings/);
    w.api.create({ name: "after-hup", externalIPs: ["10.0.100.77"] });
    await agent.waitForLine(/assuming address 10\.0\.100\.77/);
    assert.deepEqual(await w.ns.hostAddresses(), ["10.0.100.30", "10.0.100.31", "10.0.100.77"]);
  } finally {
    const status = await agent.stop("SIGTERM");
    assert.equal(status.code, 0, agent.tail());
  }
});
