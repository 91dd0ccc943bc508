/**
 * The AddressPools the controller knows, fed by their watch, and the pools
 * they put in force ({@linkcode acceptPools}: oldest first, an overlapping
 * newer pool refused whole). Tells its listener the pools in force after
 * each change: `undefined` while no AddressPool exists (then `--pool` and the
 * pools ConfigMap are in force), a list (maybe empty) once one does. Pure.
 *
 * @module
 */

import type { ListWatchSink } from "../kube/list_watch.ts";
import type { AddressPoolRecord } from "./address_pool.ts";
import { type AcceptedPools, acceptPools } from "./pool_status.ts";
import type { Pool } from "./pools.ts";

function fingerprint(p: Pool): unknown[] {
  return [
    p.name,
    p.cidrs.map((c) => c.text),
    p.namespaces ?? null,
    p.autoAssign,
    !!p.allowReserved,
  ];
}

/** Told of the pools in force after each change (`undefined`: no AddressPool exists). */
export type ResourcePoolsListener = (pools: readonly Pool[] | undefined) => void;

/** The AddressPool watch's sink and cache. */
export class AddressPoolCache implements ListWatchSink<AddressPoolRecord> {
  readonly #records = new Map<string, AddressPoolRecord>();
  readonly #listeners: ResourcePoolsListener[] = [];
  #accepted: AcceptedPools = { pools: [], overlaps: new Map() };
  #synced = false;
  /** What the listeners were last told, as text; undefined before the first list. */
  #told: string | undefined;

  /** Adds a listener, told after every change. */
  listen(listener: ResourcePoolsListener): void {
    this.#listeners.push(listener);
  }

  /** Whether the first list arrived. */
  get synced(): boolean {
    return this.#synced;
  }

  /** The AddressPools known, by name. */
  get records(): ReadonlyMap<string, AddressPoolRecord> {
    return this.#records;
  }

  /** The pools in force and the refused ones. */
  get accepted(): AcceptedPools {
    return this.#accepted;
  }

  replace(items: AddressPoolRecord[]): void {
    this.#records.clear();
    for (const r of items) this.#records.set(r.name, r);
    this.#synced = true;
    this.#changed();
  }

  upsert(item: AddressPoolRecord): void {
    this.#records.set(item.name, item);
    this.#changed();
  }

  delete(item: AddressPoolRecord): void {
    this.#records.delete(item.name);
    this.#changed();
  }

  /** Tells the listeners when the pools in force changed (a status write changes none). */
  #changed(): void {
    this.#accepted = acceptPools(this.#records.values());
    const pools = this.#records.size > 0 ? this.#accepted.pools : undefined;
    const print = pools === undefined ? "none" : JSON.stringify(pools.map(fingerprint));
    if (print === this.#told) return;
    this.#told = print;
    for (const l of this.#listeners) l(pools);
  }
}
