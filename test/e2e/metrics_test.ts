import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { DEMO_SERVICE, FakeApiServer } from "../support/fake_apiserver.ts";
import { Netns } from "../support/netns.ts";
import { type LoggedProcess, runKubeGw, startAgent, writeKubeconfig } from "../support/agent.ts";

/** Prometheus text format: `name{label="v",...}` (labels sorted) → value. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels = [...(m[2] ?? "").matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)]
      .map(([, k, v]) => `${k}="${v}"`).sort().join(",");
    const key = labels ? `${m[1]}{${labels}}` : m[1];
    if (out.has(key)) throw new Error(`duplicate series ${key}`);
    out.set(key, Number(m[3]));
  }
  return out;
}

class Status {
  constructor(readonly base: string) {}

  async get(path: string): Promise<{ status: number; body: string; type: string }> {
    const res = await fetch(`${this.base}${path}`);
    return {
      status: res.status,
      body: await res.text(),
      type: res.headers.get("content-type") ?? "",
    };
  }

  async metrics(): Promise<Map<string, number>> {
    const r = await this.get("/metrics");
    assertEquals(r.status, 200);
    assert(r.type.startsWith("text/plain"), r.type);
    return parseMetrics(r.body);
  }

  /** Polls until `check` holds (the agent works asynchronously), or throws with the last value. */
  async until<T>(what: () => Promise<T>, check: (v: T) => boolean, ms = 10_000): Promise<T> {
    const deadline = Date.now() + ms;
    let last: T;
    do {
      last = await what();
      if (check(last)) return last;
      await new Promise((r) => setTimeout(r, 50));
    } while (Date.now() < deadline);
    throw new Error(`condition not met within ${ms}ms; last: ${JSON.stringify(last, replacer)}`);
  }
}

function replacer(_k: string, v: unknown) {
  return v instanceof Map ? Object.fromEntries(v) : v;
}

async function statusOf(agent: LoggedProcess): Promise<Status> {
  const line = await agent.waitForLine(/serving metrics on 127\.0\.0\.1:\d+/);
  return new Status(`http://127.0.0.1:${/:(\d+)$/.exec(line)![1]}`);
}

Deno.test("readyz waits for the first list while the API server is down; metrics follow the interface", async () => {
  const started = Date.now() / 1000;
  const commit = /\(commit ([^)]+)\)/.exec((await runKubeGw(["version"])).stdout)![1];
  await using ns = await Netns.create("metrics");
  // An address a previous kube-gw left behind, which no Service claims any more.
  await ns.ip("address", "add", "10.0.100.99/32", "dev", "lo");
  const api = await FakeApiServer.start();
  await api.stop(); // unreachable at start: connection refused
  try {
    await using kc = await writeKubeconfig(api, {});
    api.create(DEMO_SERVICE);
    api.create({
      name: "v6",
      externalIPs: ["2001:db8:100::5", "198.51.100.7", "010.0.100.40"],
    });
    await using agent = startAgent([
      "run",
      "--network=10.0.100.0/24,2001:db8:100::/64",
      `--netns=${ns.name}`,
      `--kubeconfig=${kc.path}`,
      "--metrics-address=127.0.0.1:0",
    ]);
    const status = await statusOf(agent);

    assertEquals((await status.get("/healthz")).status, 200);
    const notReady = await status.get("/readyz");
    assertEquals([notReady.status, notReady.body], [
      503,
      "waiting for the first complete list of Services\n",
    ]);
    assertEquals((await status.get("/nope")).status, 404);
    let m = await status.metrics();
    assertEquals(m.get(`kubegw_build_info{commit="${commit}",version="0.1.0"}`), 1);
    // Before the first list nothing changes, and the gauge shows what is held.
    assertEquals(m.get('kubegw_addresses{family="ipv4"}'), 1);
    assertEquals(m.get('kubegw_addresses{family="ipv6"}'), 0);
    assertEquals(m.get("kubegw_last_successful_sync_timestamp_seconds"), 0);
    assertEquals(m.get('kubegw_reconciles_total{result="success"}'), 0);
    assert(m.get("process_resident_memory_bytes")! > 10e6, "resident memory");
    assert(m.get("kubegw_heap_used_bytes")! > 0, "heap used");

    // The failed lists count as watch restarts.
    await status.until(
      () => status.metrics(),
      (m) => m.get('kubegw_watch_restarts_total{reason="error"}')! >= 1,
    );
    await api.listen();
    await agent.waitForLine(/first list complete/, 20_000);
    await status.until(() => status.get("/readyz"), (r) => r.status === 200);
    m = await status.until(
      () => status.metrics(),
      (m) => m.get('kubegw_addresses{family="ipv4"}') === 2,
    );
    assertEquals(await ns.hostAddresses(), ["10.0.100.30", "10.0.100.31", "2001:db8:100::5"]);
    assertEquals(m.get('kubegw_addresses{family="ipv6"}'), 1);
    assertEquals(m.get('kubegw_reconciles_total{result="success"}'), 1);
    assertEquals(m.get('kubegw_reconciles_total{result="error"}'), 0);
    const reconciles = ["success", "noop", "error"]
      .reduce((n, r) => n + m.get(`kubegw_reconciles_total{result="${r}"}`)!, 0);
    assertEquals(m.get("kubegw_reconcile_duration_seconds_count"), reconciles);
    const synced = m.get("kubegw_last_successful_sync_timestamp_seconds")!;
    assert(synced >= started && synced <= Date.now() / 1000, `sync time ${synced}`);
    assertEquals(m.get('kubegw_rejected_external_ips_total{reason="outside_networks"}'), 1);
    assertEquals(m.get('kubegw_rejected_external_ips_total{reason="non_canonical"}'), 1);

    const closed = m.get('kubegw_watch_restarts_total{reason="closed"}') ?? 0;
    api.closeWatches();
    await status.until(
      () => status.metrics(),
      (m) => (m.get('kubegw_watch_restarts_total{reason="closed"}') ?? 0) === closed + 1,
    );

    api.delete("nginx");
    m = await status.until(
      () => status.metrics(),
      (m) => m.get('kubegw_addresses{family="ipv4"}') === 0,
    );
    assertEquals(await ns.hostAddresses(), ["2001:db8:100::5"]);
    assertEquals(m.get('kubegw_addresses{family="ipv6"}'), 1);
    assertEquals(m.get('kubegw_reconciles_total{result="success"}'), 2);
    // The API server going away later does not make the agent unready: addresses stay.
    await api.stop();
    await new Promise((r) => setTimeout(r, 300));
    assertEquals((await status.get("/readyz")).status, 200);
  } finally {
    await api.close();
  }
});
