/**
 * Who holds which address, for the allocator: per address its holders (more
 * than one only when they may share it) and the pool block it lies in; per
 * Service its addresses in family order. Pure bookkeeping: it decides
 * nothing, and tells a block when one of its addresses is free again.
 *
 * Draining: an address a Service let go that its status still shows is
 * neither free nor held; it waits, out of reach of every other Service, until
 * the status write that takes it out has landed ({@linkcode Holdings.undrain}),
 * so that no two statuses ever show it at once.
 *
 * @module
 */

import { type Ip, parseIp } from "../base/ip.ts";
import type { Block, PoolSpace } from "./pool_space.ts";
import { type Holder, mayShare } from "./request.ts";

/** A held address with what is known of it. */
export interface AddressInfo {
  readonly ip: Ip;
  /** The pool block it lies in; updated by {@linkcode Holdings.rebind}. */
  block: Block | undefined;
  /** The Services holding it (more than one only when sharing). */
  holders: Holder[];
}

/** An address held by a Service that is not where it should be. */
export interface HeldAddress {
  readonly key: string;
  readonly address: string;
}

/** The addresses held in one term, by address and by Service. */
export class Holdings {
  #space: PoolSpace;
  /** Held address (canonical text) → what is known of it. */
  readonly #addresses = new Map<string, AddressInfo>();
  /** Service key → its addresses in family order. */
  readonly #assigned = new Map<string, readonly string[]>();
  /** Draining address (canonical text) → the Service whose status still shows it. */
  readonly #draining = new Map<string, { readonly ip: Ip; readonly key: string }>();

  /** Nothing held yet; `space`: the pools in force. */
  constructor(space: PoolSpace) {
    this.#space = space;
  }

  /** The addresses each Service holds (canonical texts, family order). */
  get assignments(): ReadonlyMap<string, readonly string[]> {
    return this.#assigned;
  }

  /** The addresses of one Service (canonical texts, family order); empty when none. */
  of(key: string): readonly string[] {
    return this.#assigned.get(key) ?? [];
  }

  /** What is known of a held address; `undefined` when nobody holds it. */
  info(address: string): AddressInfo | undefined {
    return this.#addresses.get(address);
  }

  /** Whether anybody holds an address (canonical text), or it drains. */
  isHeld(address: string): boolean {
    return this.#addresses.has(address) || this.#draining.has(address);
  }

  /**
   * Another Service holding `address` that `holder` may not share with, if
   * any; or the Service whose status still shows it while it drains.
   */
  conflict(address: string, holder: Holder): string | undefined {
    for (const h of this.#addresses.get(address)?.holders ?? []) {
      if (h.key !== holder.key && !mayShare(h, holder)) return h.key;
    }
    const drains = this.#draining.get(address);
    return drains && drains.key !== holder.key ? drains.key : undefined;
  }

  /**
   * Keeps each of `addresses` that nobody holds any more out of reach until
   * {@linkcode undrain}: `key`'s status still shows them.
   */
  drain(key: string, addresses: readonly string[]): void {
    for (const a of addresses) {
      if (this.#addresses.has(a)) continue;
      const parsed = parseIp(a);
      if (parsed.ok) this.#draining.set(a, { ip: parsed.ip, key });
    }
  }

  /** Frees what drains for `key` (its status no longer shows it). Returns those addresses. */
  undrain(key: string): readonly string[] {
    const freed: string[] = [];
    for (const [a, d] of this.#draining) {
      if (d.key !== key) continue;
      this.#draining.delete(a);
      this.#space.blockOf(d.ip)?.freed(d.ip);
      freed.push(a);
    }
    return freed;
  }

  /** Adds `holder` to the holders of `ip`, or updates it there (taking it back from draining). */
  take(ip: Ip, holder: Holder): AddressInfo {
    if (this.#draining.get(ip.text)?.key === holder.key) this.#draining.delete(ip.text);
    let info = this.#addresses.get(ip.text);
    if (!info) {
      info = { ip, block: this.#space.blockOf(ip), holders: [holder] };
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
    info.block?.freed(info.ip);
  }

  /**
   * Records `addresses` as what `key` holds, as they are (the caller keeps
   * the same list). Each must have been taken with {@linkcode take}.
   */
  record(key: string, addresses: readonly string[]): void {
    if (addresses.length > 0) this.#assigned.set(key, addresses);
    else this.#assigned.delete(key);
  }

  /**
   * Makes `holder` hold `next` instead of `prev` (what it held);
   * `texts`: the canonical texts of `next`, recorded as they are.
   */
  replace(
    holder: Holder,
    prev: readonly string[],
    next: readonly Ip[],
    texts: readonly string[],
  ): void {
    for (const a of prev) if (!next.some((ip) => ip.text === a)) this.#untake(a, holder.key);
    // Kept addresses too: the holder's ports or sharing key may have changed.
    for (const ip of next) this.take(ip, holder);
    this.record(holder.key, texts);
  }

  /** Frees every address of a Service, draining ones included. Returns those it held. */
  release(key: string): readonly string[] {
    const prev = this.of(key);
    for (const a of prev) this.#untake(a, key);
    this.#assigned.delete(key);
    this.undrain(key);
    return prev;
  }

  /**
   * Moves to `space` (new pools): looks up each held address's block there;
   * returns the held addresses that lie in no block. Linear in held addresses.
   */
  rebind(space: PoolSpace): HeldAddress[] {
    this.#space = space;
    for (const info of this.#addresses.values()) info.block = space.blockOf(info.ip);
    const outside: HeldAddress[] = [];
    for (const [key, addresses] of this.#assigned) {
      for (const address of addresses) {
        if (!this.#addresses.get(address)?.block) outside.push({ key, address });
      }
    }
    return outside;
  }
}
