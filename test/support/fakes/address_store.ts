/**
 * The one fake {@linkcode AddressStore}: an interface in memory that holds
 * the reconciler to the invariant of every plan (add only what is missing,
 * remove only what is there), like kubernetes' ipvs/testing/fake.go. A
 * broken invariant is recorded and thrown; `assertNoViolations` fails the
 * test even when the reconciler swallowed the throw as an `ip` failure.
 * Failures can be injected, whole or after part of a plan, and drift made
 * by hand.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type AddressStore,
  type InterfaceAddress,
  type Plan,
} from "../../../lib/kernel/address_store.ts";

/** A host address (/32 or /128) of the family its text shows. */
export function hostAddress(local: string): InterfaceAddress {
  return local.includes(":")
    ? { family: 6, local, prefixlen: 128 }
    : { family: 4, local, prefixlen: 32 };
}

function isHost(a: InterfaceAddress, local: string): boolean {
  return a.local === local && a.prefixlen === (a.family === 4 ? 32 : 128);
}

/** Whether `a` is the host address `key`, or the entry `A/N` it names. */
function matches(a: InterfaceAddress, key: string): boolean {
  const cut = key.indexOf("/");
  if (cut < 0) return isHost(a, key);
  return a.local === key.slice(0, cut) && a.prefixlen === Number(key.slice(cut + 1));
}

/** Options for {@linkcode FakeAddressStore.failApply}. */
export interface FailOptions {
  /** Apply the first half of the plan's adds and removes before failing. @default false */
  readonly partial?: boolean;
  /** @default "RTNETLINK answers: No buffer space available" */
  readonly message?: string;
}

/** An interface in memory, with a record of every plan applied. */
export class FakeAddressStore implements AddressStore {
  #addresses: InterfaceAddress[];
  readonly #failures: FailOptions[] = [];
  /** Every plan applied in full, in order. */
  readonly plans: Plan[] = [];
  /** Every renewal, in order: the addresses it renewed, sorted. */
  readonly renewals: string[][] = [];
  /** Calls to `read`. */
  reads = 0;
  /** Broken invariants, one line each. */
  readonly violations: string[] = [];

  readonly #owned: boolean;
  /** Route mode's local access, with `localAccess`: in place or not, and as the last read saw it. */
  readonly #local: { present: boolean; seen: boolean } | undefined;
  /** With `localAccess`: what the last read found missing, as `RouteStore.missing`. */
  readonly missing?: () => string | undefined;

  /**
   * Starts with `initial`: texts become host addresses. With `owned` it
   * stands for route mode: every entry it holds is kube-gw's (texts become
   * owned host routes), a removal may name a prefix (`A/N`), and an add may
   * replace a misshapen entry. With `localAccess` it also keeps what route
   * mode keeps beside the addresses, in place at the start
   * ({@linkcode removeLocalAccess} takes it away, as by hand).
   */
  constructor(
    initial: Iterable<string | InterfaceAddress> = [],
    options: { owned?: boolean; localAccess?: boolean } = {},
  ) {
    this.#owned = options.owned ?? false;
    if (options.localAccess) {
      const local = this.#local = { present: true, seen: true };
      this.missing = () =>
        local.seen ? undefined : "local access: the rule iif lo lookup 200 (IPv4)";
    }
    this.#addresses = [...initial].map((a) => typeof a === "string" ? this.#entry(a) : a);
  }

  #entry(local: string): InterfaceAddress {
    return this.#owned ? { ...hostAddress(local), owned: true } : hostAddress(local);
  }

  read(): Promise<InterfaceAddress[]> {
    this.reads++;
    const snapshot = () => {
      if (this.#local) this.#local.seen = this.#local.present;
      return this.#addresses.map((a) => ({ ...a }));
    };
    const hold = this.#hold;
    if (!hold) return Promise.resolve(snapshot());
    // A dump reflects the interface somewhere between its start and its end.
    const atStart = hold.snapshot === "start" ? snapshot() : undefined;
    return hold.gate.then(() => atStart ?? snapshot());
  }

  #hold: { gate: Promise<void>; snapshot: "start" | "end" } | undefined;

  /**
   * Holds every read from now on until the returned function is called: a
   * slow dump that plans can overtake. The read returns the interface as it
   * was when the read began (`start`) or when it was released (`end`).
   */
  holdReads(snapshot: "start" | "end" = "end"): () => void {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => release = resolve);
    this.#hold = { gate, snapshot };
    return () => {
      this.#hold = undefined;
      release();
    };
  }

  /** Takes local access away, as by hand (`localAccess` only). */
  removeLocalAccess(): void {
    if (this.#local) this.#local.present = false;
  }

  /** Whether local access is in place (`localAccess` only). */
  get localAccess(): boolean {
    return this.#local?.present ?? false;
  }

  apply(plan: Plan): Promise<void> {
    const nothing = plan.add.length === 0 && plan.remove.length === 0;
    const broken = [
      // With local access kept, a run for no address must be one that puts it back.
      ...(nothing && this.#local?.seen ? ["an empty plan with nothing missing"] : []),
      ...plan.add.filter((a) => this.#has(a, { wellShaped: true })).map((a) =>
        `add ${a}: already present`
      ),
      ...plan.remove.filter((r) => !this.#has(r)).map((r) => `remove ${r}: absent`),
    ];
    if (broken.length > 0) {
      this.violations.push(...broken);
      return Promise.reject(new Error(`fake address store: ${broken.join("; ")}`));
    }
    const failure = this.#failures.shift();
    const part = (xs: readonly string[]) =>
      failure === undefined ? xs : failure.partial ? xs.slice(0, xs.length >> 1) : [];
    if (this.#local && !this.#local.seen) this.#local.present = this.#local.seen = true;
    for (const a of part(plan.add)) this.put(a);
    for (const r of part(plan.remove)) this.take(r);
    if (failure !== undefined) {
      return Promise.reject(
        new Error(failure.message ?? "RTNETLINK answers: No buffer space available"),
      );
    }
    this.plans.push(plan);
    return Promise.resolve();
  }

  /**
   * Renews lifetimes: an `address replace` of an absent address would re-add
   * it, so renewing one is a broken invariant (a renewal raced a removal).
   */
  renew(addresses: Iterable<string>): Promise<void> {
    const list = [...addresses].sort();
    const broken = list.filter((a) => !this.#has(a)).map((a) => `renew ${a}: absent`);
    if (broken.length > 0) {
      this.violations.push(...broken);
      return Promise.reject(new Error(`fake address store: ${broken.join("; ")}`));
    }
    this.renewals.push(list);
    return Promise.resolve();
  }

  /** The next `times` applies fail. */
  failApply(times = 1, options: FailOptions = {}): void {
    for (let i = 0; i < times; i++) this.#failures.push(options);
  }

  /** Drops the failures not yet used. */
  clearFailures(): void {
    this.#failures.length = 0;
  }

  /** Adds an address by hand (drift, or what another program put there); replaces a misshapen one. */
  put(address: string | InterfaceAddress): void {
    const a = typeof address === "string" ? this.#entry(address) : address;
    this.#addresses = this.#addresses.filter((x) =>
      !(x.misshapen && x.local === a.local && x.prefixlen === a.prefixlen)
    );
    if (!this.#addresses.some((x) => x.local === a.local && x.prefixlen === a.prefixlen)) {
      this.#addresses.push(a);
    }
  }

  /** Removes a host address by hand, or (`A/N`) the entry with that prefix. */
  take(local: string): void {
    this.#addresses = this.#addresses.filter((a) => !matches(a, local));
  }

  /** Every entry held, as `A/N` texts, sorted. */
  entries(): string[] {
    return this.#addresses.map((a) => `${a.local}/${a.prefixlen}`).sort();
  }

  /** The host addresses on the interface, sorted. */
  hosts(): string[] {
    return this.#addresses.filter((a) => isHost(a, a.local)).map((a) => a.local).sort();
  }

  /** Fails the test if any plan broke the invariant. */
  assertNoViolations(): void {
    assert.deepEqual(this.violations, [], "every plan adds what is missing, removes what is there");
  }

  /**
   * Whether the host address `local` (or the entry `A/N`) is there (the
   * kernel keys addresses by address and prefix); with `wellShaped`, a
   * misshapen entry does not count.
   */
  #has(local: string, options: { wellShaped?: boolean } = {}): boolean {
    return this.#addresses.some((a) => matches(a, local) && !(options.wellShaped && a.misshapen));
  }
}
