/**
 * The address space of the pools, for the allocator: which pool block an
 * address lies in, and the lowest address of a block that nobody holds.
 * Pure: no I/O; who holds what is the allocator's, asked through a predicate.
 *
 * Cost: each block keeps a scan cursor and a min-heap of offsets freed below
 * it, so "first free address" is amortised O(log n) per allocation and a /16
 * (or an IPv6 /64) is never listed address by address; {@linkcode
 * PoolSpace.blockOf} is a binary search over the blocks of a family. Pools
 * must come validated from `pools.ts` (no overlap, no special range).
 *
 * Reserved addresses: unless its pool says `allowReserved`, a block never
 * hands out the network and broadcast addresses of an IPv4 block of /30 or
 * larger, nor the all-zeros (subnet-router anycast) address of an IPv6 block
 * of /126 or larger: many clients and routers mishandle them. A /31 or /32
 * (RFC 3021) and a /127 or /128 (RFC 6164) have no such address to skip.
 *
 * @module
 */

import type { Cidr } from "../base/cidr.ts";
import { familyBits, formatV6, type Ip } from "../base/ip.ts";
import type { Pool } from "./pools.ts";

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

function v4Text(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

/** One pool with its blocks. */
export class PoolState {
  readonly pool: Pool;
  /** One per CIDR, in the pool's order. */
  readonly blocks: readonly Block[];
  readonly #namespaces?: ReadonlySet<string>;

  constructor(pool: Pool) {
    this.pool = pool;
    this.#namespaces = pool.namespaces ? new Set(pool.namespaces) : undefined;
    this.blocks = pool.cidrs.map((cidr) => new Block(this, cidr));
  }

  /** The pool's name. */
  get name(): string {
    return this.pool.name;
  }

  /** Whether Services of `namespace` may take addresses from the pool. */
  openTo(namespace: string): boolean {
    return this.#namespaces === undefined || this.#namespaces.has(namespace);
  }
}

/** Which address of a block is reserved, if any: what {@linkcode Block.reserved} answers. */
export type ReservedAddress = "network" | "broadcast" | "subnet-router anycast";

/**
 * The reserved address at `offset` of a block of `cidr`, if it is one: the
 * first and last addresses of an IPv4 block of /30 or larger, the first of an
 * IPv6 block of /126 or larger.
 */
export function reservedAt(cidr: Cidr, offset: bigint): ReservedAddress | undefined {
  const size = 1n << BigInt(familyBits(cidr.family) - cidr.prefix);
  if (cidr.family === 4) {
    if (cidr.prefix > 30) return undefined;
    return offset === 0n ? "network" : offset === size - 1n ? "broadcast" : undefined;
  }
  return cidr.prefix <= 126 && offset === 0n ? "subnet-router anycast" : undefined;
}

/** One CIDR of a pool with its scan state. */
export class Block {
  readonly pool: PoolState;
  readonly cidr: Cidr;
  /** Number of addresses. */
  readonly size: bigint;
  /** Offsets handed out lie in [#start, #end): the reserved addresses are outside. */
  readonly #start: bigint;
  readonly #end: bigint;
  /** Every offset below `#high` that is free is in `#freed` (which may also hold stale entries). */
  #high: bigint;
  readonly #freed = new MinHeap();

  constructor(pool: PoolState, cidr: Cidr) {
    this.pool = pool;
    this.cidr = cidr;
    this.size = 1n << BigInt(familyBits(cidr.family) - cidr.prefix);
    const skip = !pool.pool.allowReserved;
    this.#start = skip && reservedAt(cidr, 0n) ? 1n : 0n;
    this.#end = skip && reservedAt(cidr, this.size - 1n) ? this.size - 1n : this.size;
    this.#high = this.#start;
  }

  /**
   * Which reserved address `ip` (an address of this block) is, when the
   * pool does not allow it; `undefined` when the block may hand it out.
   */
  reserved(ip: Ip): ReservedAddress | undefined {
    return this.pool.pool.allowReserved
      ? undefined
      : reservedAt(this.cidr, ip.value - this.cidr.base);
  }

  #ipAt(offset: bigint): Ip {
    const value = this.cidr.base + offset;
    const family = this.cidr.family;
    const text = family === 4 ? v4Text(Number(value)) : formatV6(value);
    return { family, value, text };
  }

  /** The lowest address of the block for which `isHeld` (canonical text) is false, without taking it. */
  firstFree(isHeld: (text: string) => boolean): Ip | undefined {
    while (this.#freed.size > 0) {
      const ip = this.#ipAt(this.#freed.peek()!);
      if (!isHeld(ip.text)) return ip;
      this.#freed.pop();
    }
    while (this.#high < this.#end) {
      const ip = this.#ipAt(this.#high);
      if (!isHeld(ip.text)) return ip;
      this.#high++;
    }
    return undefined;
  }

  /** Notes that `ip`, an address of this block, is no longer held. */
  freed(ip: Ip): void {
    const offset = ip.value - this.cidr.base;
    // A reserved address held from before (a status) is never handed out once freed.
    if (offset >= this.#start && offset < this.#high && offset < this.#end) {
      this.#freed.push(offset);
    }
  }
}

/** The pools in force, with their blocks sorted per family for lookups. */
export class PoolSpace {
  /** The pools, in their configured order. */
  readonly pools: readonly PoolState[];
  readonly #byName = new Map<string, PoolState>();
  /** Blocks per family, sorted by base, for lookups by binary search. */
  readonly #sorted: Record<4 | 6, Block[]> = { 4: [], 6: [] };

  /** Every block starts with nothing taken: its scan begins at its first address. */
  constructor(pools: readonly Pool[]) {
    const states: PoolState[] = [];
    for (const pool of pools) {
      const state = new PoolState(pool);
      for (const block of state.blocks) this.#sorted[block.cidr.family].push(block);
      states.push(state);
      this.#byName.set(pool.name, state);
    }
    this.pools = states;
    for (const f of [4, 6] as const) {
      this.#sorted[f].sort((a, b) => (a.cidr.base < b.cidr.base ? -1 : 1));
    }
  }

  /** The pool named `name`, if any. */
  named(name: string): PoolState | undefined {
    return this.#byName.get(name);
  }

  /** The block holding an address: binary search over non-overlapping blocks. */
  blockOf(ip: Ip): Block | undefined {
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
}
