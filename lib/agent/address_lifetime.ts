/**
 * Address lifetimes (`--address-lifetime`): host addresses added with a
 * finite `valid_lft`/`preferred_lft` and renewed in one `ip -batch` of
 * `address replace` lines at a third of the lifetime, so that an agent that
 * dies takes its announcements with it within the lifetime. This file parses
 * the flag and derives the renewal interval (pure); the renewal script is
 * iproute2's (`kernel/iproute2.ts`), the timer the renewer's.
 *
 * @module
 */

import { parseDuration, UsageError } from "../base/flags.ts";

/** The shortest lifetime accepted, in seconds (renewal every second). @default 3 */
export const MIN_LIFETIME_SECONDS = 3;
/** The longest: one below the kernel's "forever" (0xffffffff). */
export const MAX_LIFETIME_SECONDS = 0xfffffffe;

/**
 * Parses `--address-lifetime`: `off` (or `0`, or unset) is undefined; else a
 * duration in whole seconds, at least {@linkcode MIN_LIFETIME_SECONDS}.
 * Returns the lifetime in seconds, as `ip` takes it.
 *
 * @default off
 * @throws {UsageError} with one line naming the flag.
 */
export function parseAddressLifetime(text: string | undefined): number | undefined {
  const t = text?.trim() ?? "off";
  if (t === "off" || t === "0" || t === "") return undefined;
  const ms = parseDuration("--address-lifetime", t);
  const bad = (what: string) => new UsageError(`--address-lifetime: ${JSON.stringify(t)} ${what}`);
  if (ms === 0) return undefined;
  if (ms % 1000 !== 0) throw bad("is not a whole number of seconds");
  const s = ms / 1000;
  if (s < MIN_LIFETIME_SECONDS) {
    throw bad(`is shorter than ${MIN_LIFETIME_SECONDS}s (off disables)`);
  }
  if (s > MAX_LIFETIME_SECONDS) throw bad(`is longer than ${MAX_LIFETIME_SECONDS}s`);
  return s;
}

/** How often to renew: a third of the lifetime, in milliseconds. */
export function renewalIntervalMs(lifetimeSeconds: number): number {
  return Math.floor(lifetimeSeconds * 1000 / 3);
}
