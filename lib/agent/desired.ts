/**
 * Desired state: which host addresses the Services claim inside the managed
 * networks, from their externalIPs and, for Services of kube-gw's class, their
 * LoadBalancer status; with an index from each address to the Services that
 * claim it (for the announce gate). Pure: no I/O, no clock.
 *
 * @module
 */

import type { Claimant } from "./announce.ts";
import {
  type AddressOptions,
  type AddressSource,
  evaluateSources,
  type Rejection,
  sourcesOfBits,
} from "../service/eligibility.ts";
import type { Cidr } from "../base/cidr.ts";
import { serviceKey, type ServiceRecord } from "../service/record.ts";

const EMPTY: ReadonlyMap<string, number> = new Map();
const NONE_REPORTED: ReadonlySet<string> = new Set();

interface Entry {
  /** Address → source bits. */
  readonly addresses: ReadonlyMap<string, number>;
  /** What the announce gate needs of the Service. */
  readonly claimant: Claimant;
  /** `source ip reason` of each rejection already reported for this Service. */
  readonly reported: ReadonlySet<string>;
}

/** What a change to the desired state did. */
export interface DesiredChange {
  /** Rejections not reported before for this Service; report each once. */
  readonly newRejections: readonly Rejection[];
  /** Addresses whose claim count changed between zero and non-zero. */
  readonly touched: readonly string[];
  /**
   * Every address the changed Services claimed before or claim now: what the
   * announce gate re-evaluates (a policy or label change touches no address).
   */
  readonly addresses: readonly string[];
}

/**
 * The desired set of host addresses, kept up to date one Service at a time.
 * An address claimed by several Services is one address; it stays desired
 * until the last claim goes. Each refused (Service, IP, reason) is reported
 * once while it persists, not once per event. Each address knows the
 * Services that claim it, so the gate's lookups cost in proportion to them.
 */
export class DesiredState {
  readonly #networks: readonly Cidr[];
  readonly #options: AddressOptions;
  readonly #services = new Map<string, Entry>();
  /**
   * Address → the key of the one Service that claims it, or a Set of keys when
   * several do (most addresses have one claimant: no Set for them).
   */
  readonly #claims = new Map<string, string | Set<string>>();

  /** @param options which addresses to take. @default externalIPs only */
  constructor(networks: readonly Cidr[], options: AddressOptions = {}) {
    this.#networks = networks;
    this.#options = options;
  }

  /** The desired addresses (canonical texts), each with the key or keys of its Services. */
  get addresses(): ReadonlyMap<string, string | ReadonlySet<string>> {
    return this.#claims;
  }

  /** The keys of the Services that claim an address (for `kube-gw plan`). */
  claimants(address: string): string[] {
    const keys = this.#claims.get(address);
    return keys === undefined ? [] : typeof keys === "string" ? [keys] : [...keys];
  }

  /** The Services that claim an address, with what the announce gate needs of each. */
  claimantsOf(address: string): Claimant[] {
    const out: Claimant[] = [];
    for (const k of this.claimants(address)) {
      const e = this.#services.get(k);
      if (e) out.push(e.claimant);
    }
    return out;
  }

  /** Where an address comes from, over every Service that claims it. */
  sourcesOf(address: string): AddressSource[] {
    let bits = 0;
    for (const k of this.claimants(address)) {
      bits |= this.#services.get(k)?.addresses.get(address) ?? 0;
    }
    return sourcesOfBits(bits);
  }

  /** The addresses a Service (`namespace/name`) claims. */
  addressesOf(service: string): Iterable<string> {
    return this.#services.get(service)?.addresses.keys() ?? [];
  }

  /** Adds or replaces one Service. */
  upsert(svc: ServiceRecord): DesiredChange {
    const key = serviceKey(svc);
    const verdict = evaluateSources(svc, this.#networks, this.#options);
    const old = this.#services.get(key);
    // Most Services have no rejection: they share one empty set.
    const reported = verdict.rejections.length > 0 ? new Set<string>() : NONE_REPORTED;
    const newRejections: Rejection[] = [];
    for (const r of verdict.rejections) {
      const id = `${r.source} ${r.ip} ${r.reason}`;
      if (reported.has(id)) continue;
      (reported as Set<string>).add(id);
      if (!old?.reported.has(id)) newRejections.push(r);
    }
    const addresses = verdict.addresses;
    const before = old?.addresses ?? EMPTY;
    const touched = this.#retarget(key, before, addresses);
    const claimant: Claimant = {
      service: key,
      trafficPolicy: svc.trafficPolicy ?? "Cluster",
      proxySkipped: svc.proxySkipped ?? false,
    };
    this.#services.set(key, { addresses, claimant, reported });
    return { newRejections, touched, addresses: union(before, addresses) };
  }

  /** Forgets one Service. */
  delete(namespace: string, name: string): DesiredChange {
    const key = serviceKey({ namespace, name });
    const old = this.#services.get(key);
    if (!old) return { newRejections: [], touched: [], addresses: [] };
    this.#services.delete(key);
    return {
      newRejections: [],
      touched: this.#retarget(key, old.addresses, EMPTY),
      addresses: [...old.addresses.keys()],
    };
  }

  /**
   * Replaces every Service in scope with a complete list (after a LIST).
   * `namespace` limits the scope to one namespace; `undefined` means all.
   */
  replace(services: readonly ServiceRecord[], namespace?: string): DesiredChange {
    const listed = new Set(services.map(serviceKey));
    const newRejections: Rejection[] = [];
    const touched: string[] = [];
    const addresses = new Set<string>();
    // Loops, not push(...): a spread of a huge Service would overflow the stack.
    const add = (change: DesiredChange) => {
      for (const r of change.newRejections) newRejections.push(r);
      for (const t of change.touched) touched.push(t);
      for (const a of change.addresses) addresses.add(a);
    };
    for (const key of [...this.#services.keys()]) {
      if (listed.has(key)) continue;
      if (namespace !== undefined && !key.startsWith(`${namespace}/`)) continue;
      const [ns, name] = [key.slice(0, key.indexOf("/")), key.slice(key.indexOf("/") + 1)];
      add(this.delete(ns, name));
    }
    for (const svc of services) add(this.upsert(svc));
    return { newRejections, touched, addresses: [...addresses] };
  }

  /** Moves `key`'s claims from `before` to `after`: linear in their sizes, constant per address. */
  #retarget(
    key: string,
    before: ReadonlyMap<string, number>,
    after: ReadonlyMap<string, number>,
  ): string[] {
    const touched: string[] = [];
    for (const a of after.keys()) {
      if (before.has(a)) continue;
      const keys = this.#claims.get(a);
      if (keys === undefined) {
        this.#claims.set(a, key);
        touched.push(a);
      } else if (typeof keys === "string") {
        if (keys !== key) this.#claims.set(a, new Set([keys, key]));
      } else {
        keys.add(key);
      }
    }
    for (const b of before.keys()) {
      if (after.has(b)) continue;
      const keys = this.#claims.get(b);
      if (keys === undefined) continue;
      if (typeof keys === "string") {
        if (keys !== key) continue;
        this.#claims.delete(b);
        touched.push(b);
        continue;
      }
      keys.delete(key);
      if (keys.size === 1) this.#claims.set(b, keys.values().next().value!);
    }
    return touched;
  }
}

function union(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): string[] {
  const out = [...a.keys()];
  for (const k of b.keys()) if (!a.has(k)) out.push(k);
  return out;
}
