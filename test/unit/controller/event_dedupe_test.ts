import assert from "node:assert/strict";
import fc from "fast-check";
import { DEFAULT_EVENT_FILTER, EventFilter } from "../../../lib/controller/event_dedupe.ts";

const MIN = 60_000;

Deno.test("an Event equal to the last one emitted for the object is suppressed", () => {
  const f = new EventFilter();
  assert.equal(f.decide("svc/a", "IPAllocated", "got 10.0.0.1", 0), "emit");
  assert.equal(f.decide("svc/a", "IPAllocated", "got 10.0.0.1", 1), "duplicate");
  assert.equal(f.decide("svc/a", "IPAllocated", "got 10.0.0.1", 10 * MIN), "duplicate");
  // A change emits, and the old one may come back after it.
  assert.equal(f.decide("svc/a", "IPReleased", "released 10.0.0.1", 2), "emit");
  assert.equal(f.decide("svc/a", "IPAllocated", "got 10.0.0.1", 3), "emit");
  // Another object is another history.
  assert.equal(f.decide("svc/b", "IPAllocated", "got 10.0.0.1", 3), "emit");
});

Deno.test("an object gets a burst of 25 Events, then one per 5 minutes", () => {
  const f = new EventFilter();
  const verdicts = Array.from(
    { length: 30 },
    (_, i) => f.decide("svc/a", "AllocationFailed", `try ${i}`, 0),
  );
  assert.deepEqual(verdicts.filter((v) => v === "emit").length, 25);
  assert.deepEqual(verdicts.slice(25), Array(5).fill("rate_limited"));
  assert.equal(f.decide("svc/a", "AllocationFailed", "x", 5 * MIN - 1), "rate_limited");
  assert.equal(f.decide("svc/a", "AllocationFailed", "x", 5 * MIN), "emit");
  assert.equal(f.decide("svc/a", "AllocationFailed", "y", 5 * MIN + 1), "rate_limited");
  // Another object is not limited by the first.
  assert.equal(f.decide("svc/b", "AllocationFailed", "x", 5 * MIN + 1), "emit");
});

Deno.test("a rate-limited Event is not remembered as emitted, so it goes out once a token is back", () => {
  const f = new EventFilter({ burst: 1 });
  assert.equal(f.decide("o", "A", "1", 0), "emit");
  assert.equal(f.decide("o", "B", "2", 1), "rate_limited");
  assert.equal(f.decide("o", "B", "2", 5 * MIN + 1), "emit");
});

Deno.test("memory is bounded: the least recently used object is forgotten first", () => {
  const f = new EventFilter({ maxObjects: 3 });
  for (const k of ["a", "b", "c"]) f.decide(k, "R", "m", 0);
  f.decide("a", "R", "m", 1); // a is now the most recent
  f.decide("d", "R", "m", 2); // b goes
  assert.equal(f.size, 3);
  assert.equal(f.decide("a", "R", "m", 3), "duplicate");
  assert.equal(f.decide("b", "R", "m", 3), "emit", "b was forgotten");
  f.forget("a");
  assert.equal(f.decide("a", "R", "m", 4), "emit");
});

Deno.test("property: no object ever emits more than the burst plus the refill over any run", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          key: fc.constantFrom("a", "b", "c"),
          msg: fc.constantFrom("x", "y", "z"),
          dt: fc.integer({ min: 0, max: 2 * MIN }),
        }),
        { maxLength: 300 },
      ),
      (events) => {
        const f = new EventFilter();
        const emitted = new Map<string, number>();
        const last = new Map<string, string>();
        let now = 0;
        for (const e of events) {
          now += e.dt;
          const v = f.decide(e.key, "R", e.msg, now);
          if (v === "emit") {
            assert.notEqual(last.get(e.key), e.msg, "never the same Event twice in a row");
            last.set(e.key, e.msg);
            emitted.set(e.key, (emitted.get(e.key) ?? 0) + 1);
          }
          if (v === "duplicate") assert.equal(last.get(e.key), e.msg);
        }
        for (const n of emitted.values()) {
          assert.ok(n <= DEFAULT_EVENT_FILTER.burst + now / DEFAULT_EVENT_FILTER.refillMs);
        }
      },
    ),
  );
});

Deno.test("an Event that never reached the API server is taken back: the same Event goes out next time", () => {
  const f = new EventFilter({ burst: 2 });
  assert.equal(f.decide("Service/a/b/1", "IPAllocated", "10.0.0.1", 0), "emit");
  f.unrecord("Service/a/b/1", "IPAllocated", "10.0.0.1");
  assert.equal(f.decide("Service/a/b/1", "IPAllocated", "10.0.0.1", 0), "emit");
  assert.equal(f.decide("Service/a/b/1", "IPAllocated", "10.0.0.1", 0), "duplicate");
  // The token was returned: one more distinct Event fits the burst of 2.
  assert.equal(f.decide("Service/a/b/1", "IPReleased", "10.0.0.1", 0), "emit");
  // Taking back anything but the last Event changes nothing.
  f.unrecord("Service/a/b/1", "IPAllocated", "10.0.0.1");
  assert.equal(f.decide("Service/a/b/1", "IPReleased", "10.0.0.1", 0), "duplicate");
});
