/**
 * The `/status` report and `kube-gw plan`'s per-address lines: why each
 * desired address is announced or withheld, read off the announce pipeline.
 * Pure: time comes in as `now`.
 *
 * @module
 */

import { type AddressExplanation, formatExplanation, type HealthGate } from "./announce.ts";
import type { AnnouncePipeline } from "./announce_pipeline.ts";
import type { AddressStateName } from "./observer.ts";
import { type AddressSource } from "../service/eligibility.ts";

/** One address as `kube-gw plan` and `/status` show it. */
export interface AddressStatus extends Omit<AddressExplanation, "holdDownUntil"> {
  /** Where the address comes from, over its Services. */
  readonly sources: readonly AddressSource[];
  /** Milliseconds left in the hold-down, while in `hold_down`. */
  readonly holdDownLeftMs?: number;
  /** The explanation as one line (the address first), as `kube-gw plan` prints it. */
  readonly line: string;
}

/** Everything `/status` serves. */
export interface StatusReport {
  /** The kube-proxy health gate. */
  readonly health: HealthGate;
  /** Addresses by state. */
  readonly counts: Readonly<Partial<Record<AddressStateName, number>>>;
  /** One entry per desired address, sorted by address. */
  readonly addresses: readonly AddressStatus[];
}

/** What the report reads of the pipeline. */
export type StatusSource = Pick<
  AnnouncePipeline,
  "health" | "stateCounts" | "desiredAddresses" | "explain" | "sourcesOf"
>;

/**
 * Why each desired address is announced or withheld, as of `now`. Before the
 * gate opens there are no addresses and no counts.
 */
export function statusReport(source: StatusSource, now: number): StatusReport {
  const addresses: AddressStatus[] = [];
  for (const address of source.desiredAddresses()) {
    const e = source.explain(address);
    if (!e) continue;
    const { holdDownUntil, ...rest } = e;
    addresses.push({
      ...rest,
      sources: source.sourcesOf(address),
      ...(holdDownUntil !== undefined ? { holdDownLeftMs: Math.max(0, holdDownUntil - now) } : {}),
      line: formatExplanation(e, now),
    });
  }
  addresses.sort((x, y) => x.address.localeCompare(y.address, "en", { numeric: true }));
  return {
    health: source.health,
    counts: Object.fromEntries(source.stateCounts),
    addresses,
  };
}
