import assert from "node:assert/strict";
import fc from "fast-check";
import {
  addressCondition,
  type AnnounceMode,
  announceVerdict,
  type Claimant,
  formatExplanation,
  type HealthGate,
  stepAddress,
} from "../../../lib/agent/announce.ts";
import type { EndpointCounts } from "../../../lib/agent/endpoints.ts";
import { AnnounceGate, type GateInputs } from "../../../lib/agent/announce_gate.ts";

/** A small mutable world the gate reads through {@linkcode GateInputs}. */
class World implements GateInputs {
  health: HealthGate = { open: true };
  readonly services = new Map<string, Claimant & { addresses: Set<string> }>();
  readonly endpoints = new Map<string, EndpointCounts>();

  claimants(address: string): Claimant[] {
    return [...this.services.values()].filter((s) => s.addresses.has(address));
  }
  counts(service: string, _family: 4 | 6): EndpointCounts {
    return this.endpoints.get(service) ?? { cluster: 0, local: 0 };
  }
  service(
    name: string,
    addresses: string[],
    more: Partial<Claimant> = {},
    counts: EndpointCounts = { cluster: 1, local: 0 },
  ): void {
    this.services.set(name, {
      service: name,
      trafficPolicy: "Cluster",
      proxySkipped: false,
      addresses: new Set(addresses),
      ...more,
    });
    this.endpoints.set(name, counts);
  }
}

const A = "10.0.100.30";

Deno.test("a new Service whose endpoints are ready is announced at once", () => {
  const w = new World();
  w.service("default/web", [A]);
  const gate = new AnnounceGate({ mode: "ready", delayMs: 2000, dampingHalfLifeMs: 0 });
  const step = gate.evaluate([A], w, 1000);
  assert.deepEqual(step.changed, [A]);
  assert.ok(gate.announced.has(A));
  assert.equal(gate.nextExpiry, undefined);
});

Deno.test("endpoints gone: withdrawn at once; back: announced only after the hold-down", () => {
  const w = new World();
  w.service("default/web", [A]);
  const gate = new AnnounceGate({ mode: "ready", delayMs: 2000, dampingHalfLifeMs: 0 });
  gate.evaluate([A], w, 0);
  w.endpoints.set("default/web", { cluster: 0, local: 0 });
  assert.deepEqual(gate.evaluate([A], w, 100).changed, [A]);
  assert.equal(gate.announced.has(A), false);
  assert.equal(gate.explain(A, w)?.state, "no_usable_endpoint");
  w.endpoints.set("default/web", { cluster: 3, local: 0 });
  assert.deepEqual(gate.evaluate([A], w, 500).changed, []);
  assert.equal(gate.nextExpiry, 2500);
  assert.equal(gate.explain(A, w)?.state, "hold_down");
  assert.equal(gate.explain(A, w)?.holdDownUntil, 2500);
  assert.deepEqual(gate.expire(w, 2499).changed, []);
  assert.deepEqual(gate.expire(w, 2500).changed, [A]);
  assert.ok(gate.announced.has(A));
  assert.equal(gate.nextExpiry, undefined);
});

Deno.test("a flap during the hold-down restarts it", () => {
  const w = new World();
  w.service("default/web", [A]);
  const gate = new AnnounceGate({ mode: "ready", delayMs: 2000, dampingHalfLifeMs: 0 });
  gate.evaluate([A], w, 0);
  w.endpoints.set("default/web", { cluster: 0, local: 0 });
  gate.evaluate([A], w, 10);
  w.endpoints.set("default/web", { cluster: 1, local: 0 });
  gate.evaluate([A], w, 20);
  w.endpoints.set("default/web", { cluster: 0, local: 0 });
  gate.evaluate([A], w, 1000);
  w.endpoints.set("default/web", { cluster: 1, local: 0 });
  gate.evaluate([A], w, 1500);
  assert.equal(gate.nextExpiry, 3500);
  assert.deepEqual(gate.expire(w, 2020).changed, []);
  assert.deepEqual(gate.expire(w, 3500).changed, [A]);
});

Deno.test("a hold-down of 0 announces again at once", () => {
  const w = new World();
  w.service("default/web", [A]);
  const gate = new AnnounceGate({ mode: "ready", delayMs: 0, dampingHalfLifeMs: 0 });
  gate.evaluate([A], w, 0);
  w.endpoints.set("default/web", { cluster: 0, local: 0 });
  gate.evaluate([A], w, 1);
  w.endpoints.set("default/web", { cluster: 1, local: 0 });
  assert.deepEqual(gate.evaluate([A], w, 2).changed, [A]);
});

Deno.test("an address claimed by several Services is announced while any of them qualifies", () => {
  const w = new World();
  w.service("default/a", [A], {}, { cluster: 0, local: 0 });
  w.service("default/b", [A], { trafficPolicy: "Local" }, { cluster: 2, local: 1 });
  const gate = new AnnounceGate({
    mode: "ready",
    delayMs: 2000,
    dampingHalfLifeMs: 0,
    nodeName: "gw1",
  });
  gate.evaluate([A], w, 0);
  assert.ok(gate.announced.has(A));
  const why = gate.explain(A, w);
  assert.deepEqual(why?.services.map((s) => [s.service, s.verdict]), [
    ["default/a", "no_usable_endpoint"],
    ["default/b", "qualifies"],
  ]);
  w.endpoints.set("default/b", { cluster: 2, local: 0 });
  gate.evaluate([A], w, 1);
  // The reason given is the one closest to qualifying.
  assert.equal(gate.explain(A, w)?.state, "no_endpoint_on_node");
});

Deno.test("a Local Service is announced only with an endpoint on this node, never without a node name", () => {
  const w = new World();
  w.service("default/web", [A], { trafficPolicy: "Local" }, { cluster: 3, local: 0 });
  const gate = new AnnounceGate({
    mode: "ready",
    delayMs: 2000,
    dampingHalfLifeMs: 0,
    nodeName: "gw1",
  });
  gate.evaluate([A], w, 0);
  assert.equal(gate.explain(A, w)?.state, "no_endpoint_on_node");
  w.endpoints.set("default/web", { cluster: 3, local: 1 });
  gate.evaluate([A], w, 1);
  assert.ok(gate.announced.has(A));

  const nameless = new AnnounceGate({ mode: "ready", delayMs: 2000, dampingHalfLifeMs: 0 });
  const first = nameless.evaluate([A], w, 0);
  assert.equal(nameless.explain(A, w)?.state, "no_node_name");
  assert.equal(first.warnings.length, 1);
  assert.match(first.warnings[0], /externalTrafficPolicy: Local.*--node-name/);
  assert.deepEqual(nameless.evaluate([A], w, 1).warnings, []);
});

Deno.test("a Service kube-proxy skips is never announced, with one warning, in either mode", () => {
  for (const mode of ["ready", "always"] as const) {
    const w = new World();
    w.service("default/other-proxy", [A, "10.0.100.31"], { proxySkipped: true });
    const gate = new AnnounceGate({ mode, delayMs: 2000, dampingHalfLifeMs: 0 });
    const step = gate.evaluate([A, "10.0.100.31"], w, 0);
    assert.equal(gate.announced.size, 0);
    assert.equal(step.warnings.length, 1);
    assert.match(step.warnings[0], /"default\/other-proxy".*service-proxy-name/);
    assert.deepEqual(gate.evaluate([A], w, 1).warnings, []);
    assert.equal(gate.stateCounts.get("proxy_skipped"), 2);
  }
});

Deno.test("announce always ignores endpoints and the traffic policy, not the health gate", () => {
  const w = new World();
  w.service("default/web", [A], { trafficPolicy: "Local" }, { cluster: 0, local: 0 });
  const gate = new AnnounceGate({ mode: "always", delayMs: 2000, dampingHalfLifeMs: 0 });
  gate.evaluate([A], w, 0);
  assert.ok(gate.announced.has(A));
  w.health = { open: false, reason: "kube-proxy unhealthy: 3 failed polls in a row" };
  gate.evaluate([A], w, 1);
  assert.equal(gate.announced.has(A), false);
  assert.equal(gate.explain(A, w)?.state, "kube_proxy_unhealthy");
  assert.match(gate.explain(A, w)?.health ?? "", /3 failed polls/);
});

Deno.test("after a boot, kube-proxy's first 200 announces at once; a later recovery waits for the hold-down", () => {
  const w = new World();
  w.service("default/web", [A]);
  w.health = { open: false, reason: "waiting" };
  const gate = new AnnounceGate({ mode: "ready", delayMs: 2000, dampingHalfLifeMs: 0 });
  gate.evaluate([A], w, 0);
  assert.equal(gate.announced.size, 0);
  w.health = { open: true };
  assert.deepEqual(gate.evaluate([A], w, 5000).changed, [A]);
  w.health = { open: false, reason: "unhealthy" };
  assert.deepEqual(gate.evaluate([A], w, 6000).changed, [A]);
  w.health = { open: true };
  assert.deepEqual(gate.evaluate([A], w, 7000).changed, []);
  assert.deepEqual(gate.expire(w, 9000).changed, [A]);
});

Deno.test("a restart keeps the addresses on the interface that qualify, with no hold-down", () => {
  const w = new World();
  w.service("default/web", [A]);
  w.service("default/down", ["10.0.100.98"], {}, { cluster: 0, local: 0 });
  const gate = new AnnounceGate({
    mode: "ready",
    delayMs: 2000,
    dampingHalfLifeMs: 0,
    announced: [A, "10.0.100.98", "10.0.100.99"],
  });
  // Already on the interface: no change for A; the two others go.
  const step = gate.evaluate([A, "10.0.100.98", "10.0.100.99"], w, 0);
  assert.deepEqual(step.changed, ["10.0.100.98", "10.0.100.99"]);
  assert.deepEqual([...gate.announced], [A]);
  assert.equal(gate.nextExpiry, undefined);
});

Deno.test("addresses on the interface at start wait for the hold-down if they are withdrawn and come back", () => {
  const w = new World();
  w.service("default/web", [A], {}, { cluster: 0, local: 0 });
  const gate = new AnnounceGate({
    mode: "ready",
    delayMs: 2000,
    dampingHalfLifeMs: 0,
    announced: [A],
  });
  gate.evaluate([A], w, 0);
  w.endpoints.set("default/web", { cluster: 1, local: 0 });
  gate.evaluate([A], w, 100);
  assert.equal(gate.announced.has(A), false);
  assert.equal(gate.nextExpiry, 2100);
});

Deno.test("a Service deleted and re-created within the hold-down waits; after it, it is new again", () => {
  const w = new World();
  w.service("default/web", [A]);
  const gate = new AnnounceGate({ mode: "ready", delayMs: 2000, dampingHalfLifeMs: 0 });
  gate.evaluate([A], w, 0);
  w.services.delete("default/web");
  assert.deepEqual(gate.evaluate([A], w, 100).changed, [A]);
  assert.equal(gate.explain(A, w), undefined);
  w.service("default/web", [A]);
  assert.deepEqual(gate.evaluate([A], w, 500).changed, []);
  assert.deepEqual(gate.expire(w, 2500).changed, [A]);
  w.services.delete("default/web");
  gate.evaluate([A], w, 3000);
  w.service("default/web", [A]);
  assert.deepEqual(gate.evaluate([A], w, 5000).changed, [A]);
});

Deno.test("announceVerdict follows the traffic policy", () => {
  const c = (trafficPolicy: "Cluster" | "Local"): Claimant => ({
    service: "ns/s",
    trafficPolicy,
    proxySkipped: false,
  });
  assert.equal(
    announceVerdict(c("Cluster"), { cluster: 1, local: 0 }, "ready", "gw1"),
    "qualifies",
  );
  assert.equal(
    announceVerdict(c("Cluster"), { cluster: 0, local: 0 }, "ready", "gw1"),
    "no_usable_endpoint",
  );
  assert.equal(
    announceVerdict(c("Local"), { cluster: 1, local: 0 }, "ready", "gw1"),
    "no_endpoint_on_node",
  );
  assert.equal(
    announceVerdict(c("Local"), { cluster: 0, local: 0 }, "ready", "gw1"),
    "no_usable_endpoint",
  );
  assert.equal(announceVerdict(c("Local"), { cluster: 1, local: 1 }, "ready", "gw1"), "qualifies");
  assert.equal(
    announceVerdict(c("Local"), { cluster: 1, local: 1 }, "ready", undefined),
    "no_node_name",
  );
});

// --- Properties over random event sequences, against an oracle written from the rules. ---

const ADDRS = ["10.0.100.1", "10.0.100.2", "2001:db8::1"];
const SVCS = ["ns/a", "ns/b", "ns/c"];

type Event =
  | { kind: "counts"; service: string; cluster: number; local: number }
  | { kind: "claims"; service: string; addresses: string[] }
  | { kind: "health"; open: boolean }
  | { kind: "advance"; ms: number };

const arbEvent: fc.Arbitrary<Event> = fc.oneof(
  fc.record({
    kind: fc.constant("counts" as const),
    service: fc.constantFrom(...SVCS),
    cluster: fc.integer({ min: 0, max: 2 }),
    local: fc.integer({ min: 0, max: 1 }),
  }),
  fc.record({
    kind: fc.constant("claims" as const),
    service: fc.constantFrom(...SVCS),
    addresses: fc.subarray(ADDRS),
  }),
  fc.record({ kind: fc.constant("health" as const), open: fc.boolean() }),
  fc.record({ kind: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 3000 }) }),
);

const arbSetup = fc.record({
  mode: fc.constantFrom<AnnounceMode>("ready", "always"),
  delayMs: fc.constantFrom(0, 1000, 2000),
  nodeName: fc.option(fc.constant("gw1"), { nil: undefined }),
  policies: fc.array(
    fc.record({
      trafficPolicy: fc.constantFrom<"Cluster" | "Local">("Cluster", "Local"),
      proxySkipped: fc.constantFrom(false, false, false, true),
    }),
    { minLength: 3, maxLength: 3 },
  ),
});

Deno.test("an address is announced exactly when a qualifying Service exists, the health gate is open and the hold-down has elapsed; withdrawal is never delayed", () => {
  fc.assert(
    fc.property(arbSetup, fc.array(arbEvent, { maxLength: 40 }), (setup, events) => {
      const w = new World();
      SVCS.forEach((s, i) => w.service(s, [], setup.policies[i], { cluster: 0, local: 0 }));
      const gate = new AnnounceGate({ ...setup, dampingHalfLifeMs: 0 });
      let now = 0;

      // The oracle's own view, from the rules alone.
      const qualifies = (c: Claimant) => {
        if (c.proxySkipped) return false;
        if (setup.mode === "always") return true;
        const n = w.counts(c.service, 4);
        if (c.trafficPolicy === "Cluster") return n.cluster > 0;
        return setup.nodeName !== undefined && n.local > 0;
      };
      const cond = (a: string) => w.health.open && w.claimants(a).some(qualifies);
      const since = new Map<string, number>(); // start of the current run of `cond`
      const waits = new Map<string, boolean>(); // the run started after an earlier announcement
      const announcedEver = new Set<string>();
      const leftAt = new Map<string, number>();

      const observe = (step: { changed: readonly string[] }, before: Set<string>) => {
        const flipped = ADDRS.filter((a) => before.has(a) !== gate.announced.has(a));
        assert.deepEqual([...step.changed].sort(), flipped.sort(), "changed lists the flips");
      };
      const run = (touched: string[]) => {
        // The oracle's bookkeeping for what the event did to each condition.
        for (const a of touched) {
          const desired = w.claimants(a).length > 0;
          if (!desired && (announcedEver.has(a)) && !leftAt.has(a)) leftAt.set(a, now);
          if (desired && leftAt.has(a)) {
            if (now - leftAt.get(a)! >= setup.delayMs) announcedEver.delete(a);
            leftAt.delete(a);
          }
          if (cond(a) && !since.has(a)) {
            since.set(a, now);
            waits.set(a, announcedEver.has(a));
          }
          if (!cond(a)) since.delete(a);
        }
        const before = new Set(gate.announced);
        observe(gate.evaluate(touched, w, now), before);
      };
      const check = () => {
        for (const a of ADDRS) {
          const expected = cond(a) &&
            (!waits.get(a) || now - since.get(a)! >= setup.delayMs);
          assert.equal(gate.announced.has(a), expected, `${a} at ${now}`);
          if (gate.announced.has(a)) announcedEver.add(a);
        }
        let total = 0;
        for (const n of gate.stateCounts.values()) total += n;
        assert.equal(total, ADDRS.filter((a) => w.claimants(a).length > 0).length);
        assert.equal(gate.stateCounts.get("announced") ?? 0, gate.announced.size);
      };

      for (const e of events) {
        if (e.kind === "advance") {
          const target = now + e.ms;
          for (
            let due = gate.nextExpiry;
            due !== undefined && due <= target;
            due = gate.nextExpiry
          ) {
            assert.ok(due >= now, "the next expiry is never in the past");
            now = due;
            const before = new Set(gate.announced);
            observe(gate.expire(w, now), before);
            check();
          }
          now = target;
          check();
          continue;
        }
        let touched: string[];
        if (e.kind === "counts") {
          w.endpoints.set(e.service, { cluster: e.cluster, local: e.local });
          touched = [...w.services.get(e.service)!.addresses];
        } else if (e.kind === "claims") {
          const svc = w.services.get(e.service)!;
          touched = [...new Set([...svc.addresses, ...e.addresses])];
          w.services.set(e.service, { ...svc, addresses: new Set(e.addresses) });
        } else {
          w.health = { open: e.open };
          touched = ADDRS;
        }
        run(touched);
        check();
      }
    }),
    { numRuns: 300 },
  );
});

Deno.test("stepAddress: a failing condition always withdraws, whatever the state and time", () => {
  const arbState = fc.option(
    fc.record({
      since: fc.option(fc.integer({ min: 0, max: 10_000 }), { nil: undefined }),
      announced: fc.boolean(),
      wasAnnounced: fc.boolean(),
      reason: fc.constant(undefined),
    }),
    { nil: undefined },
  );
  fc.assert(fc.property(
    arbState,
    fc.integer({ min: 0, max: 20_000 }),
    fc.integer({ min: 0, max: 5000 }),
    (prev, now, delay) => {
      const step = stepAddress(prev, { holds: false, reason: "no_usable_endpoint" }, now, {
        delayMs: delay,
        dampingHalfLifeMs: 0,
      });
      assert.equal(step.state.announced, false);
      assert.equal(step.due, undefined);
      assert.equal(step.state.reason, "no_usable_endpoint");
    },
  ));
});

Deno.test("addressCondition: the health gate closes every address", () => {
  const c: Claimant = { service: "ns/s", trafficPolicy: "Cluster", proxySkipped: false };
  const counts = () => ({ cluster: 5, local: 5 });
  assert.deepEqual(addressCondition(A, [c], counts, { open: true }, "ready", "gw1"), {
    holds: true,
    by: "ns/s",
  });
  assert.deepEqual(addressCondition(A, [c], counts, { open: false }, "always", "gw1"), {
    holds: false,
    reason: "kube_proxy_unhealthy",
  });
});

Deno.test("kube-gw plan's line names the address, its state with the reason, and each Service", () => {
  const w = new World();
  w.service("default/web", [A], { trafficPolicy: "Local" }, { cluster: 2, local: 0 });
  const gate = new AnnounceGate({
    mode: "ready",
    delayMs: 2000,
    dampingHalfLifeMs: 0,
    nodeName: "gw1",
  });
  gate.evaluate([A], w, 0);
  assert.equal(
    formatExplanation(gate.explain(A, w)!, 0),
    '10.0.100.30 withheld: no endpoint on this node (externalTrafficPolicy: Local) ["default/web" Local 0 IPv4 on node, 2 in cluster no_endpoint_on_node]',
  );
});

Deno.test("a dual-stack Service withheld in one family only: the line names the family it counts", () => {
  const V6 = "2001:db8::30";
  const w = new World();
  w.service("default/web", [A, V6]);
  // Endpoints in IPv4 only: the IPv6 address is withheld, the IPv4 one announced.
  const counts = w.counts.bind(w);
  w.counts = (service, family) => family === 4 ? counts(service, family) : { cluster: 0, local: 0 };
  const gate = new AnnounceGate({ mode: "ready", delayMs: 2000, dampingHalfLifeMs: 0 });
  gate.evaluate([A, V6], w, 0);
  assert.equal(
    formatExplanation(gate.explain(V6, w)!, 0),
    '2001:db8::30 withheld: no usable endpoint ["default/web" Cluster 0 IPv6 endpoints no_usable_endpoint]',
  );
  assert.equal(
    formatExplanation(gate.explain(A, w)!, 0),
    '10.0.100.30 announced ["default/web" Cluster 1 IPv4 endpoints ok]',
  );
});

Deno.test("an evaluation reads only the addresses it is given, and a timer with nothing due reads nothing", () => {
  const w = new World();
  const many = Array.from({ length: 2000 }, (_, i) => `10.0.${i >> 8}.${i & 255}`);
  w.service("default/big", many);
  w.service("default/web", [A]);
  let lookups = 0;
  const counting: GateInputs = {
    get health() {
      return w.health;
    },
    claimants: (a) => {
      lookups++;
      return w.claimants(a);
    },
    counts: (s, f) => w.counts(s, f),
  };
  const gate = new AnnounceGate({ mode: "ready", delayMs: 2000, dampingHalfLifeMs: 0 });
  gate.evaluate([...many, A], counting, 0);
  w.endpoints.set("default/big", { cluster: 0, local: 0 });
  gate.evaluate(many, counting, 1);
  w.endpoints.set("default/big", { cluster: 1, local: 0 });
  gate.evaluate(many, counting, 2); // 2000 addresses now wait for their hold-down
  lookups = 0;
  w.endpoints.set("default/web", { cluster: 0, local: 0 });
  assert.deepEqual(gate.evaluate([A], counting, 3).changed, [A]);
  assert.equal(lookups, 1);
  lookups = 0;
  assert.deepEqual(gate.expire(counting, 1000).changed, []);
  assert.equal(lookups, 0);
  assert.equal(gate.nextExpiry, 2002);
  assert.equal(gate.expire(counting, 2002).changed.length, many.length);
});
