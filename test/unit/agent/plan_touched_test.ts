import assert from "node:assert/strict";
import fc from "fast-check";
import { parseCidr } from "../../../lib/base/cidr.ts";
import { plan, planTouched } from "../../../lib/agent/plan.ts";
import { Reconciler } from "../../../lib/agent/reconciler.ts";
import type { ServiceRecord } from "../../../lib/service/record.ts";
import { FakeAddressStore } from "../../support/fakes/address_store.ts";
import { FakeClock } from "../../support/fakes/clock.ts";
import { type Plan } from "../../../lib/kernel/address_store.ts";
import { TEST_RECONCILER_OPTIONS } from "../../support/fakes/reconciler_options.ts";

const NETS = [parseCidr("10.0.100.0/24"), parseCidr("2001:db8::/120")];
const addr = fc.oneof(
  fc.integer({ min: 1, max: 40 }).map((n) => `10.0.100.${n}`),
  fc.integer({ min: 1, max: 40 }).map((n) => `2001:db8::${n.toString(16)}`),
);

const sorted = (p: Plan) => ({ add: [...p.add].sort(), remove: [...p.remove].sort() });

Deno.test("planning the touched addresses equals the full plan when the rest is in step", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(addr),
      fc.uniqueArray(addr),
      fc.uniqueArray(addr),
      (desired, current, extra) => {
        const want = new Set(desired);
        const have = new Set(current);
        // Touched: every address where the two differ, plus some that do not.
        const touched = new Set(extra);
        for (const a of [...want, ...have]) if (want.has(a) !== have.has(a)) touched.add(a);
        assert.deepEqual(sorted(planTouched(touched, want, have)), sorted(plan(want, have)));
      },
    ),
  );
});

type Op =
  | { kind: "upsert"; name: number; ips: string[] }
  | { kind: "remove"; name: number }
  | { kind: "relist"; services: { name: number; ips: string[] }[] }
  | { kind: "reconcile"; fail: boolean }
  | { kind: "drift"; add: string[]; remove: string[] }
  | { kind: "reread" };

const name = fc.integer({ min: 0, max: 8 });
const ips = fc.array(addr, { maxLength: 3 });
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("upsert" as const), name, ips }),
  fc.record({ kind: fc.constant("remove" as const), name }),
  fc.record({
    kind: fc.constant("relist" as const),
    services: fc.uniqueArray(fc.record({ name, ips }), { selector: (s) => s.name, maxLength: 6 }),
  }),
  fc.record({ kind: fc.constant("reconcile" as const), fail: fc.boolean() }),
  fc.record({ kind: fc.constant("drift" as const), add: ips, remove: ips }),
  fc.constant({ kind: "reread" as const }),
);

function svc(n: number, externalIPs: string[]): ServiceRecord {
  return {
    namespace: "default",
    name: `s${n}`,
    type: "ClusterIP",
    clusterIP: "10.96.0.1",
    externalIPs,
  };
}

Deno.test("after any mix of events, failures, drift and re-reads, a reconcile brings the interface to the desired set", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(op, { maxLength: 40 }), async (ops) => {
      const iface = new FakeAddressStore();
      const r = new Reconciler({
        ...TEST_RECONCILER_OPTIONS,
        store: iface,
        networks: NETS,
        resyncMs: 0,
        clock: new FakeClock(),
      });
      let drifted = false;
      let everDrifted = false;
      for (const o of ops) {
        switch (o.kind) {
          case "upsert":
            r.upsert(svc(o.name, o.ips));
            break;
          case "remove":
            r.delete("default", `s${o.name}`);
            break;
          case "relist":
            r.replace(o.services.map((s) => svc(s.name, s.ips)), undefined);
            break;
          case "reconcile":
            // A failed batch may have applied part of the plan: the first half.
            if (o.fail) iface.failApply(1, { partial: true });
            await r.reconcileOnce().catch(() => {});
            break;
          case "drift":
            // Someone changes the interface by hand; only a resync may notice.
            for (const a of o.add) iface.put(a);
            for (const a of o.remove) iface.take(a);
            drifted ||= o.add.length + o.remove.length > 0;
            everDrifted ||= drifted;
            break;
          case "reread":
            r.reread();
            drifted = false;
            break;
        }
      }
      if (drifted) r.reread();
      iface.clearFailures();
      await r.reconcileOnce();
      assert.deepEqual(iface.hosts(), [...r.desired].sort());
      // Drift not yet seen may break a plan's premise; without drift, no plan may.
      if (!everDrifted) iface.assertNoViolations();
    }),
    { numRuns: 300 },
  );
});
