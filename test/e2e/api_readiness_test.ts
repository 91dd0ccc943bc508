import assert from "node:assert/strict";
import { DEMO_SERVICE } from "../support/fakes/apiserver.ts";
import { startAgent } from "../support/procs/agent.ts";
import { agentWorld } from "../support/procs/agent_world.ts";
import { statusOf } from "../support/procs/status.ts";

Deno.test("readyz turns 503 while the API server is unreachable and the addresses stay; it recovers", async () => {
  await using w = await agentWorld("apiready");
  const { ns, api } = w;
  api.create(DEMO_SERVICE);
  await using agent = startAgent([
    "run",
    ...w.args(
      "--network=10.0.100.0/24",
      "--metrics-address=127.0.0.1:0",
      // Not about the announce gate: every desired address goes out, and there is no kube-proxy here.
      "--announce=always",
      "--kube-proxy-health=off",
    ),
  ], { KUBEGW_API_STALE_AFTER: "35s" });
  const status = await statusOf(agent);
  await status.until(() => status.get("/readyz"), (r) => r.status === 200, 20_000);
  let m = await status.metrics();
  const current = m.get("kubegw_api_last_current_timestamp_seconds")!;
  assert.ok(current > Date.now() / 1000 - 10, `last current ${current}`);

  // Every request from now on, on every connection, is accepted and never answered.
  const blindAt = performance.now();
  api.hangRequests();
  api.wedgeConnections();
  const r = await status.until(() => status.get("/readyz"), (r) => r.status === 503, 80_000);
  const after = (performance.now() - blindAt) / 1000;
  assert.match(
    r.body,
    /^the Kubernetes API was last known current \d+s ago \(Service watch of \/api\/v1\/services\)/,
  );
  assert.ok(after <= 70, `503 after ${after}s`);
  m = await status.metrics();
  assert.ok(m.get("kubegw_api_last_current_timestamp_seconds")! < Date.now() / 1000 - 35);
  // The probe (every 30 s, 15 s timeout) gives up on the connection within 45 s.
  await status.until(
    () => status.metrics(),
    (m) => m.get('kubegw_api_connections_replaced_total{reason="probe"}')! >= 1,
    60_000,
  );
  assert.deepEqual(await ns.hostAddresses(), ["10.0.100.30", "10.0.100.31"], "kept");

  api.releaseHeld();
  await status.until(() => status.get("/readyz"), (r) => r.status === 200, 60_000);
});
