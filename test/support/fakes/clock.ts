/**
 * A {@linkcode Clock} on `@sinonjs/fake-timers`: time stands still until a
 * test moves it, so tests of windows, backoff, resyncs and silence deadlines
 * run in no real time. Needs no permissions.
 *
 * @module
 */

import FakeTimers from "@sinonjs/fake-timers";
import { type Clock, type TimerId } from "../../../lib/base/clock.ts";

/** A fake clock and the controls a test moves it with. */
export class FakeClock implements Clock {
  readonly #timers = FakeTimers.createClock(0);

  now(): number {
    return this.#timers.now;
  }

  setTimeout(fn: () => void, ms: number): TimerId {
    return this.#timers.setTimeout(fn, ms);
  }

  clearTimeout(id: TimerId | undefined): void {
    if (id !== undefined) this.#timers.clearTimeout(id as FakeTimers.TimerId);
  }

  setInterval(fn: () => void, ms: number): TimerId {
    return this.#timers.setInterval(fn, ms);
  }

  clearInterval(id: TimerId | undefined): void {
    if (id !== undefined) this.#timers.clearInterval(id as FakeTimers.TimerId);
  }

  /**
   * Moves time forward by `ms`, firing every timer due on the way and letting
   * the promises they start run between timers.
   */
  async tick(ms: number): Promise<void> {
    await this.#timers.tickAsync(ms);
  }

  /** Fires the next timer (moving time to it), if any; returns whether one fired. */
  async next(): Promise<boolean> {
    if (this.#timers.countTimers() === 0) return false;
    await this.#timers.nextAsync();
    return true;
  }

  /**
   * Moves time from timer to timer until `predicate` holds, letting promises
   * settle at each step; throws naming `what` if it never does (no real
   * time passes: this is how a unit test waits for an event).
   */
  async runUntil(what: string, predicate: () => boolean, maxSteps = 1000): Promise<void> {
    for (let i = 0; i < maxSteps && !predicate(); i++) {
      if (!await this.next()) await this.tick(0);
    }
    if (!predicate()) throw new Error(`fake clock: ${what} did not happen in ${maxSteps} steps`);
  }

  /** How many timers are pending. */
  get pending(): number {
    return this.#timers.countTimers();
  }
}
