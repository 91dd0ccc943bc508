import assert from "node:assert/strict";
import fc from "fast-check";
import { clampDelay, MAX_DELAY_MS } from "../../../lib/base/system_clock.ts";

Deno.test("every delay handed to a timer fits Deno's 32-bit timers", () => {
  fc.assert(
    fc.property(fc.double(), (ms) => {
      const d = clampDelay(ms);
      assert.ok(d >= 0 && d <= MAX_DELAY_MS, `${ms} → ${d}`);
      if (ms > 0 && ms <= MAX_DELAY_MS) assert.equal(d, ms);
    }),
  );
  assert.equal(clampDelay(Infinity), 2 ** 31 - 1);
  assert.equal(clampDelay(NaN), 0);
  assert.equal(clampDelay(-5), 0);
});
