import assert from "node:assert/strict";
import { LeaderElector } from "../../../../lib/controller/leader/elector.ts";
import {
  DEFAULT_TIMINGS,
  type LeaseBody,
  type LeaseRecord,
} from "../../../../lib/controller/leader/decision.ts";
import type { LeaseClient } from "../../../../lib/controller/leader/lease_api.ts";
import { FakeClock } from "../../../support/fakes/clock.ts";
import { ApiError } from "../../../../lib/kube/errors.ts";

/** One Lease with resourceVersion preconditions; `down` makes every request fail. */
class FakeLeases {
  lease?: LeaseRecord;
  down = false;
  /** Requests are never answered (until their signal aborts). */
  hang = false;
  #rv = 0;

  client(): LeaseClient {
    return {
      get: (signal) => {
        if (this.hang) {
          return new Promise((_, reject) =>
            signal.addEventListener("abort", () => reject(signal.reason), { once: true })
          );
        }
        if (this.down) return Promise.reject(new ApiError("connection refused"));
        return Promise.resolve(this.lease);
      },
      write: (kind, body: LeaseBody) => {
        if (this.down) return Promise.reject(new ApiError("connection refused"));
        if (
          kind === "create"
            ? this.lease !== undefined
            : body.metadata.resourceVersion !== this.lease?.resourceVersion
        ) {
          return Promise.reject(new ApiError("conflict", 409));
        }
        const resourceVersion = String(++this.#rv);
        this.lease = {
          ...body.metadata,
          ...body.spec,
          holderIdentity: body.spec.holderIdentity || undefined,
          resourceVersion,
        };
        return Promise.resolve(resourceVersion);
      },
    };
  }
}

function candidate(leases: FakeLeases, clock: FakeClock, identity: string) {
  const log: string[] = [];
  const elector = new LeaderElector({
    client: leases.client(),
    clock,
    target: { namespace: "kube-system", name: "kube-gw-controller", identity },
    random: () => 0.5,
    onStartedLeading: () => log.push(`start@${clock.now()}`),
    onStoppedLeading: (why) => log.push(`stop:${why}@${clock.now()}`),
  });
  const life = new AbortController();
  const running = elector.run(life.signal);
  return { elector, log, life, running };
}

Deno.test("a standby takes over a dead leader's Lease after the lease duration, within one jittered retry", async () => {
  const clock = new FakeClock();
  const leases = new FakeLeases();
  const a = candidate(leases, clock, "a");
  await clock.runUntil("a to lead", () => a.elector.leading);
  const b = candidate(leases, clock, "b");
  await clock.tick(5000);
  assert.equal(b.elector.leading, false);
  // a dies: it stops renewing and releases nothing.
  a.life.abort();
  await a.running;
  const diedAt = clock.now();
  await clock.runUntil("b to lead", () => b.elector.leading, 10_000);
  const took = clock.now() - diedAt;
  const retry = DEFAULT_TIMINGS.retryPeriodMs * 2.2;
  // b counts the lease from when it saw a's last renew (at most one retry period before a died).
  assert.ok(
    took >= DEFAULT_TIMINGS.leaseDurationMs - DEFAULT_TIMINGS.retryPeriodMs,
    `took ${took}ms`,
  );
  assert.ok(took <= DEFAULT_TIMINGS.leaseDurationMs + retry, `took ${took}ms`);
  assert.equal(leases.lease?.holderIdentity, "b");
  assert.equal(leases.lease?.leaseTransitions, 1);
  b.life.abort();
  await b.running;
});

Deno.test("a leader that cannot renew stops writing at its renew deadline, before its Lease can expire", async () => {
  const clock = new FakeClock();
  const leases = new FakeLeases();
  const a = candidate(leases, clock, "a");
  await clock.runUntil("a to lead", () => a.elector.leading);
  await clock.tick(4000);
  const lastRenew = clock.now() - (clock.now() % DEFAULT_TIMINGS.retryPeriodMs);
  leases.down = true;
  await clock.runUntil("a to stop", () => a.log.some((l) => l.startsWith("stop:")), 10_000);
  const stoppedAt = Number(a.log.at(-1)!.split("@")[1]);
  assert.match(a.log.at(-1)!, /^stop:renew_deadline@/);
  assert.ok(stoppedAt - lastRenew <= DEFAULT_TIMINGS.renewDeadlineMs, `${stoppedAt - lastRenew}ms`);
  assert.ok(stoppedAt - lastRenew < DEFAULT_TIMINGS.leaseDurationMs);
  assert.equal(a.elector.leading, false);
  // Back online, it becomes leader again only by renewing its (still held) Lease.
  leases.down = false;
  await clock.runUntil("a to lead again", () => a.elector.leading, 10_000);
  a.life.abort();
  await a.running;
});

Deno.test("a leader that stops cleanly releases the Lease and the standby takes it at its next retry", async () => {
  const clock = new FakeClock();
  const leases = new FakeLeases();
  const a = candidate(leases, clock, "a");
  await clock.runUntil("a to lead", () => a.elector.leading);
  const b = candidate(leases, clock, "b");
  await clock.tick(3000);
  a.life.abort();
  await a.running;
  await a.elector.release(new AbortController().signal);
  assert.equal(leases.lease?.holderIdentity, undefined);
  assert.deepEqual(a.log.map((l) => l.split("@")[0]), ["start", "stop:released"]);
  const releasedAt = clock.now();
  await clock.runUntil("b to lead", () => b.elector.leading, 10_000);
  assert.ok(clock.now() - releasedAt <= DEFAULT_TIMINGS.retryPeriodMs * 2.2);
  b.life.abort();
  await b.running;
});

Deno.test("a leader whose Lease requests hang still stops at its renew deadline", async () => {
  const clock = new FakeClock();
  const leases = new FakeLeases();
  const a = candidate(leases, clock, "a");
  await clock.runUntil("a to lead", () => a.elector.leading);
  const renewedAt = clock.now();
  leases.hang = true;
  await clock.runUntil("a to stop", () => !a.elector.leading, 10_000);
  assert.ok(
    clock.now() - renewedAt <= DEFAULT_TIMINGS.renewDeadlineMs,
    `${clock.now() - renewedAt}ms`,
  );
  assert.match(a.log.at(-1)!, /^stop:renew_deadline@/);
  a.life.abort();
  await a.running;
});
