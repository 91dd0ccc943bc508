/**
 * Time as the core sees it: a monotonic clock with timers, injected everywhere
 * (`systemClock` in production, a fake clock in tests), and `sleep` on it.
 *
 * @module
 */

/** A timer handle of a {@linkcode Clock}: opaque, only handed back to it. */
export type TimerId = number | object;

/**
 * Time, as the core sees it: a monotonic `now()` in milliseconds and timers.
 * The real clock is `systemClock` (lib/base/system_clock.ts); tests use a fake one.
 */
export interface Clock {
  /** Milliseconds on a monotonic scale (only differences mean anything). */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerId;
  clearTimeout(id: TimerId | undefined): void;
  setInterval(fn: () => void, ms: number): TimerId;
  clearInterval(id: TimerId | undefined): void;
}

/** Resolves after `ms` on `clock`, or rejects with the signal's reason once it aborts. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clock.clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Calls `fn` on `items` a slice at a time, letting timers and I/O run between
 * slices (a zero sleep on `clock`), so a pass over 100,000 entries does not
 * hold up the event loop. No pause when one slice holds them all.
 *
 * @param size @default 4096
 */
export async function forEachSlice<T>(
  clock: Clock,
  items: readonly T[],
  fn: (slice: readonly T[]) => void,
  size = 4096,
): Promise<void> {
  for (let i = 0; i < items.length; i += size) {
    if (i > 0) await sleep(clock, 0);
    fn(items.slice(i, i + size));
  }
}
