/**
 * Writes each AddressPool's status (addresses used and free per family,
 * conditions) through the status subresource, as a JSON merge patch, while
 * this process leads and allocates, and only when what a pool shows differs
 * from what it should show. Runs a pass on each change of the pools and once
 * a second (the addresses held change with every allocation; a pass costs
 * one walk over the held addresses and writes nothing when nothing changed).
 * A write that fails is tried again at a later pass. A pool refused for an
 * overlap or an invalid spec also gets a Warning Event, once per change.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { JsonApi } from "../kube/ports.ts";
import { ApiError } from "../kube/errors.ts";
import type { Clock } from "../base/clock.ts";
import type { EventSink } from "./ports.ts";
import { ADDRESS_POOLS, type AddressPoolRecord, type PoolStatus } from "./address_pool.ts";
import type { AddressPoolCache } from "./address_pool_cache.ts";
import { poolStatus, poolStatusPatch, sameStatus } from "./pool_status.ts";

const log = getLogger(["kube-gw", "controller"]);

/** The path of an AddressPool's status subresource. */
export function poolStatusPath(name: string): string {
  const { group, version, resource } = ADDRESS_POOLS;
  return `/apis/${group}/${version}/${resource}/${encodeURIComponent(name)}/status`;
}

/** What the status needs of the controller: whether it allocates, and what is held. */
export interface PoolHoldings {
  /** Whether this process leads and its allocator holds the term's addresses. */
  readonly allocating: boolean;
  readonly assignments: ReadonlyMap<string, readonly string[]>;
  poolOf(address: string): string | undefined;
}

/** The parts of the controller its holdings are read from. */
export interface HoldingsSource {
  /** Whether its caches hold complete lists: a leader then has begun its term. */
  readonly synced: boolean;
  readonly assignments: ReadonlyMap<string, readonly string[]>;
  poolOf(address: string): string | undefined;
}

/**
 * The holdings of `controller`, allocating while `leading()` and synced (a
 * leader begins its term, rebuilt from status, the moment both hold).
 */
export function controllerHoldings(
  controller: HoldingsSource,
  leading: () => boolean,
): PoolHoldings {
  return {
    get allocating() {
      return leading() && controller.synced;
    },
    get assignments() {
      return controller.assignments;
    },
    poolOf: (address) => controller.poolOf(address),
  };
}

/** Options of {@linkcode PoolStatusSync}. */
export interface PoolStatusSyncOptions {
  readonly api: JsonApi;
  readonly clock: Clock;
  readonly cache: AddressPoolCache;
  readonly holdings: PoolHoldings;
  readonly events: EventSink;
  /** Between passes. @default 1000 ms */
  readonly intervalMs?: number;
  /** Wall-clock ms for `lastTransitionTime`. @default Date.now */
  readonly wallNow?: () => number;
}

/** Addresses held per pool and family, each shared address once. */
export function heldPerPool(holdings: PoolHoldings): Map<string, Record<4 | 6, number>> {
  const seen = new Set<string>();
  const out = new Map<string, Record<4 | 6, number>>();
  for (const addresses of holdings.assignments.values()) {
    for (const a of addresses) {
      if (seen.has(a)) continue;
      seen.add(a);
      const pool = holdings.poolOf(a);
      if (pool === undefined) continue;
      let c = out.get(pool);
      if (!c) out.set(pool, c = { 4: 0, 6: 0 });
      c[a.includes(":") ? 6 : 4]++;
    }
  }
  return out;
}

/** Keeps the AddressPools' status current while this process allocates. */
export class PoolStatusSync {
  readonly #o: PoolStatusSyncOptions;
  /** Per pool, the status last written at a resourceVersion, until the watch brings it. */
  readonly #written = new Map<string, { rv: string; status: PoolStatus }>();
  #busy = false;
  #again = false;

  constructor(options: PoolStatusSyncOptions) {
    this.#o = options;
  }

  /** Runs passes until `signal` aborts. */
  run(signal: AbortSignal): Promise<void> {
    const { clock } = this.#o;
    const id = clock.setInterval(() => void this.kick(signal), this.#o.intervalMs ?? 1000);
    this.#o.cache.listen(() => void this.kick(signal));
    return new Promise((resolve) => {
      const stop = () => {
        clock.clearInterval(id);
        resolve();
      };
      if (signal.aborted) stop();
      else signal.addEventListener("abort", stop, { once: true });
    });
  }

  /** Runs a pass now, or right after the one running. Resolves when done. */
  async kick(signal: AbortSignal): Promise<void> {
    if (this.#busy) {
      this.#again = true;
      return;
    }
    this.#busy = true;
    try {
      do {
        this.#again = false;
        await this.sync(signal);
      } while (this.#again && !signal.aborted);
    } finally {
      this.#busy = false;
    }
  }

  /** One pass: writes each status that differs from what it should be. */
  async sync(signal: AbortSignal): Promise<void> {
    const { cache, holdings } = this.#o;
    if (!holdings.allocating || signal.aborted) return;
    const held = heldPerPool(holdings);
    const now = new Date((this.#o.wallNow ?? Date.now)()).toISOString().replace(/\.\d+Z$/, "Z");
    const { overlaps } = cache.accepted;
    for (const name of [...this.#written.keys()]) {
      if (!cache.records.has(name)) this.#written.delete(name);
    }
    for (const record of [...cache.records.values()]) {
      if (signal.aborted || !holdings.allocating) return;
      const overlap = overlaps.get(record.name);
      const status = poolStatus({ record, overlap, used: held.get(record.name), now });
      if (sameStatus(record.status, status)) {
        this.#written.delete(record.name);
        continue;
      }
      const last = this.#written.get(record.name);
      if (last && last.rv === record.resourceVersion && sameStatus(last.status, status)) continue;
      if (await this.#write(record, status, signal)) {
        this.#written.set(record.name, { rv: record.resourceVersion, status });
        this.#warn(record, status, signal);
      }
    }
  }

  async #write(record: AddressPoolRecord, status: PoolStatus, signal: AbortSignal) {
    try {
      await this.#o.api.json("PATCH", poolStatusPath(record.name), poolStatusPatch(status), signal);
      return true;
    } catch (err) {
      if (signal.aborted) return false;
      if (err instanceof ApiError && err.status === 404) return false; // Deleted; the watch says so.
      log.warn("cannot write the status of AddressPool {name}: {error}; trying again", {
        name: record.name,
        error: (err as Error).message,
      });
      return false;
    }
  }

  /** A Warning for a pool that newly hands out nothing (an overlap, an invalid spec). */
  #warn(record: AddressPoolRecord, status: PoolStatus, signal: AbortSignal): void {
    const ready = status.conditions.find((c) => c.type === "Ready");
    if (!ready || ready.status !== "False") return;
    const before = record.status.conditions.find((c) => c.type === "Ready");
    if (before && before.status === "False" && before.message === ready.message) return;
    const reason = ready.reason === "Overlapping" ? "OverlappingPool" : "InvalidPool";
    log.warn("AddressPool {name} refused: {why}", { name: record.name, why: ready.message });
    void this.#o.events.record({
      regarding: {
        kind: "AddressPool",
        apiVersion: `${ADDRESS_POOLS.group}/${ADDRESS_POOLS.version}`,
        namespace: "",
        name: record.name,
        uid: record.uid,
      },
      type: "Warning",
      reason,
      action: "LoadPools",
      note: ready.message,
    }, signal);
  }
}
