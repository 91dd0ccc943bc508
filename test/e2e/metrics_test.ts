import assert from "node:assert/strict";
import { DEMO_SERVICE, FakeApiServer } from "../support/fakes/apiserver.ts";
import { Netns } from "../support/procs/netns.ts";
import { runKubeGw, startAgent, writeKubeconfig } from "../support/procs/agent.ts";
import { endpointSlice } from "../support/fakes/endpoint_slices.ts";
import { statusOf } from "../support/procs/status.ts";

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
    api.createObject("endpointslices", endpointSlice("nginx", [{ address: "10.244.1.10" }]));
    api.createObject(
      "endpointslices",
      endpointSlice("v6", [{ address: "fd00::10" }], { addressType: "IPv6" }),
    );
    await using agent = startAgent([
      "run",
      "--network=10.0.100.0/24,2001:db8:100::/64",
      `--netns=${ns.name}`,
      `--kubeconfig=${kc.path}`,
      "--metrics-address=127.0.0.1:0",
      "--kube-proxy-health=off",
    ]);
    const status = await statusOf(agent);

    assert.deepEqual((await status.get("/healthz")).status, 200);
    const notReady = await status.get("/readyz");
    assert.deepEqual([notReady.status, notReady.body], [
      503,
      "waiting for the first complete list of Services and EndpointSlices\n",
    ]);
    assert.deepEqual((await status.get("/nope")).status, 404);
    let m = await status.metrics();
    assert.deepEqual(m.get(`kubegw_build_info{commit="${commit}",version="0.1.0"}`), 1);
    // Before the first list nothing changes, and the gauge shows what is held.
    assert.deepEqual(m.get('kubegw_addresses{family="ipv4"}'), 1);
    assert.deepEqual(m.get('kubegw_addresses{family="ipv6"}'), 0);
    assert.deepEqual(m.get("kubegw_last_successful_sync_timestamp_seconds"), 0);
    assert.deepEqual(m.get('kubegw_reconciles_total{result="changed"}'), 0);
    assert.ok(m.get("process_resident_memory_bytes")! > 10e6, "resident memory");
    assert.ok(m.get("kubegw_heap_used_bytes")! > 0, "heap used");

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
    assert.deepEqual(await ns.hostAddresses(), ["10.0.100.30", "10.0.100.31", "2001:db8:100::5"]);
    assert.deepEqual(m.get('kubegw_addresses{family="ipv6"}'), 1);
    assert.deepEqual(m.get('kubegw_reconciles_total{result="changed"}'), 1);
    assert.deepEqual(m.get('kubegw_reconciles_total{result="error"}'), 0);
    const reconciles = ["changed", "noop", "error"]
      .reduce((n, r) => n + m.get(`kubegw_reconciles_total{result="${r}"}`)!, 0);
    assert.deepEqual(m.get("kubegw_reconcile_duration_seconds_count"), reconciles);
    const synced = m.get("kubegw_last_successful_sync_timestamp_seconds")!;
    assert.ok(synced >= started && synced <= Date.now() / 1000, `sync time ${synced}`);
    assert.deepEqual(m.get('kubegw_rejected_external_ips_total{reason="outside_networks"}'), 1);
    assert.deepEqual(m.get('kubegw_rejected_external_ips_total{reason="non_canonical"}'), 1);

    const closed = m.get('kubegw_watch_restarts_total{reason="closed"}') ?? 0;
    api.closeWatches();
    await status.until(
      () => status.metrics(),
      // Two watches (Services, EndpointSlices): each closed one counts.
      (m) => (m.get('kubegw_watch_restarts_total{reason="closed"}') ?? 0) >= closed + 1,
    );

    api.delete("nginx");
    m = await status.until(
      () => status.metrics(),
      (m) => m.get('kubegw_addresses{family="ipv4"}') === 0,
    );
    assert.deepEqual(await ns.hostAddresses(), ["2001:db8:100::5"]);
    assert.deepEqual(m.get('kubegw_addresses{family="ipv6"}'), 1);
    assert.deepEqual(m.get('kubegw_reconciles_total{result="changed"}'), 2);
    // The API server going away later does not make the agent unready: addresses stay.
    const errors = m.get('kubegw_watch_restarts_total{reason="error"}') ?? 0;
    await api.stop();
    await status.until(
      () => status.metrics(),
      (m) => (m.get('kubegw_watch_restarts_total{reason="error"}') ?? 0) > errors,
    );
    assert.deepEqual((await status.get("/readyz")).status, 200);
  } finally {
    await api.close();
  }
});
