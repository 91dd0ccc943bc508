/**
 * The AddressPools in force and the status each should show. Pure.
 *
 * - {@linkcode acceptPools}: the pools are taken oldest first (creation time,
 *   then name); a pool with a network overlapping an already taken pool's is
 *   refused whole, so an overlap never moves an address: the older pool
 *   keeps handing out its addresses, the newer one hands out nothing until
 *   the overlap is gone.
 * - {@linkcode poolStatus}: addresses used and free per family, and the
 *   conditions `Ready`, `Overlapping` and `Exhausted`, each keeping its
 *   `lastTransitionTime` while its status stays.
 * - {@linkcode sameStatus}: whether what a pool shows is what it should show
 *   (times aside), so a status is written only when it changes.
 *
 * @module
 */

import { cidrsOverlap } from "../base/cidr.ts";
import { familyBits } from "../base/ip.ts";
import type { Pool } from "./pools.ts";
import type { AddressPoolRecord, FamilyUsage, PoolCondition, PoolStatus } from "./address_pool.ts";

/** Why a pool is refused for an overlap. */
export interface PoolOverlap {
  readonly cidr: string;
  readonly pool: string;
  readonly otherCidr: string;
}

/** The pools in force, and the refused ones with why. */
export interface AcceptedPools {
  /** Oldest first: the order of auto-assignment. */
  readonly pools: readonly Pool[];
  readonly overlaps: ReadonlyMap<string, PoolOverlap>;
}

/** Oldest first, then by name: the order in which pools are taken. */
export function byAge(a: AddressPoolRecord, b: AddressPoolRecord): number {
  // An absent creation time sorts last: it is the newest that could be.
  const ta = a.createdAt || "\uffff";
  const tb = b.createdAt || "\uffff";
  return ta < tb ? -1 : ta > tb ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * Takes the valid pools oldest first, refusing each that overlaps one taken
 * before it. O(n·m) in the CIDRs taken and those of the pool considered.
 */
export function acceptPools(records: Iterable<AddressPoolRecord>): AcceptedPools {
  const pools: Pool[] = [];
  const overlaps = new Map<string, PoolOverlap>();
  for (const r of [...records].sort(byAge)) {
    if (!r.pool) continue;
    let clash: PoolOverlap | undefined;
    for (const c of r.pool.cidrs) {
      for (const p of pools) {
        const other = p.cidrs.find((o) => cidrsOverlap(o, c));
        if (other) clash ??= { cidr: c.text, pool: p.name, otherCidr: other.text };
      }
    }
    if (clash) overlaps.set(r.name, clash);
    else pools.push(r.pool);
  }
  return { pools, overlaps };
}

/** Addresses of a pool the allocator may hand out, per family (reserved ones left out unless allowed). */
export function poolCapacity(pool: Pool): Record<4 | 6, bigint> {
  const total: Record<4 | 6, bigint> = { 4: 0n, 6: 0n };
  for (const c of pool.cidrs) {
    const size = 1n << BigInt(familyBits(c.family) - c.prefix);
    let reserved = 0n;
    if (!pool.allowReserved) {
      if (c.family === 4 && c.prefix <= 30) reserved = 2n; // network and broadcast
      if (c.family === 6 && c.prefix <= 126) reserved = 1n; // subnet-router anycast
    }
    total[c.family] += size - reserved;
  }
  return total;
}

/** What a status is made from. */
export interface PoolStatusInput {
  readonly record: AddressPoolRecord;
  /** Present when the pool was refused for an overlap. */
  readonly overlap?: PoolOverlap;
  /** Addresses of the pool held by Services, per family (for a pool in force). */
  readonly used?: Readonly<Record<4 | 6, number>>;
  /** Now, RFC 3339, for a condition whose status changes. */
  readonly now: string;
}

function usage(capacity: bigint, used: number): FamilyUsage {
  const free = capacity - BigInt(used);
  return { used, free: String(free > 0n ? free : 0n) };
}

/** The status a pool should show. */
export function poolStatus(input: PoolStatusInput): PoolStatus {
  const { record, overlap, used, now } = input;
  const generation = record.generation;
  const cond = (
    type: string,
    status: PoolCondition["status"],
    reason: string,
    message: string,
  ): PoolCondition => {
    const before = record.status.conditions.find((c) => c.type === type);
    return {
      type,
      status,
      reason,
      message,
      lastTransitionTime: before && before.status === status && before.lastTransitionTime
        ? before.lastTransitionTime
        : now,
      observedGeneration: generation,
    };
  };
  if (record.problem !== undefined || !record.pool) {
    const why = record.problem ?? "the spec is not a pool";
    return {
      observedGeneration: generation,
      conditions: [
        cond("Ready", "False", "InvalidSpec", `${why}; the pool hands out nothing`),
        cond("Overlapping", "Unknown", "InvalidSpec", "the spec is not a valid pool"),
        cond("Exhausted", "Unknown", "InvalidSpec", "the spec is not a valid pool"),
      ],
    };
  }
  if (overlap) {
    const note =
      `${overlap.cidr} overlaps ${overlap.otherCidr} of the older pool "${overlap.pool}"`;
    return {
      observedGeneration: generation,
      conditions: [
        cond("Ready", "False", "Overlapping", `${note}; the pool hands out nothing`),
        cond("Overlapping", "True", "OverlapsOlderPool", note),
        cond("Exhausted", "Unknown", "Overlapping", "the pool is not in force"),
      ],
    };
  }
  const capacity = poolCapacity(record.pool);
  const u = used ?? { 4: 0, 6: 0 };
  const families = record.pool.cidrs.map((c) => c.family);
  const v4 = families.includes(4) ? usage(capacity[4], u[4]) : undefined;
  const v6 = families.includes(6) ? usage(capacity[6], u[6]) : undefined;
  const free = BigInt(v4?.free ?? 0) + BigInt(v6?.free ?? 0);
  const total = u[4] + u[6];
  return {
    observedGeneration: generation,
    used: total,
    free: String(free),
    ...(v4 ? { ipv4: v4 } : {}),
    ...(v6 ? { ipv6: v6 } : {}),
    conditions: [
      cond("Ready", "True", "InForce", "the controller hands out the pool's addresses"),
      cond("Overlapping", "False", "NoOverlap", "no network overlaps another pool's"),
      free === 0n
        ? cond("Exhausted", "True", "NoFreeAddress", `all ${total} addresses are held`)
        : cond("Exhausted", "False", "FreeAddresses", `${free} addresses free`),
    ],
  };
}

function conditionKey(c: PoolCondition): string {
  return `${c.type}\u0000${c.status}\u0000${c.reason}\u0000${c.message}\u0000${
    c.observedGeneration ?? ""
  }`;
}

/** Whether two statuses show the same (transition times aside). */
export function sameStatus(a: PoolStatus, b: PoolStatus): boolean {
  const fam = (f?: FamilyUsage) => (f ? `${f.used}/${f.free}` : "");
  if (
    a.observedGeneration !== b.observedGeneration || a.used !== b.used || a.free !== b.free ||
    fam(a.ipv4) !== fam(b.ipv4) || fam(a.ipv6) !== fam(b.ipv6)
  ) {
    return false;
  }
  if (a.conditions.length !== b.conditions.length) return false;
  const keys = new Set(a.conditions.map(conditionKey));
  return b.conditions.every((c) => keys.has(conditionKey(c)));
}

/**
 * The merge patch that makes a pool's status `status`: every field the
 * controller writes is set, or removed (null) when it has no value.
 */
export function poolStatusPatch(status: PoolStatus): Record<string, unknown> {
  return {
    status: {
      observedGeneration: status.observedGeneration ?? null,
      used: status.used ?? null,
      free: status.free ?? null,
      ipv4: status.ipv4 ?? null,
      ipv6: status.ipv6 ?? null,
      conditions: status.conditions,
    },
  };
}
