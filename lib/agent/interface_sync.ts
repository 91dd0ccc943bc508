/**
 * The interface side of the reconciler: reads the managed addresses through
 * the {@linkcode AddressStore} port, plans from them to the announced set and
 * applies the plan, the one place that changes the interface and logs it.
 *
 * The interface is read at the first sync, after any failure and when a
 * re-read is asked for; in between the sync trusts what it applied and plans
 * only the addresses touched since, so a sync costs one store run. A re-read
 * that differs from what was applied feeds the fight detector. Renewals
 * (`--address-lifetime`) and plans run one at a time.
 *
 * The periodic check ({@linkcode InterfaceSync.verify}) reads beside the
 * plans instead of before them, so at 100,000 routes the events that arrive
 * meanwhile are not held up by the read: it compares what it read with what
 * was applied, leaving out every address a plan changed while it read, and
 * only when they differ does the next sync re-read the interface in line and
 * repair it. No I/O of its own: everything goes through the port.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type Cidr, hostPrefix } from "../base/cidr.ts";
import { type Clock, forEachSlice } from "../base/clock.ts";
import { familyOf } from "../base/ip.ts";
import type { AddressStore, InterfaceAddress, Plan } from "../kernel/address_store.ts";
import { describeFight, FightDetector, type FightEvent } from "./fight_detector.ts";
import type { AgentObserver } from "./observer.ts";
import { isEmptyPlan, managedView, plan, planTouched, withStrays } from "./plan.ts";

const log = getLogger(["kube-gw", "reconciler"]);

function countV6(addresses: Iterable<string>): number {
  let n = 0;
  for (const a of addresses) if (familyOf(a) === 6) n++;
  return n;
}

/** A plan that changes more addresses than this is logged as one summary line at info. */
const LOG_EACH_MAX = 64;

/**
 * Logs what a plan changed: each address at info, or, for a plan of more
 * than {@linkcode LOG_EACH_MAX} (a start at 100,000 routes), one summary
 * line at info and each address at debug.
 */
function logPlan(p: Plan): void {
  const each = p.add.length + p.remove.length <= LOG_EACH_MAX ? "info" : "debug";
  if (each === "debug") {
    log.info("assuming {added} addresses and forfeiting {removed} (each at debug level)", {
      added: p.add.length,
      removed: p.remove.length,
    });
  }
  if (!log.isEnabledFor(each)) return;
  for (const a of p.add) log[each]("assuming address {address}", { address: a });
  for (const r of p.remove) log[each]("forfeiting address {address}", { address: r });
}

/** Raised when the interface holds an address kube-gw must not manage around. */
export class ConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConflictError";
  }
}

/** Options for {@linkcode InterfaceSync}. */
export interface InterfaceSyncOptions {
  readonly store: AddressStore;
  readonly networks: readonly Cidr[];
  /** Told the held-address counts and the fights. */
  readonly observer: AgentObserver;
  /** {@linkcode InterfaceSync.verify} lets other work run on it between slices of a large read. */
  readonly clock: Clock;
}

/** Brings the managed host addresses of one interface to a desired set. */
export class InterfaceSync {
  readonly #o: InterfaceSyncOptions;
  /** The managed addresses of the first read: what the gate counts as announced at start. */
  #startHeld: ReadonlySet<string> | undefined;
  #current = new Set<string>();
  /** What the last read found of kube-gw's that is not held: removed by the next full plan. */
  #strays: readonly string[] = [];
  /** Read the interface before the next plan instead of trusting `#current`. */
  #reread = true;
  /**
   * Addresses whose desired state changed since the last plan; every other
   * address is desired exactly when it is in `#current`. Undefined after a
   * read of the interface: the next plan covers every address.
   */
  #touched: Set<string> | undefined;
  /** IPv6 addresses among those last read or applied, for the held-address gauge. */
  #heldV6 = 0;
  /** The tail of the store's queue: see {@linkcode InterfaceSync.renew}. */
  #queue: Promise<void> = Promise.resolve();
  /** Whether `#current` is what the interface held after our last apply (fight detection). */
  #trusted = false;
  readonly #fights = new FightDetector();
  /** Aborts a running store call: see {@linkcode InterfaceSync.interrupt}. */
  readonly #kill = new AbortController();
  /** One set per running {@linkcode verify}: the addresses every plan since its read began changed. */
  readonly #verifying = new Set<Set<string>>();
  /** The plan being applied, if any: a verify that starts meanwhile leaves its addresses out. */
  #applying: Plan | undefined;
  /** Counts the times `#current` was replaced by a read: a verify across one compares nothing. */
  #generation = 0;

  constructor(options: InterfaceSyncOptions) {
    this.#o = options;
  }

  /** The managed addresses of the first read; undefined before it. */
  get startHeld(): ReadonlySet<string> | undefined {
    return this.#startHeld;
  }

  /** Whether another program keeps changing the managed addresses. */
  get fighting(): boolean {
    return this.#fights.fighting;
  }

  /** Addresses whose desired state changed: the next plan looks at them. */
  touch(addresses: readonly string[]): void {
    if (this.#touched) { for (const a of addresses) this.#touched.add(a); }
  }

  /** Re-reads the interface at the next sync (and repairs any drift then). */
  reread(): void {
    this.#reread = true;
  }

  /** Stops a running store call (its process is stopped); it rejects with `reason`'s error. */
  interrupt(reason: Error): void {
    this.#kill.abort(reason);
  }

  /**
   * Reads the interface's managed host addresses, refusing on a conflict, and
   * reports them to the observer (so the address gauge is right from the start,
   * before the first list). The first read is kept as {@linkcode startHeld}.
   */
  async readManaged(): Promise<Set<string>> {
    const held = await this.#read({ refuseConflicts: true });
    this.#startHeld ??= new Set(held);
    return held;
  }

  async #read(options: { refuseConflicts: boolean }): Promise<Set<string>> {
    const view = managedView(await this.#o.store.read(this.#kill.signal), this.#o.networks);
    if (options.refuseConflicts && view.conflicts.length > 0) {
      const list = view.conflicts.map((c) => `${c.local}/${c.prefixlen}`).join(", ");
      throw new ConflictError(
        `the interface holds ${list}, which overlaps a managed network but is not a host address; kube-gw will not manage around it`,
      );
    }
    const held = new Set(view.hosts);
    this.#strays = view.strays;
    this.#heldV6 = countV6(held);
    this.#report(held.size);
    return held;
  }

  /** The plan from the interface's state (read now) to `desired`; changes nothing. */
  async plan(desired: ReadonlySet<string>): Promise<Plan> {
    return withStrays(plan(desired, await this.readManaged()), this.#strays, desired);
  }

  /**
   * Brings the interface to `desired()` once, reading it first when a re-read
   * is pending. Returns the plan applied (empty when nothing changed). Throws
   * when the store fails; the next call re-reads the interface.
   */
  async sync(desired: () => ReadonlySet<string>): Promise<Plan> {
    if (this.#reread) {
      const read = await this.readManaged();
      if (this.#trusted) this.#watchForFights(this.#fights.observe(this.#current, read));
      this.#current = read;
      this.#generation++;
      this.#reread = false;
      this.#touched = undefined;
    }
    const applied = await this.#apply(this.#planNext(desired()));
    this.#trusted = true;
    return applied;
  }

  /**
   * Checks, beside the plans, that the interface holds what was applied:
   * reads it and compares the managed addresses with the applied set,
   * leaving out those a plan changed while the read ran, and yielding to
   * other work between slices of a large read. Returns true when they agree
   * (a quiet read for the fight detector); false when the interface must be
   * read again in line and repaired: drift, strays, a conflict, a failure,
   * something of the store's own missing (route mode's local access), or
   * nothing applied yet to compare with. Throws when the store fails.
   */
  async verify(): Promise<boolean> {
    if (this.#reread || !this.#trusted) return false;
    const changed = new Set<string>(
      this.#applying ? [...this.#applying.add, ...this.#applying.remove] : [],
    );
    const generation = this.#generation;
    this.#verifying.add(changed);
    try {
      const entries = await this.#o.store.read(this.#kill.signal);
      // Most entries are held addresses, matched by text; only the rest need the full view.
      const present = new Set<string>();
      const others: InterfaceAddress[] = [];
      await forEachSlice(this.#o.clock, entries, (slice) => {
        for (const e of slice) {
          const held = e.prefixlen === hostPrefix(e.family) && !e.misshapen &&
            this.#current.has(e.local);
          if (held) present.add(e.local);
          else others.push(e);
        }
      });
      if (this.#o.store.missing?.() !== undefined) return false;
      const view = managedView(others, this.#o.networks);
      if (view.conflicts.length > 0 || view.strays.length > 0) return false;
      if (this.#reread || this.#generation !== generation) return false;
      for (const a of view.hosts) if (!changed.has(a)) return false;
      for (const a of this.#current) if (!present.has(a) && !changed.has(a)) return false;
    } finally {
      this.#verifying.delete(changed);
    }
    this.#watchForFights(this.#fights.observeChanges([], []));
    return true;
  }

  /** Reports a fight starting or ending: another writer shows as repeated drift. */
  #watchForFights(event: FightEvent): void {
    if (event?.kind === "started") {
      log.warn(describeFight(event.report));
      this.#o.observer.interfaceConflict(true);
    } else if (event?.kind === "ended") {
      log.info("the managed addresses have stopped changing behind kube-gw's back");
      this.#o.observer.interfaceConflict(false);
    }
  }

  /**
   * Removes every managed host address, whatever is desired, so BGP withdraws
   * them (`kube-gw drain`). A subnet that overlaps a managed network is not
   * kube-gw's and stays; it does not stop the drain. Returns the plan applied.
   */
  async drain(): Promise<Plan> {
    this.#current = await this.#read({ refuseConflicts: false });
    this.#generation++;
    this.#reread = false;
    this.#touched = new Set();
    const p = withStrays(plan([], this.#current), this.#strays, new Set());
    // Nothing to withdraw: change nothing, not even missing local access (one that withdraws puts
    // that back with the plan, as any plan does).
    if (isEmptyPlan(p)) return p;
    return await this.#apply(p);
  }

  /** Applies a plan, the one place that changes the interface and logs it. */
  async #apply(p: Plan): Promise<Plan> {
    // A store may have its own pieces to put back (route mode's local access), even for no address.
    const missing = this.#o.store.missing?.();
    if (isEmptyPlan(p) && missing === undefined) return p;
    let removedV6 = 0;
    for (const changed of this.#verifying) {
      for (const a of p.add) changed.add(a);
      for (const r of p.remove) changed.add(r);
    }
    try {
      await this.#serial(async () => {
        this.#applying = p;
        await this.#o.store.apply(p, this.#kill.signal).finally(() => this.#applying = undefined);
        // A stray removed was never held: only what was held leaves the count.
        for (const r of p.remove) if (this.#current.delete(r) && familyOf(r) === 6) removedV6++;
        for (const a of p.add) this.#current.add(a);
      });
    } catch (err) {
      this.#reread = true;
      this.#trusted = false;
      throw err;
    }
    if (missing !== undefined) log.info("put in place {missing}", { missing });
    logPlan(p);
    // A plan adds only what is missing and removes only what is there: the count follows it.
    this.#heldV6 += countV6(p.add) - removedV6;
    this.#report(this.#current.size);
    return p;
  }

  /**
   * The plan for this sync: every address after a read of the interface
   * (with the strays it found), else only the addresses touched since the
   * last plan. Starts a new touched
   * set, so changes that arrive while the store runs go into the next plan.
   */
  #planNext(desired: ReadonlySet<string>): Plan {
    const touched = this.#touched;
    this.#touched = new Set();
    if (touched !== undefined) return planTouched(touched, desired, this.#current);
    const strays = this.#strays;
    this.#strays = [];
    return withStrays(plan(desired, this.#current), strays, desired);
  }

  #report(total: number): void {
    this.#o.observer.held(4, total - this.#heldV6);
    this.#o.observer.held(6, this.#heldV6);
  }

  /**
   * Runs `fn` after every plan or renewal before it: a renewal (`address
   * replace`) running beside a plan could re-add an address the plan removes.
   */
  #serial(fn: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  /**
   * Renews the lifetime of the managed addresses on the interface
   * (`--address-lifetime`) in one store run, never beside a plan: the held
   * set, or what the interface holds when a re-read is pending (before the
   * first sync, after a failure). Returns how many were renewed.
   */
  renew(): Promise<number> {
    let count = 0;
    return this.#serial(async () => {
      if (!this.#o.store.renew) return;
      const addresses = this.#reread
        ? await this.#read({ refuseConflicts: false })
        : new Set(this.#current);
      count = addresses.size;
      if (count > 0) await this.#o.store.renew(addresses);
    }).then(() => count);
  }
}
