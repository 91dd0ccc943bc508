/**
 * Address allocation for LoadBalancer Services. Pure: no I/O, no clock; the
 * controller feeds it one event at a time and writes what it returns.
 *
 * Rules (issue 11):
 * - A Service asks for addresses with `kube-gw.io/load-balancer-ips`
 *   (comma-separated, at most one per family), else with the deprecated
 *   `spec.loadBalancerIP`; may name a pool with `kube-gw.io/pool`; otherwise
 *   gets the first free address of the first `autoAssign` pool its namespace
 *   may use (the next such pool when one is full).
 * - Families follow `spec.ipFamilies` and `spec.ipFamilyPolicy`: SingleStack
 *   the first family; PreferDualStack both when it can, at least one;
 *   RequireDualStack one of each or nothing.
 * - An address is never held by two Services, except Services of one
 *   namespace with the same `kube-gw.io/allow-shared-ip` key whose ports
 *   (protocol and number) do not overlap.
 * - A Service may ask for an address that it lists in its own
 *   `spec.externalIPs`, even outside the pools (the no-flap migration).
 * - Stable: {@linkcode Allocator.rebuild} first takes back every address in
 *   the Services' status; an address a Service holds stays while the Service
 *   still asks for it (a held address is kept when it is the requested one,
 *   inside the named pool, or, for a Service that asks for nothing, wherever it
 *   is). Pool edits never take an address away: one left outside every pool is
 *   reported for a Warning and stays. Pool namespace lists apply to new
 *   allocations only.
 * - A request that cannot be met leaves the Service without an address and
 *   gives a {@linkcode FailureReason} with a one-line message.
 *
 * Cost: each pool block keeps a scan cursor and a min-heap of addresses freed
 * below it, so "first free address" is amortised O(log n) per allocation and a
 * /16 (or an IPv6 /64) is never listed address by address. Per event the cost
 * is proportional to the Service's own addresses; {@linkcode Allocator.setPools}
 * and {@linkcode Allocator.rebuild} are linear in the held addresses.
 * Pools must come validated from `pools.ts` (no overlap, no special range).
 *
 * @module
 */

import { type Cidr, specialRangeOf } from "../base/cidr.ts";
import { familyBits, familyOf, formatV6, type Ip, parseIp } from "../base/ip.ts";
import { ANNOTATION_IPS, type LbPort, type LbServiceRecord } from "./lb_service.ts";
import type { Pool } from "./pools.ts";
import { serviceKey } from "../service/record.ts";

/** Why a Service's request cannot be met. */
export type FailureReason =
  /** The annotation or `spec.loadBalancerIP` cannot be read or contradicts the families. */
  | "bad_annotation"
  /** `kube-gw.io/pool` names no pool. */
  | "unknown_pool"
  /** The address or pool asked for is outside the pools the namespace may use. */
  | "not_allowed"
  /** The address asked for is held by another Service it may not share with. */
  | "taken"
  /** Every pool the Service may take from is full for a family it needs. */
  | "pool_exhausted"
  /** No pool the Service may take from has addresses of a family it needs. */
  | "no_pool";

/** A request that cannot be met. */
export interface Failure {
  readonly reason: FailureReason;
  /** One line naming the Service, the value and why. */
  readonly message: string;
  /** The family concerned, when one is. */
  readonly family?: 4 | 6;
}

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

/** An address held by a Service that is not where it should be. */
export interface HeldAddress {
  readonly key: string;
  readonly address: string;
}

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

interface Holder {
  readonly key: string;
  readonly namespace: string;
  readonly sharingKey?: string;
  readonly ports: readonly LbPort[];
}

/** A min-heap of bigints. */
class MinHeap {
  readonly #a: bigint[] = [];
  get size(): number {
    return this.#a.length;
  }
  peek(): bigint | undefined {
    return this.#a[0];
  }
  push(v: bigint): void {
    const a = this.#a;
    a.push(v);
    for (let i = a.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (a[p] <= a[i]) break;
      [a[p], a[i]] = [a[i], a[p]];
      i = p;
    }
  }
  pop(): void {
    const a = this.#a;
    const last = a.pop();
    if (a.length === 0 || last === undefined) return;
    a[0] = last;
    for (let i = 0;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && a[l] < a[m]) m = l;
      if (r < a.length && a[r] < a[m]) m = r;
      if (m === i) break;
      [a[m], a[i]] = [a[i], a[m]];
      i = m;
    }
  }
}

interface PoolState {
  readonly pool: Pool;
  readonly namespaces?: ReadonlySet<string>;
  readonly blocks: Block[];
}

/** One CIDR of a pool with its scan state. */
interface Block {
  readonly pool: PoolState;
  readonly cidr: Cidr;
  readonly size: bigint;
  /** Every offset below `high` that is free is in `freed` (which may also hold stale entries). */
  high: bigint;
  readonly freed: MinHeap;
}

const MAX_SHOWN = 64;

function show(v: string): string {
  const s = JSON.stringify(v.length > MAX_SHOWN ? `${v.slice(0, MAX_SHOWN)}…` : v);
  return s;
}

function portsOverlap(a: readonly LbPort[], b: readonly LbPort[]): boolean {
  if (a.length === 0 || b.length === 0) return false;
  const seen = new Set(a.map((p) => `${p.protocol}/${p.port}`));
  return b.some((p) => seen.has(`${p.protocol}/${p.port}`));
}

function mayShare(a: Holder, b: Holder): boolean {
  return a.namespace === b.namespace && a.sharingKey !== undefined && a.sharingKey !== "" &&
    a.sharingKey === b.sharingKey && !portsOverlap(a.ports, b.ports);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function familyName(f: 4 | 6): string {
  return `IPv${f}`;
}

/**
 * The families a Service should get addresses of when it asks for none, in
 * its order. `ipFamilies` empty reads as IPv4 (IPv4 then IPv6 for the dual
 * policies).
 */
export function wantedFamilies(
  svc: Pick<LbServiceRecord, "ipFamilies" | "ipFamilyPolicy">,
): readonly (4 | 6)[] {
  const fams = svc.ipFamilies.length > 0 ? [...svc.ipFamilies] : [4 as const];
  switch (svc.ipFamilyPolicy) {
    case "SingleStack":
      return [fams[0]];
    case "PreferDualStack":
      return svc.ipFamilies.length > 0 ? fams : [4, 6];
    case "RequireDualStack":
      return fams.length === 2 ? fams : [fams[0], fams[0] === 4 ? 6 : 4];
  }
}

/** A request read from the annotation or `spec.loadBalancerIP`. */
export type AddressRequest =
  | { readonly kind: "none" }
  | { readonly kind: "ips"; readonly ips: readonly Ip[]; readonly field: string }
  | { readonly kind: "bad"; readonly failure: Failure };

/** Reads the addresses a Service asks for. Pure; exported for tests and `kube-gw plan`. */
export function readRequest(svc: LbServiceRecord): AddressRequest {
  const key = serviceKey(svc);
  const annotated = svc.requestedIPs !== undefined && svc.requestedIPs.trim() !== "";
  const field = annotated ? ANNOTATION_IPS : "spec.loadBalancerIP";
  const text = annotated ? svc.requestedIPs! : svc.loadBalancerIP ?? "";
  const items = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (items.length === 0) return { kind: "none" };
  const bad = (message: string): AddressRequest => ({
    kind: "bad",
    failure: { reason: "bad_annotation", message: `Service ${key}: ${field}: ${message}` },
  });
  if (items.length > 2) return bad(`${show(text)} lists more than one address per family`);
  const ips: Ip[] = [];
  for (const item of items) {
    const parsed = parseIp(item);
    if (!parsed.ok) {
      const hint = parsed.canonical ? ` (did you mean "${parsed.canonical}"?)` : "";
      return bad(`${show(item)} is not a canonical IP address${hint}`);
    }
    const special = specialRangeOf(parsed.ip);
    if (special) return bad(`${show(item)} is in the ${special.replace("_", "-")} range`);
    if (ips.some((ip) => ip.family === parsed.ip.family)) {
      return bad(`${show(text)} lists more than one ${familyName(parsed.ip.family)} address`);
    }
    ips.push(parsed.ip);
  }
  if (svc.ipFamilyPolicy === "RequireDualStack" && ips.length < 2) {
    return bad(`${show(text)}: RequireDualStack needs one address of each family`);
  }
  if (svc.ipFamilyPolicy === "SingleStack" && ips.length > 1) {
    return bad(`${show(text)}: a SingleStack Service takes one address`);
  }
  for (const ip of ips) {
    if (svc.ipFamilies.length > 0 && !svc.ipFamilies.includes(ip.family)) {
      return bad(
        `${show(ip.text)} is ${familyName(ip.family)} but spec.ipFamilies is [${
          svc.ipFamilies.map(familyName).join(", ")
        }]`,
      );
    }
  }
  if (svc.ipFamilies.length > 0) {
    ips.sort((a, b) => svc.ipFamilies.indexOf(a.family) - svc.ipFamilies.indexOf(b.family));
  }
  return { kind: "ips", ips, field };
}

/** A held address with what is known of it. */
interface AddressInfo {
  readonly ip: Ip;
  /** The pool block it lies in; updated by setPools. */
  block: Block | undefined;
  /** The Services holding it (more than one only when sharing). */
  holders: Holder[];
}

/** What, in a Service, the allocation depends on; equal fingerprints decide alike. */
function fingerprint(svc: LbServiceRecord): string {
  return [
    svc.requestedIPs ?? "",
    svc.loadBalancerIP ?? "",
    svc.pool ?? "",
    svc.sharingKey ?? "",
    svc.ipFamilies.join(","),
    svc.ipFamilyPolicy,
    svc.ports.map((p) => `${p.protocol}/${p.port}`).join(","),
    svc.externalIPs.join(","),
  ].join("\n");
}

function v4Text(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

/**
 * The allocation state of the controller: which Service holds which address,
 * and a cursor per pool block. One instance per leader term: call
 * {@linkcode rebuild} with every Service that is kube-gw's before the first
 * {@linkcode allocate}.
 */
export class Allocator {
  #pools: PoolState[] = [];
  #byName = new Map<string, PoolState>();
  /** Blocks per family, sorted by base, for lookups by binary search. */
  #sorted: Record<4 | 6, Block[]> = { 4: [], 6: [] };
  /** Held address (canonical text) → what is known of it. */
  readonly #addresses = new Map<string, AddressInfo>();
  /** Service key → its addresses in family order. */
  readonly #assigned = new Map<string, readonly string[]>();
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
    this.#installPools(pools);
  }

  /** The addresses each Service holds (canonical texts, family order). */
  get assignments(): ReadonlyMap<string, readonly string[]> {
    return this.#assigned;
  }

  /** The Services holding an address (several when shared). */
  holders(address: string): readonly string[] {
    return (this.#addresses.get(address)?.holders ?? []).map((h) => h.key);
  }

  /** The pool an address lies in, if any. */
  poolOf(address: string): string | undefined {
    const info = this.#addresses.get(address);
    if (info) return info.block?.pool.pool.name;
    const parsed = parseIp(address);
    return parsed.ok ? this.#blockOf(parsed.ip)?.pool.pool.name : undefined;
  }

  /**
   * Forgets everything held and takes back the addresses in the status of
   * `services` (those that are kube-gw's), in their order: the first Service
   * to claim an address keeps it, a later one that may not share it is a
   * conflict. Linear in the number of addresses.
   */
  rebuild(services: Iterable<LbServiceRecord>): RebuildReport {
    this.#addresses.clear();
    this.#assigned.clear();
    this.#decidedFor.clear();
    this.#installPools(this.#pools.map((p) => p.pool));
    let restored = 0;
    const conflicts: (HeldAddress & { holder: string })[] = [];
    const invalid: HeldAddress[] = [];
    const outsidePools: HeldAddress[] = [];
    for (const svc of services) {
      const holder = this.#holder(svc);
      const held: string[] = [];
      const fams = new Set<number>();
      for (const raw of svc.ingressIPs) {
        const parsed = parseIp(raw);
        if (!parsed.ok || fams.has(parsed.ip.family)) {
          invalid.push({ key: holder.key, address: raw });
          continue;
        }
        const address = parsed.ip.text;
        const other = this.#conflict(address, holder);
        if (other) {
          conflicts.push({ key: holder.key, address, holder: other });
          continue;
        }
        fams.add(parsed.ip.family);
        held.push(address);
        const info = this.#take(parsed.ip, holder);
        restored++;
        if (!info.block) outsidePools.push({ key: holder.key, address });
      }
      // At its final length: a list grown by push reserves 17 slots, and 10,000 stay.
      if (held.length > 0) this.#assigned.set(holder.key, held.slice());
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
    const holder = this.#holder(svc);
    const key = holder.key;
    const prev = this.#assigned.get(key) ?? [];
    const print = this.#shared(fingerprint(svc));
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
      this.#setAssigned(holder, prev, [], []);
      this.#decidedFor.delete(key);
      return { ok: false, key, failure: decided.failure, released: prev };
    }
    const { partial } = decided;
    const addresses = decided.addresses.map((ip) => ip.text);
    this.#setAssigned(holder, prev, decided.addresses, addresses);
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
    const prev = this.#assigned.get(key) ?? [];
    for (const a of prev) this.#untake(a, key);
    this.#assigned.delete(key);
    this.#decidedFor.delete(key);
    return prev;
  }

  /**
   * Replaces the pools. Nothing held moves; returns the held addresses that
   * now lie in no pool (each worth a Warning Event). Linear in held addresses.
   */
  setPools(pools: readonly Pool[]): readonly HeldAddress[] {
    this.#installPools(pools);
    for (const info of this.#addresses.values()) info.block = this.#blockOf(info.ip);
    const outside: HeldAddress[] = [];
    for (const [key, addresses] of this.#assigned) {
      for (const address of addresses) {
        if (!this.#addresses.get(address)?.block) outside.push({ key, address });
      }
    }
    return outside;
  }

  #outside(addresses: readonly string[], svc: LbServiceRecord): string[] {
    return addresses.filter((a) => !this.#addresses.get(a)?.block && !svc.externalIPs.includes(a));
  }

  #installPools(pools: readonly Pool[]): void {
    this.#pools = [];
    this.#byName.clear();
    this.#sorted = { 4: [], 6: [] };
    for (const pool of pools) {
      const blocks: Block[] = [];
      const state: PoolState = {
        pool,
        namespaces: pool.namespaces ? new Set(pool.namespaces) : undefined,
        blocks,
      };
      for (const cidr of pool.cidrs) {
        const size = 1n << BigInt(familyBits(cidr.family) - cidr.prefix);
        const block: Block = { pool: state, cidr, size, high: 0n, freed: new MinHeap() };
        blocks.push(block);
        this.#sorted[cidr.family].push(block);
      }
      this.#pools.push(state);
      this.#byName.set(pool.name, state);
    }
    for (const f of [4, 6] as const) {
      this.#sorted[f].sort((a, b) => (a.cidr.base < b.cidr.base ? -1 : 1));
    }
  }

  #holder(svc: LbServiceRecord): Holder {
    return {
      key: serviceKey(svc),
      namespace: svc.namespace,
      sharingKey: svc.sharingKey,
      ports: svc.ports,
    };
  }

  /** The block holding an address: binary search over non-overlapping blocks. */
  #blockOf(ip: Ip): Block | undefined {
    const list = this.#sorted[ip.family];
    let lo = 0;
    let hi = list.length - 1;
    let found: Block | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid].cidr.base <= ip.value) {
        found = list[mid];
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found && ip.value - found.cidr.base < found.size ? found : undefined;
  }

  /** Another Service holding `address` that `holder` may not share with, if any. */
  #conflict(address: string, holder: Holder): string | undefined {
    for (const h of this.#addresses.get(address)?.holders ?? []) {
      if (h.key !== holder.key && !mayShare(h, holder)) return h.key;
    }
    return undefined;
  }

  #take(ip: Ip, holder: Holder): AddressInfo {
    let info = this.#addresses.get(ip.text);
    if (!info) {
      info = { ip, block: this.#blockOf(ip), holders: [holder] };
      this.#addresses.set(ip.text, info);
      return info;
    }
    const i = info.holders.findIndex((h) => h.key === holder.key);
    if (i >= 0) info.holders[i] = holder;
    else info.holders = [...info.holders, holder];
    return info;
  }

  #untake(address: string, key: string): void {
    const info = this.#addresses.get(address);
    if (!info) return;
    info.holders = info.holders.filter((h) => h.key !== key);
    if (info.holders.length > 0) return;
    this.#addresses.delete(address);
    const block = info.block;
    if (block) {
      const offset = info.ip.value - block.cidr.base;
      if (offset < block.high) block.freed.push(offset);
    }
  }

  /** `texts`: the canonical texts of `next`, kept as they are (the caller returns the same list). */
  #setAssigned(
    holder: Holder,
    prev: readonly string[],
    next: readonly Ip[],
    texts: readonly string[],
  ): void {
    for (const a of prev) if (!next.some((ip) => ip.text === a)) this.#untake(a, holder.key);
    // Kept addresses too: the holder's ports or sharing key may have changed.
    for (const ip of next) this.#take(ip, holder);
    if (next.length > 0) this.#assigned.set(holder.key, texts);
    else this.#assigned.delete(holder.key);
  }

  #ipAt(block: Block, offset: bigint): Ip {
    const value = block.cidr.base + offset;
    const family = block.cidr.family;
    const text = family === 4 ? v4Text(Number(value)) : formatV6(value);
    return { family, value, text };
  }

  /** The lowest free address of a block, without taking it. */
  #firstFree(block: Block): Ip | undefined {
    while (block.freed.size > 0) {
      const ip = this.#ipAt(block, block.freed.peek()!);
      if (!this.#addresses.has(ip.text)) return ip;
      block.freed.pop();
    }
    while (block.high < block.size) {
      const ip = this.#ipAt(block, block.high);
      if (!this.#addresses.has(ip.text)) return ip;
      block.high++;
    }
    return undefined;
  }

  #decide(
    svc: LbServiceRecord,
    holder: Holder,
    prev: readonly string[],
  ): { addresses: Ip[]; partial?: Failure } | { failure: Failure } {
    const key = holder.key;
    const request = readRequest(svc);
    if (request.kind === "bad") return { failure: request.failure };
    let named: PoolState | undefined;
    const poolName = svc.pool?.trim();
    if (poolName) {
      named = this.#byName.get(poolName);
      if (!named) {
        return {
          failure: {
            reason: "unknown_pool",
            message: `Service ${key}: kube-gw.io/pool: no pool is named ${show(poolName)}`,
          },
        };
      }
      if (named.namespaces && !named.namespaces.has(svc.namespace)) {
        return {
          failure: {
            reason: "not_allowed",
            message: `Service ${key}: kube-gw.io/pool: pool ${
              show(poolName)
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
      const held = heldText === undefined ? undefined : this.#addresses.get(heldText);
      if (held && this.#keeps(held, wanted, named) && !this.#conflict(held.ip.text, holder)) {
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
      const block = this.#blockOf(ip);
      let why: string | undefined;
      if (!block) why = "is in no pool";
      else if (named && block.pool !== named) why = `is not in pool ${show(named.pool.name)}`;
      else if (block.pool.namespaces && !block.pool.namespaces.has(svc.namespace)) {
        why = `is in pool ${show(block.pool.pool.name)}, not open to namespace ${svc.namespace}`;
      }
      if (why) {
        return {
          reason: "not_allowed",
          family: ip.family,
          message: `Service ${key}: ${field}: ${ip.text} ${why}`,
        };
      }
    }
    const other = this.#conflict(ip.text, holder);
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
    for (const pool of named ? [named] : this.#pools) {
      if (
        !named &&
        (!pool.pool.autoAssign || (pool.namespaces && !pool.namespaces.has(svc.namespace)))
      ) {
        continue;
      }
      open++;
      for (const block of pool.blocks) {
        if (block.cidr.family !== family) continue;
        sawFamily = true;
        const ip = this.#firstFree(block);
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
      ? `pool ${show(named.pool.name)}`
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
