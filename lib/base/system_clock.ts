/**
 * The real {@linkcode Clock}: `performance.now()` and the global timers. Every
 * delay is clamped to [0, 2^31-1] ms, the range of Deno's 32-bit timers, so
 * that no computed delay (a backoff, a resync of hours) can overflow into an
 * immediate, busy timer.
 *
 * @module
 */

import { type Clock, type TimerId } from "./clock.ts";

/** The longest delay a timer can take: 2^31-1 ms, about 24.8 days. */
export const MAX_DELAY_MS = 2 ** 31 - 1;

/** A delay made safe for a timer: NaN and negatives become 0, the rest at most {@linkcode MAX_DELAY_MS}. */
export function clampDelay(ms: number): number {
  if (!(ms > 0)) return 0;
  return Math.min(ms, MAX_DELAY_MS);
}

/** The clock of the process. */
export const systemClock: Clock = {
  now: () => performance.now(),
  // Under Node's types (pulled in by npm packages) timers return objects; Deno's are numbers.
  setTimeout: (fn, ms) => setTimeout(fn, clampDelay(ms)) as unknown as TimerId,
  clearTimeout: (id: TimerId | undefined) => clearTimeout(id as number | undefined),
  setInterval: (fn, ms) => setInterval(fn, clampDelay(ms)) as unknown as TimerId,
  clearInterval: (id: TimerId | undefined) => clearInterval(id as number | undefined),
};
