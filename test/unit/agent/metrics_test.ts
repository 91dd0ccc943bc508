import assert from "node:assert/strict";
import { Metrics } from "../../../lib/agent/metrics.ts";

Deno.test("metrics follow what the agent reports, under kubegw_ names", async () => {
  const m = new Metrics("0.1.0", "abc123");
  m.held(4, 2);
  m.held(6, 1);
  m.reconciled("changed", 0.004);
  m.reconciled("error", 0.002);
  m.watchRestarted("Service", "gone");
  m.rejected("outside_networks");
  const text = await m.render();
  for (
    const line of [
      'kubegw_build_info{version="0.1.0",commit="abc123"} 1',
      'kubegw_addresses{family="ipv4"} 2',
      'kubegw_addresses{family="ipv6"} 1',
      'kubegw_reconciles_total{result="changed"} 1',
      'kubegw_reconciles_total{result="error"} 1',
      'kubegw_reconciles_total{result="noop"} 0',
      "kubegw_reconcile_duration_seconds_count 2",
      'kubegw_watch_restarts_total{reason="gone"} 1',
      'kubegw_rejected_external_ips_total{reason="outside_networks"} 1',
    ]
  ) assert.ok(text.includes(line), `missing: ${line}\n${text}`);
  assert.match(text, /kubegw_last_successful_sync_timestamp_seconds \d{10}/);
  assert.match(text, /^process_resident_memory_bytes \d+$/m);
  assert.match(text, /^kubegw_heap_used_bytes \d+$/m);
  for (const name of text.matchAll(/^# TYPE (\S+)/gm)) {
    assert.match(name[1], /^(kubegw_[a-z_]+|process_resident_memory_bytes)$/);
  }
});

Deno.test("a reconcile while the watches are stale does not count as a sync; the API's currency is its own gauge", async () => {
  const m = new Metrics("0.1.0", "abc123");
  let age: number | undefined = undefined;
  m.watchApiCurrency(() => age, 45_000);
  const value = async (name: string) =>
    Number(new RegExp(`^${name} (\\S+)$`, "m").exec(await m.render())?.[1]);
  m.reconciled("noop", 0.001);
  assert.equal(await value("kubegw_last_successful_sync_timestamp_seconds"), 0, "not listed yet");
  assert.equal(await value("kubegw_api_last_current_timestamp_seconds"), 0);
  age = 50_000;
  m.reconciled("noop", 0.001);
  assert.equal(await value("kubegw_last_successful_sync_timestamp_seconds"), 0, "blind");
  const lastCurrent = await value("kubegw_api_last_current_timestamp_seconds");
  assert.ok(Math.abs(lastCurrent - (Date.now() - 50_000) / 1000) < 5, String(lastCurrent));
  age = 1_000;
  m.reconciled("noop", 0.001);
  assert.ok(await value("kubegw_last_successful_sync_timestamp_seconds") > 1e9);
  m.authFailed(401);
  m.connectionReplaced("probe");
  const text = await m.render();
  assert.ok(text.includes('kubegw_api_auth_failures_total{code="401"} 1'), text);
  assert.ok(text.includes('kubegw_api_connections_replaced_total{reason="probe"} 1'), text);
});

Deno.test("resync checks are counted by result; a clean one is a successful sync, drift and errors are not", async () => {
  const m = new Metrics("0.1.0", "abc123");
  m.watchApiCurrency(() => 1_000, 45_000);
  const value = async (name: string) =>
    Number(
      new RegExp(`^${name.replace(/[{}]/g, "\\$&")} (\\S+)$`, "m").exec(await m.render())?.[1],
    );
  m.resynced("drift", 0.3);
  m.resynced("error", 0.01);
  assert.equal(await value("kubegw_last_successful_sync_timestamp_seconds"), 0);
  m.resynced("clean", 0.4);
  assert.ok(await value("kubegw_last_successful_sync_timestamp_seconds") > 1e9);
  assert.equal(await value('kubegw_resyncs_total{result="clean"}'), 1);
  assert.equal(await value('kubegw_resyncs_total{result="drift"}'), 1);
  assert.equal(await value('kubegw_resyncs_total{result="error"}'), 1);
  assert.equal(await value('kubegw_reconciles_total{result="noop"}'), 0, "a check is no reconcile");
});
