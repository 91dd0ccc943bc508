import assert from "node:assert/strict";
import { Metrics } from "../../lib/metrics.ts";

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
