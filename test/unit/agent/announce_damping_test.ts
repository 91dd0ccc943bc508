import assert from "node:assert/strict";
import {
  type AddressExplanation,
  FLAP_PENALTY,
  formatExplanation,
  MAX_SUPPRESS_HALF_LIVES,
  REUSE_LIMIT,
} from "../../../lib/agent/announce.ts";
import { AnnounceGate, type GateInputs } from "../../../lib/agent/announce_gate.ts";
import {
  classifyResponse,
  HEALTH_POLL_MS,
  type HealthState,
  initialHealth,
  stepHealth,
} from "../../../lib/agent/kube_proxy_health.ts";

const A = "10.0.100.30";
const HALF_LIFE = 30_000;
const DELAY = 2000;

/** One Service with one endpoint claiming A; health as the poller would report it. */
function world(): GateInputs & { health: { open: boolean; reason?: string } } {
  return {
    health: { open: true },
    claimants: (a) =>
      a === A ? [{ service: "default/web", trafficPolicy: "Cluster", proxySkipped: false }] : [],
    counts: () => ({ cluster: 1, local: 0 }),
  };
}

/** Drives the gate like the agent: evaluate on every health change, expire at every due time. */
class Run {
  readonly gate = new AnnounceGate({ mode: "ready", delayMs: DELAY, dampingHalfLifeMs: HALF_LIFE });
  readonly w = world();
  withdrawals = 0;
  announcements = 0;
  now = 0;

  constructor() {
    this.#count(this.gate.evaluate([A], this.w, 0).changed);
  }
  /** Time passes to `t`, with every hold-down or damping that ends on the way. */
  advance(t: number): void {
    for (
      let due = this.gate.nextExpiry;
      due !== undefined && due <= t;
      due = this.gate.nextExpiry
    ) {
      this.now = due;
      this.#count(this.gate.expire(this.w, due).changed);
    }
    this.now = t;
  }
  health(open: boolean): void {
    if (open === this.w.health.open) return;
    this.w.health = { open };
    this.#count(this.gate.evaluate([A], this.w, this.now).changed);
  }
  #count(changed: readonly string[]): void {
    if (!changed.includes(A)) return;
    if (this.gate.announced.has(A)) this.announcements++;
    else this.withdrawals++;
  }
}

Deno.test("kube-proxy failing 3 polls out of 4 for 5 minutes: at most 2 withdrawals and 1 re-announcement", () => {
  const run = new Run();
  assert.equal(run.announcements, 1, "a new Service with an endpoint is announced at once");
  let health: HealthState = initialHealth({ startedWithAddresses: false });
  health = stepHealth(health, classifyResponse(200, "{}"));
  const pattern = [503, 503, 503, 200];
  for (let poll = 0, t = 0; t < 300_000; poll++, t += HEALTH_POLL_MS) {
    run.advance(t);
    health = stepHealth(health, classifyResponse(pattern[poll % 4], "{}"));
    run.health(health.open);
  }
  assert.ok(run.withdrawals <= 2, `${run.withdrawals} withdrawals`);
  assert.equal(run.announcements - 1, 1, "one re-announcement after the first outage");
  assert.equal(run.gate.announced.has(A), false, "still damped while it flaps");
  assert.equal(
    run.gate.stateCounts.get("damped") ?? run.gate.stateCounts.get("kube_proxy_unhealthy"),
    1,
  );
});

Deno.test("damping: a single outage comes back after the normal hold-down", () => {
  const run = new Run();
  run.advance(60_000);
  run.health(false);
  assert.equal(run.withdrawals, 1);
  run.advance(61_000);
  run.health(true);
  assert.equal(run.gate.nextExpiry, 61_000 + DELAY, "the hold-down, no more");
  run.advance(61_000 + DELAY);
  assert.equal(run.announcements, 2);
});

Deno.test("damping: a second outage soon after delays the return until the penalty decays, and /status says when", () => {
  const run = new Run();
  run.health(false); // penalty 1000
  run.advance(1000);
  run.health(true);
  run.advance(1000 + DELAY); // back after the hold-down
  assert.equal(run.announcements, 2);
  run.advance(5000);
  run.health(false); // penalty 1000·2^(-5/30) + 1000
  run.advance(6000);
  run.health(true);
  const penalty = FLAP_PENALTY * 2 ** (-5000 / HALF_LIFE) + FLAP_PENALTY;
  const back = 5000 + HALF_LIFE * Math.log2(penalty / REUSE_LIMIT);
  assert.ok(back > 6000 + DELAY, "longer than the hold-down");
  assert.equal(run.gate.nextExpiry, back);
  const e = run.gate.explain(A, run.w) as AddressExplanation;
  assert.equal(e.state, "damped");
  assert.equal(e.holdDownUntil, back);
  assert.match(
    formatExplanation(e, 6000),
    /^10\.0\.100\.30 withheld: damped after repeated withdrawals \(\d+s left\) \(flap penalty \d+, returns at 1000\)/,
  );
  run.advance(back - 1);
  assert.equal(run.announcements, 2, "not before the penalty has decayed");
  run.advance(back);
  assert.equal(run.announcements, 3);
});

Deno.test("damping is bounded: an address that stops flapping returns within the maximum suppression", () => {
  const run = new Run();
  // Flap every second for ten minutes: the penalty is capped, not grown without end.
  for (let t = 0; t < 600_000; t += 1000) {
    run.advance(t);
    run.health(!run.w.health.open);
  }
  run.advance(600_000);
  run.health(true);
  const last = 600_000;
  assert.ok(run.gate.nextExpiry! <= last + MAX_SUPPRESS_HALF_LIVES * HALF_LIFE);
  run.advance(last + MAX_SUPPRESS_HALF_LIVES * HALF_LIFE);
  assert.equal(run.gate.announced.has(A), true);
});

Deno.test("damping off (half-life 0): every return waits only the hold-down", () => {
  const gate = new AnnounceGate({ mode: "ready", delayMs: DELAY, dampingHalfLifeMs: 0 });
  const w = world();
  gate.evaluate([A], w, 0);
  for (let t = 1000; t < 60_000; t += 4000) {
    w.health = { open: false };
    gate.evaluate([A], w, t);
    w.health = { open: true };
    gate.evaluate([A], w, t + 1);
    assert.equal(gate.nextExpiry, t + 1 + DELAY);
    gate.expire(w, t + 1 + DELAY);
    assert.equal(gate.announced.has(A), true);
  }
});
