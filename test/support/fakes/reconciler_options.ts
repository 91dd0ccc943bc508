/**
 * The reconciler options the unit tests share, spelled out since the
 * reconciler has no defaults of its own: a 2 ms window, retries from 1 s to
 * 30 s, 5 s of stop grace, externalIPs only, `--announce always` without a
 * hold-down. A test that is about one of them sets it itself.
 *
 * @module
 */

import type { ReconcilerOptions } from "../../../lib/agent/reconciler.ts";

/** Everything but the store, networks, clock, resync and observer. */
export const TEST_RECONCILER_OPTIONS = {
  windowMs: 2,
  retryBackoff: { initialMs: 1000, maxMs: 30_000 },
  stopGraceMs: 5000,
  addresses: { externalIPs: true },
  announce: "always",
  announceDelayMs: 0,
  announceDampingMs: 0,
} as const satisfies Partial<ReconcilerOptions>;
