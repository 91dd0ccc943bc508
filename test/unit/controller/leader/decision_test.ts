import assert from "node:assert/strict";
import fc from "fast-check";
import {
  checkTimings,
  decodeLease,
  DEFAULT_TIMINGS,
  type ElectionState,
  holderIdentity,
  INITIAL_ELECTION,
  type LeaseAction,
  type LeaseBody,
  type LeaseRecord,
  leaseWritten,
  microTime,
  nextLeaseAction,
  renewDeadlinePassed,
} from "../../../../lib/controller/leader/decision.ts";
import { ShapeError } from "../../../../lib/base/shape.ts";

const TARGET = { namespace: "kube-system", name: "kube-gw-controller" };

/** An API server holding one Lease, with resourceVersion preconditions. */
class FakeLeaseApi {
  lease?: LeaseRecord;
  #rv = 0;

  get(): LeaseRecord | undefined {
    return this.lease;
  }

  /** Writes a body as POST (no resourceVersion) or PUT; returns the new resourceVersion, or undefined on 409. */
  write(body: LeaseBody): string | undefined {
    const rv = body.metadata.resourceVersion;
    if (rv === undefined ? this.lease !== undefined : this.lease?.resourceVersion !== rv) {
      return undefined;
    }
    const resourceVersion = String(++this.#rv);
    this.lease = { ...TARGET, resourceVersion, ...body.spec };
    return resourceVersion;
  }
}

interface Candidate {
  readonly identity: string;
  /** When the process starts, its tick phase (it acts at start + k × retry). */
  readonly start: number;
  /** When it dies without releasing. */
  readonly crash?: number;
  /** From when to when it cannot reach the API. */
  readonly cutFrom?: number;
  readonly cutUntil?: number;
  state: ElectionState;
}

interface Step {
  readonly at: number;
  readonly who: string;
  readonly kind: LeaseAction["kind"] | "unreachable-stop";
  readonly wrote: boolean;
}

/**
 * Runs candidates on a fake timeline (1 ms resolution, no real time), each
 * acting every retry period as the adapter would. Checks at every instant
 * that at most one live candidate believes it leads.
 */
function simulate(cands: Candidate[], until: number, api = new FakeLeaseApi()): Step[] {
  const steps: Step[] = [];
  const { retryPeriodMs } = DEFAULT_TIMINGS;
  const ticks = cands.flatMap((c) => {
    const out: { at: number; c: Candidate }[] = [];
    for (
      let t = c.start;
      t <= until && (c.crash === undefined || t < c.crash);
      t += retryPeriodMs
    ) {
      out.push({ at: t, c });
    }
    return out;
  }).sort((a, b) => a.at - b.at);
  for (const { at, c } of ticks) {
    const cut = c.cutFrom !== undefined && at >= c.cutFrom && at < (c.cutUntil ?? Infinity);
    if (cut) {
      // Cannot read the Lease: only the renew deadline can be checked.
      if (renewDeadlinePassed(c.state, at)) {
        c.state = { ...c.state, leading: false };
        steps.push({ at, who: c.identity, kind: "unreachable-stop", wrote: false });
      }
    } else {
      const { action, state } = nextLeaseAction(api.get(), c.state, at, {
        ...TARGET,
        identity: c.identity,
      });
      c.state = state;
      let wrote = false;
      if ("body" in action) {
        const rv = api.write(action.body);
        if (rv !== undefined) {
          c.state = leaseWritten(c.state, action, at, rv);
          wrote = true;
        }
      }
      steps.push({ at, who: c.identity, kind: action.kind, wrote });
    }
    const leaders = cands.filter((x) =>
      x.state.leading && (x.crash === undefined || at < x.crash) && x.start <= at
    );
    assert.ok(leaders.length <= 1, `two leaders at ${at}: ${leaders.map((l) => l.identity)}`);
  }
  return steps;
}

function cand(identity: string, start: number, more: Partial<Candidate> = {}): Candidate {
  return { identity, start, state: INITIAL_ELECTION, ...more };
}

const firstWrite = (steps: Step[], who: string, kind: string) =>
  steps.find((s) => s.who === who && s.kind === kind && s.wrote)?.at;

Deno.test("the first candidate creates the Lease and renews it; the other stands by", () => {
  const steps = simulate([cand("a", 0), cand("b", 500)], 20_000);
  assert.equal(firstWrite(steps, "a", "create"), 0);
  assert.ok(
    steps.filter((s) => s.who === "a").every((s) => s.kind === "create" || s.kind === "renew"),
  );
  assert.ok(steps.filter((s) => s.who === "b").every((s) => s.kind === "standby"));
});

Deno.test("a standby takes over a dead leader's Lease only after it expires, within 25 s", () => {
  const steps = simulate([cand("a", 0, { crash: 10_001 }), cand("b", 1_000)], 60_000);
  const lastRenew = steps.filter((s) => s.who === "a" && s.wrote).at(-1)!.at;
  assert.equal(lastRenew, 10_000);
  const takeover = firstWrite(steps, "b", "acquire")!;
  // b saw a's last change at 11,000; the Lease is valid for 15 s from then.
  assert.equal(takeover, 27_000);
  assert.ok(takeover > lastRenew + 15_000);
  assert.ok(takeover - 10_001 <= 25_000);
});

Deno.test("a leader that cannot reach the API stops at the renew deadline, before anyone takes over", () => {
  const steps = simulate(
    [cand("a", 0, { cutFrom: 6_001 }), cand("b", 1_000)],
    60_000,
  );
  const stop = steps.find((s) => s.who === "a" && s.kind === "unreachable-stop")!.at;
  assert.equal(stop, 16_000); // last renew at 6,000 + 10 s
  const takeover = firstWrite(steps, "b", "acquire")!;
  assert.ok(stop < takeover, `${stop} < ${takeover}`);
  assert.equal(takeover, 23_000); // b saw the 6,000 renew at 7,000; + 15 s, next tick
});

Deno.test("a leader whose writes fail stops at the renew deadline", () => {
  const api = new FakeLeaseApi();
  const a = cand("a", 0);
  simulate([a], 4_000, api);
  assert.equal(a.state.leading, true);
  // From now on every write is refused (a stale resourceVersion, say).
  const id = { ...TARGET, identity: "a" };
  let state = a.state;
  const kinds: string[] = [];
  for (let t = 6_000; t <= 14_000; t += 2_000) {
    const next = nextLeaseAction(api.get(), state, t, id);
    state = next.state;
    kinds.push(next.action.kind);
  }
  assert.deepEqual(kinds, ["renew", "renew", "renew", "renew", "stop"]);
  assert.equal(state.leading, false);
  // It leads again only after a write that the API accepts (a new term).
  const retry = nextLeaseAction(api.get(), state, 16_000, id);
  assert.equal(retry.action.kind, "renew");
  assert.equal(retry.state.leading, false);
});

Deno.test("a leader that finds the Lease held by another stops at once", () => {
  const api = new FakeLeaseApi();
  const a = cand("a", 0);
  simulate([a], 2_000, api);
  api.lease = { ...api.lease!, holderIdentity: "intruder", resourceVersion: "99" };
  const next = nextLeaseAction(api.get(), a.state, 4_000, { ...TARGET, identity: "a" });
  assert.deepEqual(next.action, { kind: "stop", why: "lost" });
  assert.equal(next.state.leading, false);
});

Deno.test("a leader that stops cleanly releases the Lease and a standby takes it at its next retry", () => {
  const api = new FakeLeaseApi();
  const a = cand("a", 0);
  const b = cand("b", 1_000);
  simulate([a, b], 8_000, api);
  const rel = nextLeaseAction(
    api.get(),
    a.state,
    8_500,
    { ...TARGET, identity: "a" },
    DEFAULT_TIMINGS,
    {
      stopping: true,
    },
  );
  assert.equal(rel.action.kind, "release");
  assert.ok("body" in rel.action);
  assert.equal(rel.action.body.spec.holderIdentity, "");
  assert.equal(rel.action.body.spec.leaseDurationSeconds, 1);
  assert.ok(api.write(rel.action.body));
  a.state = leaseWritten(rel.state, rel.action, 8_500, "x");
  assert.equal(a.state.leading, false);
  const next = nextLeaseAction(api.get(), b.state, 9_000, { ...TARGET, identity: "b" });
  assert.equal(next.action.kind, "acquire");
  // Stopping without holding writes nothing.
  const none = nextLeaseAction(api.get(), b.state, 9_000, { ...TARGET, identity: "b" }, undefined, {
    stopping: true,
  });
  assert.equal(none.action.kind, "none");
});

Deno.test("acquiring counts a transition; renewing keeps acquireTime; bodies carry the read resourceVersion", () => {
  const id = { ...TARGET, identity: "b" };
  const held: LeaseRecord = {
    ...TARGET,
    resourceVersion: "7",
    holderIdentity: "a",
    leaseDurationSeconds: 15,
    acquireTime: microTime(0),
    renewTime: microTime(0),
    leaseTransitions: 3,
  };
  const seen = nextLeaseAction(held, INITIAL_ELECTION, 1_000, id).state;
  const acq = nextLeaseAction(held, seen, 16_001, id);
  assert.equal(acq.action.kind, "acquire");
  assert.ok("body" in acq.action);
  assert.deepEqual(acq.action.body, {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: { ...TARGET, resourceVersion: "7" },
    spec: {
      holderIdentity: "b",
      leaseDurationSeconds: 15,
      acquireTime: "1970-01-01T00:00:16.001000Z",
      renewTime: "1970-01-01T00:00:16.001000Z",
      leaseTransitions: 4,
    },
  });
  const mine: LeaseRecord = { ...TARGET, resourceVersion: "8", ...acq.action.body.spec };
  const renew = nextLeaseAction(mine, leaseWritten(acq.state, acq.action, 16_001, "8"), 18_001, id);
  assert.ok("body" in renew.action);
  assert.equal(renew.action.kind, "renew");
  assert.equal(renew.action.body.spec.acquireTime, "1970-01-01T00:00:16.001000Z");
  assert.equal(renew.action.body.spec.renewTime, "1970-01-01T00:00:18.001000Z");
  assert.equal(renew.action.body.spec.leaseTransitions, 4);
});

Deno.test("expiry follows the local observation time, not the remote renewTime", () => {
  const id = { ...TARGET, identity: "b" };
  // The holder's clock is an hour behind: its renewTime looks long expired.
  const lease: LeaseRecord = {
    ...TARGET,
    resourceVersion: "1",
    holderIdentity: "a",
    leaseDurationSeconds: 15,
    renewTime: "2000-01-01T00:00:00.000000Z",
    leaseTransitions: 0,
  };
  const now = Date.UTC(2026, 0, 1);
  const first = nextLeaseAction(lease, INITIAL_ELECTION, now, id);
  assert.equal(first.action.kind, "standby");
  assert.ok(first.action.kind === "standby" && first.action.expiresAt === now + 15_000);
  // Unchanged record: still valid until 15 s after we first saw it.
  assert.equal(nextLeaseAction(lease, first.state, now + 14_999, id).action.kind, "standby");
  assert.equal(nextLeaseAction(lease, first.state, now + 15_000, id).action.kind, "acquire");
  // A change (a renewal) restarts the wait.
  const renewed = { ...lease, renewTime: "2000-01-01T00:00:02.000000Z", resourceVersion: "2" };
  const later = nextLeaseAction(renewed, first.state, now + 14_000, id);
  assert.equal(later.action.kind, "standby");
  assert.equal(nextLeaseAction(renewed, later.state, now + 28_999, id).action.kind, "standby");
});

Deno.test("property: on any schedule of starts, crashes and partitions there is never more than one leader", () => {
  const arbCand = (identity: string) =>
    fc.record({
      start: fc.integer({ min: 0, max: 5_000 }),
      crash: fc.option(fc.integer({ min: 0, max: 60_000 }), { nil: undefined }),
      cut: fc.option(
        fc.tuple(fc.integer({ min: 0, max: 60_000 }), fc.integer({ min: 0, max: 30_000 })),
        { nil: undefined },
      ),
    }).map((r) =>
      cand(identity, r.start, {
        crash: r.crash,
        cutFrom: r.cut?.[0],
        cutUntil: r.cut ? r.cut[0] + r.cut[1] : undefined,
      })
    );
  fc.assert(
    fc.property(fc.tuple(arbCand("a"), arbCand("b"), arbCand("c")), (cands) => {
      const steps = simulate(cands, 90_000);
      // Someone alive and connected at the end leads within lease + renew + retry.
      const alive = cands.filter((c) => c.crash === undefined && c.cutFrom === undefined);
      if (alive.length > 0) {
        assert.ok(
          steps.some((s) => s.wrote && s.at >= 90_000 - 20_000),
          "someone leads at the end",
        );
      }
    }),
    { numRuns: 200 },
  );
});

Deno.test("decodeLease reads the record and treats broken fields as absent", () => {
  const lease = decodeLease({
    metadata: { namespace: "kube-system", name: "kube-gw-controller", resourceVersion: "12" },
    spec: {
      holderIdentity: "spine1-ab",
      leaseDurationSeconds: 15,
      acquireTime: "2026-05-14T10:00:00.000000Z",
      renewTime: "2026-05-14T10:00:02.000000Z",
      leaseTransitions: 2,
    },
  });
  assert.deepEqual(lease, {
    namespace: "kube-system",
    name: "kube-gw-controller",
    resourceVersion: "12",
    holderIdentity: "spine1-ab",
    leaseDurationSeconds: 15,
    acquireTime: "2026-05-14T10:00:00.000000Z",
    renewTime: "2026-05-14T10:00:02.000000Z",
    leaseTransitions: 2,
  });
  const broken = decodeLease({
    metadata: { namespace: "n", name: "l" },
    spec: { holderIdentity: "x".repeat(1000), leaseDurationSeconds: -5, leaseTransitions: "2" },
  });
  assert.equal(broken.holderIdentity, undefined);
  assert.equal(broken.leaseDurationSeconds, undefined);
  assert.equal(broken.leaseTransitions, 0);
  assert.throws(() => decodeLease({ spec: {} }), ShapeError);
});

Deno.test("holderIdentity is the host name and a random suffix, so two processes on one host differ", () => {
  const a = holderIdentity("spine1.dc1", new Uint8Array([0, 1, 0xab, 0xff]));
  assert.equal(a, "spine1.dc1-0001abff");
  assert.notEqual(
    holderIdentity("spine1", new Uint8Array([1])),
    holderIdentity("spine1", new Uint8Array([2])),
  );
  assert.equal(holderIdentity("", new Uint8Array([7])), "kube-gw-07");
  assert.equal(holderIdentity("bad host\n$(x)", new Uint8Array([7])), "badhostx-07");
});

Deno.test("checkTimings accepts client-go's defaults and refuses inconsistent timings", () => {
  checkTimings(DEFAULT_TIMINGS);
  assert.throws(
    () => checkTimings({ ...DEFAULT_TIMINGS, renewDeadlineMs: 15_000 }),
    /lease duration/,
  );
  assert.throws(() => checkTimings({ ...DEFAULT_TIMINGS, retryPeriodMs: 9_000 }), /renew deadline/);
  assert.throws(
    () => checkTimings({ ...DEFAULT_TIMINGS, leaseDurationMs: 15_500 }),
    /whole number/,
  );
});
