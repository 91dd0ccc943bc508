/**
 * `deno task demo`: the main job on an embedded default. An in-process fake
 * API server holds the prototype's demo Service (and one hostile Service);
 * the agent manages `lo` in a throwaway network namespace; the log and the
 * resulting `ip addr` lines are printed; then the Service is deleted and
 * everything is cleaned up. Without root it falls back to `kube-gw plan`
 * against the host's `lo`, which changes nothing.
 *
 * @module
 */

import { logSettings, runAgent } from "../lib/agent/run.ts";
import { runPlan } from "../lib/agent/commands.ts";
import { parseConfig } from "../lib/agent/config.ts";
import { IpRoute2 } from "../lib/kernel/iproute2.ts";
import { KubeApi } from "../lib/kube/client.ts";
import { flushLogs, setupLogging } from "../lib/base/log.ts";
import { formatPlan } from "../lib/agent/plan_table.ts";
import { demoSlice } from "../test/support/fakes/endpoint_slices.ts";
import { DEMO_SERVICE, FakeApiServer } from "../test/support/fakes/apiserver.ts";
import { waitFor } from "../test/support/wait.ts";

const decoder = new TextDecoder();

async function ip(...args: string[]): Promise<{ ok: boolean; out: string }> {
  const r = await new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).output();
  return { ok: r.success, out: decoder.decode(r.success ? r.stdout : r.stderr) };
}

function banner(text: string): void {
  flushLogs();
  console.log(`\n--- ${text}`);
}

const server = await FakeApiServer.start();
server.create(DEMO_SERVICE);
// Its pods: kube-gw announces a Service only while it has a ready endpoint (--announce ready).
server.createObject("endpointslices", demoSlice());
server.create({
  name: "hostile",
  externalIPs: ["10.0.100.40; touch /tmp/pwned", "010.0.100.41", "10.9.9.9"],
});
const api = new KubeApi({ server: server.url, source: "the demo's in-process API server" });
await setupLogging("info", "text");

const netns = `kgw-demo-${Deno.pid}`;
const created = await ip("netns", "add", netns);
try {
  if (!created.ok) {
    banner(
      `cannot create a network namespace (${created.out.trim()}): showing \`kube-gw plan\` for this host's lo instead`,
    );
    const config = parseConfig({ network: ["10.0.100.0/24"], metricsAddress: "off" });
    logSettings(config);
    const { plan, statuses } = await runPlan(
      config,
      { store: new IpRoute2({ device: "lo" }), api },
      AbortSignal.timeout(10_000),
    );
    flushLogs();
    console.log(formatPlan(plan, statuses));
  } else {
    await ip("-n", netns, "link", "set", "lo", "up");
    const config = parseConfig({
      network: ["10.0.100.0/24"],
      netns,
      metricsAddress: "off",
      resyncInterval: "0",
      // No kube-proxy runs in the demo's namespace.
      kubeProxyHealth: "off",
    });
    banner(`kube-gw run --network 10.0.100.0/24 --netns ${netns}`);
    logSettings(config);
    const controller = new AbortController();
    const store = new IpRoute2({ device: "lo", netns });
    const running = runAgent(config, { store, api }, controller.signal);
    const held = async (want: number) => {
      const addrs = await store.read();
      return addrs.filter((a) => a.local.startsWith("10.0.100.")).length === want;
    };
    await waitFor("both addresses on lo", () => held(2), 5000, 50);
    banner(`ip -n ${netns} address show dev lo`);
    console.log((await ip("-n", netns, "address", "show", "dev", "lo")).out.trimEnd());
    banner("kubectl delete service nginx");
    server.delete("nginx");
    await waitFor("no address on lo", () => held(0), 5000, 50);
    banner(`ip -n ${netns} address show dev lo`);
    console.log((await ip("-n", netns, "address", "show", "dev", "lo")).out.trimEnd());
    controller.abort();
    await running;
  }
} finally {
  flushLogs();
  if (created.ok) await ip("netns", "del", netns);
  api.close();
  await server.close();
}
