/**
 * How current a program's view of the API is (the agent's, the
 * controller's): for each watched collection, the time since it was last
 * known current (a complete list, an event, a bookmark, or a liveness probe
 * answered over the watch's connection), and whether that makes the program
 * not ready. Pure: the times come in.
 *
 * @module
 */

import { badValue, parseDuration, type RawOptions, sourceOf } from "../base/flags.ts";

/**
 * How long a watch may go without being known current before `/readyz`
 * fails, in milliseconds: the default of `--api-stale-after`, for both
 * programs. 45 s is the liveness probe's period plus its timeout (30 s +
 * 15 s): within it, a quiet watch on a live connection is proved current again.
 */
export const DEFAULT_API_STALE_AFTER_MS = 45_000;

/** `--api-stale-after`'s default as the command line shows it. */
export const DEFAULT_API_STALE_AFTER = `${DEFAULT_API_STALE_AFTER_MS / 1000}s`;

/** The shortest `--api-stale-after`: the probe's period, 30 s, and some. */
const MIN_API_STALE_AFTER_MS = 35_000;

/**
 * Parses `--api-stale-after` (both programs): a duration of at least 35 s,
 * since a quiet watch is proved current only every 30 s.
 *
 * @throws {UsageError} naming the flag or environment variable.
 */
export function parseApiStaleAfter(raw: RawOptions, fallback: string): number {
  const source = sourceOf(raw, "apiStaleAfter", "--api-stale-after");
  const text = raw.apiStaleAfter ?? fallback;
  const ms = parseDuration(source, text);
  if (ms < MIN_API_STALE_AFTER_MS) {
    throw badValue(source, text, "is shorter than 35s (the API connection is probed every 30s)");
  }
  return ms;
}

/** What readiness needs of one list-watch source (a `ListWatch`). */
export interface CurrencySource {
  readonly kind: string;
  readonly path: string;
  /** A complete list arrived at least once. */
  readonly synced: boolean;
  /** When (on the program's clock) it was last known current; undefined before the first list. */
  readonly lastCurrent: number | undefined;
  /** The last error since then, if any. */
  readonly lastError: string | undefined;
}

/**
 * The age in milliseconds of the least current source, or undefined while
 * some source has not listed yet (readiness says so already).
 */
export function oldestAge(sources: readonly CurrencySource[], now: number): number | undefined {
  let oldest = 0;
  for (const s of sources) {
    if (s.lastCurrent === undefined) return undefined;
    oldest = Math.max(oldest, now - s.lastCurrent);
  }
  return oldest;
}

/**
 * Why the API side is not ready: the least current source, when it was last
 * current more than `staleAfterMs` ago, with its last error. Undefined when
 * every source is current, or some has not listed yet.
 */
export function apiNotReady(
  sources: readonly CurrencySource[],
  now: number,
  staleAfterMs: number,
): string | undefined {
  let worst: CurrencySource | undefined;
  let age = 0;
  for (const s of sources) {
    if (s.lastCurrent === undefined) return undefined;
    if (now - s.lastCurrent > age) {
      age = now - s.lastCurrent;
      worst = s;
    }
  }
  if (!worst || age <= staleAfterMs) return undefined;
  const why = worst.lastError ? `: ${worst.lastError}` : "";
  return `the Kubernetes API was last known current ${
    Math.round(age / 1000)
  }s ago (${worst.kind} watch of ${worst.path})${why}`;
}
