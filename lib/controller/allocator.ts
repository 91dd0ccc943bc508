/**
 * Address allocation for LoadBalancer Services: the decisions. Pure: no I/O,
 * no clock; the controller feeds it one event at a time and writes what it
 * returns. What a Service asks for is read by `request.ts`; the pools' address
 * space is `pool_space.ts`'s; who holds what is `holdings.ts`'s.
 *
 * Rules:
 * - A Service gets the addresses it asks for (`kube-gw.io/load-balancer-ips`
 *   or `spec.loadBalancerIP`); may name a pool with `kube-gw.io/pool`;
 *   otherwise gets the first free address of the first `autoAssign` pool its
 *   namespace may use (the next such pool when one is full).
 * - Families follow `spec.ipFamilies` and `spec.ipFamilyPolicy`: SingleStack
 *   the first family; PreferDualStack both when it can, at least one;
 *   RequireDualStack one of each or nothing.
 * - An address is never held by two Services, except Services of one
 *   namespace with the same `kube-gw.io/allow-shared-ip` key whose ports
 *   (protocol and number) do not overlap.
 * - A Service may ask for an address that it lists in its own
 *   `spec.externalIPs`, even outside the pools (the no-flap migration).
 * - The reserved addresses of a block (see `pool_space.ts`) are neither
 *   given nor granted on request, unless the pool allows them; one already
 *   held (from a status) stays.
 * - An address a Service let go stays out of reach while its status still
 *   shows it ({@linkcode Allocator.drain}).
 * - Stable: {@linkcode Allocator.rebuild} first takes back every address in
 *   the Services' status (the older Service keeps an address two claim); an address a Service holds stays while the Service
 *   still asks for it (a held address is kept when it is the requested one,
 *   inside the named pool, or, for a Service that asks for nothing, wherever it
 *   is). Pool edits never take an address away: one left outside every pool is
 *   reported for a Warning and stays. Pool namespace lists apply to new
 *   allocations only.
 * - A request that cannot be met leaves the Service without an address and
 *   gives a `FailureReason` (see `request.ts`) with a one-line message.
 *
 * Cost: "first free address" is amortised O(log n) per allocation (see
 * `pool_space.ts`). Per event the cost is proportional to the Service's own
 * addresses; {@linkcode Allocator.setPools} and {@linkcode Allocator.rebuild}
 * are linear in the held addresses.
 *
 * @module
 */

import { familyOf, type Ip, parseIp } from "../base/ip.ts";
import type { LbServiceRecord } from "./lb_service.ts";
import { serviceKey } from "../service/record.ts";
import type { Pool } from "./pools.ts";
import { PoolSpace, type PoolState } from "./pool_space.ts";
import { type AddressInfo, type HeldAddress, Holdings } from "./holdings.ts";
import {
  type Failure,
  familyName,
  type Holder,
  holderOf,
  readRequest,
  requestFingerprint,
  sharingKeyProblem,
  shown,
  wantedFamilies,
} from "./request.ts";

/** The outcome of {@linkcode Allocator.allocate}. */
export type AllocationResult =
  | {
    readonly ok: true;
    readonly key: string;
    /** Canonical texts, in the Service's family order: what `status.loadBalancer.ingress` should say. */
    readonly addresses: readonly string[];
    /** Whether `addresses` differ from what the Service held before this call. */
    readonly changed: boolean;
    /** Addresses the Service held before and no longer holds. */
    readonly released: readonly string[];
    /** PreferDualStack only: why the second family could not be had. */
    readonly partial?: Failure;
    /** Held addresses that lie in no pool (kept; worth a Warning Event). */
    readonly outsidePools: readonly string[];
  }
  | {
    readonly ok: false;
    readonly key: string;
    readonly failure: Failure;
    /** Addresses the Service held before; it holds none now. */
    readonly released: readonly string[];
  };

/** What {@linkcode Allocator.rebuild} found in the Services' status. */
export interface RebuildReport {
  /** Number of (Service, address) pairs taken back. */
  readonly restored: number;
  /** Addresses a Service's status claims that another Service already holds (not taken back). */
  readonly conflicts: readonly (HeldAddress & { readonly holder: string })[];
  /** Status values that are not a canonical address, or a second one of a family (ignored). */
  readonly invalid: readonly HeldAddress[];
  /** Addresses taken back that lie in no pool. */
  readonly outsidePools: readonly HeldAddress[];
}

/** Services oldest first: by creation time (none: last), then by `namespace/name`. */
function oldestFirst(services: Iterable<LbServiceRecord>): LbServiceRecord[] {
  const keyed = [...services].map((svc) => ({
    svc,
    at: svc.created ?? Infinity,
    key: serviceKey(svc),
  }));
  keyed.sort((a, b) => a.at - b.at || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return keyed.map((k) => k.svc);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * The allocation state of the controller: which Service holds which address,
 * and a cursor per pool block. One instance per leader term: call
 * {@linkcode rebuild} with every Service that is kube-gw's before the first
 * {@linkcode allocate}.
 */
export class Allocator {
  #space: PoolSpace;
  #held: Holdings;
  /** Service key → the fingerprint its full, complete allocation was decided for. */
  readonly #decidedFor = new Map<string, string>();
  /** One copy of each fingerprint (most Services share a few); emptied when full. */
  readonly #prints = new Map<string, string>();

  #shared(print: string): string {
    const known = this.#prints.get(print);
    if (known !== undefined) return known;
    if (this.#prints.size >= 4096) this.#prints.clear();
    this.#prints.set(print, print);
    return print;
  }

  constructor(pools: readonly Pool[]) {
    this.#space = new PoolSpace(pools);
    this.#held = new Holdings(this.#space);
  }

  /** The addresses each Service holds (canonical texts, family order). */
  get assignments(): ReadonlyMap<string, readonly string[]> {
    return this.#held.assignments;
  }

  /** The Services holding an address (several when shared). */
  holders(address: string): readonly string[] {
    return (this.#held.info(address)?.holders ?? []).map((h) => h.key);
  }

  /** The pool an address lies in, if any. */
  poolOf(address: string): string | undefined {
    const info = this.#held.info(address);
    if (info) return info.block?.pool.name;
    const parsed = parseIp(address);
    return parsed.ok ? this.#space.blockOf(parsed.ip)?.pool.name : undefined;
  }

  /**
   * Forgets everything held and takes back the addresses in the status of
   * `services` (those that are kube-gw's), oldest Service first (by
   * `creationTimestamp`, then namespace and name; one without a time last):
   * the oldest to claim an address keeps it, a younger one that may not share
   * it is a conflict. O(n log n) in the Services, linear in the addresses.
   */
  rebuild(services: Iterable<LbServiceRecord>): RebuildReport {
    this.#decidedFor.clear();
    this.#space = new PoolSpace(this.#space.pools.map((p) => p.pool));
    this.#held = new Holdings(this.#space);
    let restored = 0;
    const conflicts: (HeldAddress & { holder: string })[] = [];
    const invalid: HeldAddress[] = [];
    const outsidePools: HeldAddress[] = [];
    for (const svc of oldestFirst(services)) {
      const holder = holderOf(svc);
      const held: string[] = [];
      const fams = new Set<number>();
      for (const raw of svc.ingressIPs) {
        const parsed = parseIp(raw);
        if (!parsed.ok || fams.has(parsed.ip.family)) {
          invalid.push({ key: holder.key, address: raw });
          continue;
        }
        const address = parsed.ip.text;
        const other = this.#held.conflict(address, holder);
        if (other) {
          conflicts.push({ key: holder.key, address, holder: other });
          continue;
        }
        fams.add(parsed.ip.family);
        held.push(address);
        const info = this.#held.take(parsed.ip, holder);
        restored++;
        if (!info.block) outsidePools.push({ key: holder.key, address });
      }
      // At its final length: a list grown by push reserves 17 slots, and 10,000 stay.
      if (held.length > 0) this.#held.record(holder.key, held.slice());
    }
    return { restored, conflicts, invalid, outsidePools };
  }

  /**
   * Decides the addresses of one Service (added or changed) and records them.
   * Keeps what it holds when that still meets its request. An event for a
   * Service whose allocation-relevant fields did not change since its last
   * complete allocation costs one string comparison.
   */
  allocate(svc: LbServiceRecord): AllocationResult {
    const holder = holderOf(svc);
    const key = holder.key;
    const prev = this.#held.of(key);
    const print = this.#shared(requestFingerprint(svc));
    if (prev.length > 0 && this.#decidedFor.get(key) === print) {
      return {
        ok: true,
        key,
        addresses: prev,
        changed: false,
        released: [],
        outsidePools: this.#outside(prev, svc),
      };
    }
    const decided = this.#decide(svc, holder, prev);
    if ("failure" in decided) {
      this.#held.replace(holder, prev, [], []);
      this.#decidedFor.delete(key);
      return { ok: false, key, failure: decided.failure, released: prev };
    }
    const { partial } = decided;
    const addresses = decided.addresses.map((ip) => ip.text);
    this.#held.replace(holder, prev, decided.addresses, addresses);
    // A PreferDualStack Service short of a family is decided again at its next event.
    if (partial) this.#decidedFor.delete(key);
    else this.#decidedFor.set(key, print);
    return {
      ok: true,
      key,
      addresses,
      changed: !sameList(prev, addresses),
      released: prev.filter((a) => !addresses.includes(a)),
      partial,
      outsidePools: this.#outside(addresses, svc),
    };
  }

  /** Frees every address of a Service (deleted, or no longer kube-gw's). Returns them. */
  release(key: string): readonly string[] {
    this.#decidedFor.delete(key);
    return this.#held.release(key);
  }

  /**
   * Keeps addresses `key` let go (from {@linkcode allocate}'s `released`) out
   * of reach of every other Service while its status still shows them, until
   * {@linkcode undrain}: so that an address is never in two statuses at once,
   * however long the write that takes it out takes (or fails and is retried).
   */
  drain(key: string, addresses: readonly string[]): void {
    this.#held.drain(key, addresses);
  }

  /** The status of `key` no longer shows what it let go: frees it. Returns those addresses. */
  undrain(key: string): readonly string[] {
    return this.#held.undrain(key);
  }

  /**
   * Replaces the pools. Nothing held moves; returns the held addresses that
   * now lie in no pool (each worth a Warning Event). Linear in held addresses.
   */
  setPools(pools: readonly Pool[]): readonly HeldAddress[] {
    this.#space = new PoolSpace(pools);
    return this.#held.rebind(this.#space);
  }

  #outside(addresses: readonly string[], svc: LbServiceRecord): string[] {
    return addresses.filter((a) => !this.#held.info(a)?.block && !svc.externalIPs.includes(a));
  }

  #decide(
    svc: LbServiceRecord,
    holder: Holder,
    prev: readonly string[],
  ): { addresses: Ip[]; partial?: Failure } | { failure: Failure } {
    const key = holder.key;
    const badKey = sharingKeyProblem(svc);
    if (badKey) return { failure: badKey };
    const request = readRequest(svc);
    if (request.kind === "bad") return { failure: request.failure };
    let named: PoolState | undefined;
    const poolName = svc.pool?.trim();
    if (poolName) {
      named = this.#space.named(poolName);
      if (!named) {
        return {
          failure: {
            reason: "unknown_pool",
            message: `Service ${key}: kube-gw.io/pool: no pool is named ${shown(poolName)}`,
          },
        };
      }
      if (!named.openTo(svc.namespace)) {
        return {
          failure: {
            reason: "not_allowed",
            message: `Service ${key}: kube-gw.io/pool: pool ${
              shown(poolName)
            } is not open to namespace ${svc.namespace}`,
          },
        };
      }
    }
    const families = request.kind === "ips"
      ? request.ips.map((ip) => ip.family)
      : wantedFamilies(svc);
    const addresses: Ip[] = [];
    const failures: Failure[] = [];
    for (const family of families) {
      const wanted = request.kind === "ips"
        ? request.ips.find((ip) => ip.family === family)
        : undefined;
      const heldText = prev.find((a) => familyOf(a) === family);
      const held = heldText === undefined ? undefined : this.#held.info(heldText);
      if (held && this.#keeps(held, wanted, named) && !this.#held.conflict(held.ip.text, holder)) {
        addresses.push(held.ip);
        continue;
      }
      const got = wanted
        ? this.#checkRequested(
          svc,
          holder,
          wanted,
          named,
          request.kind === "ips" ? request.field : "",
        )
        : this.#pickFree(svc, holder, family, named);
      if ("reason" in got) failures.push(got);
      else addresses.push(got);
    }
    if (failures.length === 0) return { addresses };
    const partialOk = request.kind === "none" && svc.ipFamilyPolicy === "PreferDualStack" &&
      addresses.length > 0;
    return partialOk ? { addresses, partial: failures[0] } : { failure: failures[0] };
  }

  /** Whether a held address still meets the request. */
  #keeps(held: AddressInfo, wanted: Ip | undefined, named: PoolState | undefined): boolean {
    if (wanted) return held.ip.text === wanted.text;
    if (!named) return true;
    return held.block === undefined || held.block.pool === named;
  }

  #checkRequested(
    svc: LbServiceRecord,
    holder: Holder,
    ip: Ip,
    named: PoolState | undefined,
    field: string,
  ): Ip | Failure {
    const key = holder.key;
    const own = svc.externalIPs.includes(ip.text);
    if (!own) {
      const block = this.#space.blockOf(ip);
      let why: string | undefined;
      const reserved = block?.reserved(ip);
      if (!block) why = "is in no pool";
      else if (named && block.pool !== named) why = `is not in pool ${shown(named.name)}`;
      else if (!block.pool.openTo(svc.namespace)) {
        why = `is in pool ${shown(block.pool.name)}, not open to namespace ${svc.namespace}`;
      } else if (reserved) {
        why = `is the ${reserved} address of ${block.cidr.text} in pool ${
          shown(block.pool.name)
        }, which does not allowReserved`;
      }
      if (why) {
        return {
          reason: "not_allowed",
          family: ip.family,
          message: `Service ${key}: ${field}: ${ip.text} ${why}`,
        };
      }
    }
    const other = this.#held.conflict(ip.text, holder);
    if (other) {
      const same = other.startsWith(`${svc.namespace}/`);
      const by = same ? `Service ${other}` : "a Service of another namespace";
      const hint = same
        ? " (share it with the same kube-gw.io/allow-shared-ip and other ports)"
        : "";
      return {
        reason: "taken",
        family: ip.family,
        message: `Service ${key}: ${field}: ${ip.text} is held by ${by}${hint}`,
      };
    }
    return ip;
  }

  #pickFree(
    svc: LbServiceRecord,
    holder: Holder,
    family: 4 | 6,
    named: PoolState | undefined,
  ): Ip | Failure {
    const key = holder.key;
    let open = 0;
    let sawFamily = false;
    for (const pool of named ? [named] : this.#space.pools) {
      if (!named && (!pool.pool.autoAssign || !pool.openTo(svc.namespace))) continue;
      open++;
      for (const block of pool.blocks) {
        if (block.cidr.family !== family) continue;
        sawFamily = true;
        const ip = block.firstFree((text) => this.#held.isHeld(text));
        if (ip !== undefined) return ip;
      }
    }
    if (open === 0) {
      return {
        reason: "no_pool",
        family,
        message: `Service ${key}: no auto-assigned pool is open to namespace ${svc.namespace}`,
      };
    }
    const where = named
      ? `pool ${shown(named.name)}`
      : `the auto-assigned pools open to namespace ${svc.namespace}`;
    if (!sawFamily) {
      return {
        reason: "no_pool",
        family,
        message: `Service ${key}: ${where} have no ${familyName(family)} addresses`,
      };
    }
    return {
      reason: "pool_exhausted",
      family,
      message: `Service ${key}: no free ${familyName(family)} address in ${where}`,
    };
  }
}
