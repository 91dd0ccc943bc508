import assert from "node:assert/strict";
import { DEMO_SERVICE, FakeApiServer } from "../support/fakes/apiserver.ts";
import { demoSlice } from "../support/fakes/endpoint_slices.ts";
import { AddressMonitor } from "../support/procs/address_monitor.ts";
import { Netns } from "../support/procs/netns.ts";
import { startAgent, writeKubeconfig } from "../support/procs/agent.ts";
import { statusOf } from "../support/procs/status.ts";

Deno.test("an upgrade (SIGTERM, then a new process) never takes an address away and changes nothing", async () => {
  await using ns = await Netns.create("upgrade");
  const api = await FakeApiServer.start();
  try {
    await using kc = await writeKubeconfig(api, {});
    api.create(DEMO_SERVICE);
    api.createObject("endpointslices", demoSlice());
    const args = [
      "run",
      "--network=10.0.100.0/24",
      `--netns=${ns.name}`,
      `--kubeconfig=${kc.path}`,
      "--metrics-address=127.0.0.1:0",
      "--kube-proxy-health=off",
    ];
    const want = ["10.0.100.30", "10.0.100.31"];
    // Every address change on the namespace's interfaces, for the whole hand-over.
    await using changes = await AddressMonitor.start(ns.name);
    await using old = startAgent(args);
    await old.waitForLine(/assuming address 10\.0\.100\.31/);
    assert.deepEqual(await ns.hostAddresses(), want);
    await changes.sync();
    // The monitor saw the old process put the addresses there.
    assert.deepEqual([...new Set(changes.history.map((e) => e.address))].sort(), want);
    const handOver = changes.history.length;

    const stopped = await old.stop("SIGTERM");
    assert.deepEqual(stopped.code, 0);
    await using next = startAgent(args);
    await next.waitForLine(/found 2 managed addresses on lo/);
    await next.waitForLine(/first list complete: 2 addresses desired/);
    // Ready means the first reconcile has run: it found nothing to do.
    const status = await statusOf(next);
    await status.until(() => status.get("/readyz"), (r) => r.status === 200);
    const m = await status.metrics();
    assert.deepEqual(m.get('kubegw_reconciles_total{result="noop"}'), 1);
    assert.deepEqual(m.get('kubegw_reconciles_total{result="changed"}'), 0);
    assert.ok(
      !next.lines.some((l) => /assuming|forfeiting/.test(l)),
      `the new process changed something:\n${next.lines.join("\n")}`,
    );

    // Every change made during the hand-over is in the history now: none took a managed
    // address away or added another one, so the interface held `want` all along.
    await changes.sync();
    const during = changes.history.slice(handOver).filter((e) => e.address.startsWith("10.0.100."));
    assert.deepEqual(during.filter((e) => e.deleted || !want.includes(e.address)), []);
    assert.deepEqual(await ns.hostAddresses(), want);
  } finally {
    await api.close();
  }
});
