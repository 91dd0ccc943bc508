/**
 * Planning: the difference between the desired host addresses and the ones on
 * the managed interface. Pure.
 *
 * @module
 */

import { type Cidr, cidrContains, cidrOf, cidrsOverlap, hostPrefix } from "../base/cidr.ts";
import { parseIp } from "../base/ip.ts";
import { type InterfaceAddress, type Plan } from "../kernel/address_store.ts";

/** The managed part of an interface's addresses. */
export interface ManagedView {
  /** Host addresses (/32, /128) inside the managed networks. */
  readonly hosts: ReadonlySet<string>;
  /** Addresses that are not host addresses and whose prefix overlaps a managed network. */
  readonly conflicts: readonly InterfaceAddress[];
  /**
   * Entries the store says are kube-gw's (`owned`) that are not held as
   * hosts: outside the managed networks, not host entries (`A/N`), or
   * misshapen. Removed unless desired; empty in address mode.
   */
  readonly strays: readonly string[];
}

/**
 * Selects the addresses kube-gw owns: host addresses inside the managed
 * networks. Addresses elsewhere on the interface are not kube-gw's and never
 * appear in a plan. An address with a shorter prefix that overlaps a managed
 * network is a conflict: kube-gw cannot own part of someone else's subnet.
 * An entry the store marks `owned` (route mode: a route of kube-gw's
 * protocol) is kube-gw's wherever it lies: a host entry inside a network is
 * held, any other is a stray to remove.
 */
export function managedView(
  addresses: readonly InterfaceAddress[],
  networks: readonly Cidr[],
): ManagedView {
  const hosts = new Set<string>();
  const conflicts: InterfaceAddress[] = [];
  const strays: string[] = [];
  for (const a of addresses) {
    if (a.owned) {
      const parsed = parseIp(a.local);
      const host = a.prefixlen === hostPrefix(a.family);
      const inside = parsed.ok && host && networks.some((n) => cidrContains(n, parsed.ip));
      if (inside && !a.misshapen) hosts.add(a.local);
      else strays.push(host ? a.local : `${a.local}/${a.prefixlen}`);
      continue;
    }
    const parsed = parseIp(a.local);
    if (!parsed.ok) continue;
    if (a.prefixlen === hostPrefix(a.family)) {
      if (networks.some((n) => cidrContains(n, parsed.ip))) hosts.add(a.local);
    } else {
      const net = cidrOf(parsed.ip, a.prefixlen);
      if (networks.some((n) => cidrsOverlap(n, net))) conflicts.push(a);
    }
  }
  return { hosts, conflicts, strays };
}

/**
 * Plans the change from `current` to `desired`: add what is missing, remove
 * what is stale. Both are sets of managed host addresses.
 */
export function plan(desired: Iterable<string>, current: ReadonlySet<string>): Plan {
  const add: string[] = [];
  const want = new Set<string>();
  for (const d of desired) {
    want.add(d);
    if (!current.has(d)) add.push(d);
  }
  const remove: string[] = [];
  for (const c of current) if (!want.has(c)) remove.push(c);
  return { add, remove };
}

/**
 * Plans only the `touched` addresses. This is {@linkcode plan} when every
 * other address is already right, that is desired exactly when current: the
 * reconciler's state between reads of the interface, where the full plan
 * would cost a pass over every address for a change to a few.
 */
export function planTouched(
  touched: Iterable<string>,
  desired: { has(address: string): boolean },
  current: ReadonlySet<string>,
): Plan {
  const add: string[] = [];
  const remove: string[] = [];
  for (const a of touched) {
    const want = desired.has(a);
    if (want && !current.has(a)) add.push(a);
    else if (!want && current.has(a)) remove.push(a);
  }
  return { add, remove };
}

/**
 * Adds to a full plan the removal of the strays that are not desired; a
 * desired stray (a misshapen route of a wanted address) is not held, so the
 * plan already writes it again.
 */
export function withStrays(
  p: Plan,
  strays: readonly string[],
  desired: { has(address: string): boolean },
): Plan {
  const remove = strays.filter((s) => !desired.has(s));
  return remove.length === 0 ? p : { add: p.add, remove: [...p.remove, ...remove] };
}

/** Whether a plan changes nothing. */
export function isEmptyPlan(p: Plan): boolean {
  return p.add.length === 0 && p.remove.length === 0;
}
