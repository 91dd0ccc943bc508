/**
 * The agent's fuzz test, at a small size (the bench runs it at
 * full size: `deno task bench --only fuzz`): thousands of seeded hostile
 * externalIPs across hundreds of Services, through the fake API server to the
 * agent as a process, with `ip monitor address` watching the interface.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runFuzz } from "../support/procs/fuzz_run.ts";

Deno.test("fuzz: only canonical in-network addresses reach the interface, nothing runs, logs and memory stay bounded", async () => {
  const r = await runFuzz({ seed: 20261129, strings: 10_000, services: 300, hugeChars: 100_000 });
  console.log(
    `${r.corpus.strings} values, ${r.corpus.objects.length} Services, ${r.corpus.expected.size} valid; ` +
      `${r.refusalLines} refusal lines, ${r.logLines} lines in all, peak RSS ${
        (r.peakRss / 1e6).toFixed(0)
      } MB, ${r.ms.toFixed(0)} ms`,
  );
  assert.ok(r.corpus.strings >= 10_000);
  assert.deepEqual(r.unexpectedAdds, [], "only the canonical in-network values were ever added");
  assert.deepEqual(r.nonHostAdds, [], "only host prefixes");
  assert.deepEqual(r.final, [...r.corpus.expected].sort(), "every valid value, and only those");
  assert.equal(r.markerExists, false, "no shell ran a value");
  assert.ok(
    r.refusalLines > 0 && r.refusalLines <= r.corpus.refusable,
    `${r.refusalLines} refusals`,
  );
  assert.equal(r.refusalLinesAfterResend, 0, "one warning per (Service, IP), not per event");
  assert.equal(r.duplicateRefusals, 0);
  assert.ok(
    r.logLines <= r.corpus.refusable + 2 * r.corpus.expected.size + 100,
    `${r.logLines} log lines`,
  );
  // A value is bounded to 256 characters before escaping; an escape is at most 6 (`\\u200b`).
  assert.ok(r.longestLogLine < 2 * 256 * 6 + 200, `longest line ${r.longestLogLine} chars`);
  assert.deepEqual(r.strayLines, [], "no value starts a line of its own");
  assert.ok(r.peakRss < 200e6, `peak RSS ${r.peakRss} bytes`);
  assert.equal(r.exitCode, 0);
});
