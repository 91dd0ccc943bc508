import assert from "node:assert/strict";
import fc from "fast-check";
import { addBatch, addressAt, BLOCK, inNetwork } from "./addresses.ts";
import { type ChurnService, nextUpdate } from "./churn.ts";
import { heapMetric } from "./memory.ts";
import { parseMonitorLine } from "./monitor.ts";
import { parseMetrics, reconciles } from "./processes.ts";
import { formatTable, formatValue } from "./report.ts";
import { acrossRuns, distribution, quantile } from "./stats.ts";

Deno.test("bench: quantiles use the nearest rank, so p99 of 100 samples is the 99th", () => {
  const samples = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 … 1, unsorted input
  assert.equal(quantile(samples, 0.5), 50);
  assert.equal(quantile(samples, 0.99), 99);
  assert.equal(quantile(samples, 1), 100);
  assert.equal(quantile([7], 0.99), 7);
  assert.ok(Number.isNaN(quantile([], 0.5)));
  assert.deepEqual(distribution([3, 1, 2]), { n: 3, p50: 2, p99: 3, max: 3 });
  assert.deepEqual(acrossRuns([5, 9, 7]), { runs: [5, 9, 7], median: 7, worst: 9 });
});

Deno.test("bench: ip monitor lines become address events; other lines are ignored", () => {
  assert.deepEqual(parseMonitorLine("1: lo    inet 10.64.0.1/32 scope global lo"), {
    kind: "add",
    address: "10.64.0.1",
  });
  assert.deepEqual(parseMonitorLine("Deleted 1: lo    inet 10.64.0.1/32 scope global lo"), {
    kind: "del",
    address: "10.64.0.1",
  });
  assert.deepEqual(parseMonitorLine("1: lo    inet6 2001:db8::1/128 scope global "), {
    kind: "add",
    address: "2001:db8::1",
  });
  assert.equal(parseMonitorLine("       valid_lft forever preferred_lft forever"), undefined);
  assert.equal(parseMonitorLine("Deleted 2: eth0    link/ether 00:11:22:33:44:55"), undefined);
});

Deno.test("bench: every generated address is a distinct host inside the managed network", () => {
  const seen = new Set<string>();
  for (const block of [BLOCK.seeded, BLOCK.fresh]) {
    for (const i of [0, 1, 254, 255, 256, 50_000, 99_999]) {
      const a = addressAt(block, i);
      assert.ok(inNetwork(a), a);
      assert.ok(!seen.has(a), a);
      seen.add(a);
    }
  }
  assert.equal(addressAt(BLOCK.seeded, 0), "10.64.0.1");
  assert.equal(addBatch(["10.64.0.1"]), "address replace 10.64.0.1/32 dev lo\n");
});

Deno.test("bench: churn updates add each fresh address once and remove each original at most once", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 200 }), (n, total) => {
      const svcs: ChurnService[] = Array.from({ length: n }, (_, i) => {
        const ips = [addressAt(BLOCK.seeded, 2 * i), addressAt(BLOCK.seeded, 2 * i + 1)];
        return { name: `svc-${i}`, originals: [...ips], ips: [...ips] };
      });
      let seq = 0;
      const added = new Set<string>();
      const removed = new Set<string>();
      for (let k = 0; k < total; k++) {
        const svc = svcs[k % n];
        const before = new Set(svc.ips);
        const changes = nextUpdate(svc, k, () => addressAt(BLOCK.fresh, seq++));
        assert.ok(changes.length > 0);
        for (const c of changes) {
          if (c.kind === "add") {
            assert.ok(!added.has(c.ip) && !before.has(c.ip) && svc.ips.includes(c.ip));
            added.add(c.ip);
          } else {
            assert.ok(!removed.has(c.ip) && before.has(c.ip) && !svc.ips.includes(c.ip));
            assert.ok(!added.has(c.ip), "only original addresses are removed");
            removed.add(c.ip);
          }
        }
      }
    }),
  );
});

Deno.test("bench: reconciles and heap figures are read from the agent's /metrics text", () => {
  const m = parseMetrics([
    "# HELP kubegw_reconciles_total Reconciles by result.",
    'kubegw_reconciles_total{result="changed"} 7',
    'kubegw_reconciles_total{result="noop"} 2',
    'kubegw_reconciles_total{result="error"} 0',
    "kubegw_heap_used_bytes 1234",
    'kubegw_process_memory_bytes{kind="heap_total"} 4096',
  ].join("\n"));
  assert.deepEqual(reconciles(m), { total: 9, byResult: { changed: 7, noop: 2, error: 0 } });
  assert.equal(heapMetric(m, "heap_used"), 1234);
  assert.equal(heapMetric(m, "heap_total"), 4096);
  assert.ok(Number.isNaN(heapMetric(m, "external")));
});

Deno.test("bench: the table shows medians, worst runs, ratios and missed targets", () => {
  assert.equal(formatValue(4.25, "ms"), "4.3 ms");
  assert.equal(formatValue(2500, "ms"), "2.50 s");
  assert.equal(formatValue(150 * 1024 * 1024, "bytes"), "150.0 MB");
  const table = formatTable([{
    scenario: "1 event latency",
    metric: "p99",
    unit: "ms",
    value: acrossRuns([6, 8, 7]),
    compare: {
      label: "prototype",
      value: acrossRuns([4000]),
      ratio: 4000 / 7,
      ratioText: "prototype/kube-gw",
    },
    target: { text: "p99 ≤ 5 ms", met: false },
  }]);
  const row = table.split("\n")[2];
  assert.match(row, /\| 7\.0 ms +\| 8\.0 ms +\| 4\.00 s prototype \| 571× prototype\/kube-gw/);
  assert.match(row, /MISSED: p99 ≤ 5 ms/);
});
