/**
 * The controller's fuzz run at a small size (the bench runs it larger:
 * `deno task bench --only controller_fuzz`): hostile pools.yaml documents up
 * to a megabyte, Services with hostile annotations, ports and shapes, claims
 * at start and edits while it runs, through the fake API server to
 * `kube-gw controller` as a process.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runControllerFuzz } from "../support/procs/controller_fuzz_run.ts";

Deno.test("controller fuzz: no address on two Services outside a sharing key, every refusal has an Event, any pools.yaml up to 1 MiB refused or applied within 1 s, memory bounded, /healthz answering", async () => {
  const r = await runControllerFuzz({ seed: 20261201, services: 120, edits: 150, poolsDocs: 40 });
  const slowest = r.pools.reduce((a, b) => (b.ms > a.ms ? b : a));
  console.log(
    `${r.services} Services, ${r.steps} steps, ${r.pools.length} pools edits ` +
      `(${r.pools.filter((p) => p.outcome === "refused").length} refused; slowest ${
        slowest.ms.toFixed(0)
      } ms: ${slowest.kind}, ${slowest.bytes} bytes); ${r.withAddress} with an address, ` +
      `${r.withoutAddress} without; ${r.statusWrites} status writes, ${r.eventsPosted} Events ` +
      `(busiest second ${r.busiestEventSecond}, busiest 10 s ${r.eventRate10s}/s); /healthz ${r.healthz.polls} polls, ` +
      `${r.healthz.failures} failed, slowest ${r.healthz.maxMs.toFixed(0)} ms; ` +
      `peak RSS ${(r.peakRss / 1e6).toFixed(0)} MB; ${(r.ms / 1000).toFixed(1)} s`,
  );
  assert.deepEqual(r.violations, [], "kube-gw never wrote an address another Service showed");
  assert.deepEqual(r.finalViolations, [], "no address on two Services outside a sharing key");
  assert.deepEqual(r.unexplained, [], "every refusal has an Event");
  assert.deepEqual(r.pools.filter((p) => p.outcome === "no answer"), []);
  for (const p of r.pools) assert.ok(p.ms < 1000, `${p.kind} (${p.bytes} bytes): ${p.ms} ms`);
  assert.ok(r.withAddress > 0 && r.withoutAddress > 0, "both outcomes were exercised");
  // Posts start 100 ms apart; their arrival may bunch by a few ms.
  assert.ok(r.busiestEventSecond <= 11, `${r.busiestEventSecond} Events in one second`);
  assert.ok(r.eventRate10s <= 10, `${r.eventRate10s} Events a second over ten seconds`);
  assert.equal(r.healthz.failures, 0, "/healthz answered every poll");
  assert.ok(r.healthz.maxMs < 1000, `/healthz took ${r.healthz.maxMs} ms`);
  assert.ok(r.peakRss < 200e6, `peak RSS ${r.peakRss} bytes`);
  assert.equal(r.exitCode, 0);
});
