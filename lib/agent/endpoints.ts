/**
 * The endpoint index: per Service and address family, how many endpoints
 * kube-proxy would use, cluster-wide and on this node. It keeps counts, not
 * slices: each slice's contribution (its endpoints' addresses and classes) and,
 * per Service, a reference count per endpoint address, so the same address in
 * two slices is one endpoint and an update costs in proportion to the slice
 * that changed. Pure: no I/O, no clock.
 *
 * kube-proxy's rules (`pkg/proxy/topology.go`, `CategorizeEndpoints`):
 * - an endpoint is ready when `conditions.ready` is true or unset;
 * - `Cluster` policy: the ready endpoints; when there is none anywhere, the
 *   endpoints that are serving and terminating (fallback);
 * - `Local` policy: the ready endpoints on this node; when there is none on
 *   this node, the serving and terminating ones on this node;
 * - an IPv4 address is served from IPv4 slices only, an IPv6 one from IPv6
 *   slices only (one proxier per family); FQDN slices are ignored.
 *
 * When one address appears in two slices of a Service with different
 * conditions (a transient state while the controller moves it), it counts in
 * every class any of its slices gives it: the index errs towards keeping an
 * announcement during a rebalance rather than flapping it.
 *
 * @module
 */

import type { EndpointSliceRecord } from "./endpoint_slice.ts";
import { serviceKey } from "../service/record.ts";

/** Usable endpoints of one Service in one address family, by kube-proxy's rules. */
export interface EndpointCounts {
  /** For `externalTrafficPolicy: Cluster`: ready ones, else serving and terminating ones. */
  readonly cluster: number;
  /** For `externalTrafficPolicy: Local`: the same, counted on this node only. */
  readonly local: number;
}

const NONE: EndpointCounts = { cluster: 0, local: 0 };

/** Classes an endpoint can count in, as bits. */
const READY = 1;
const FALLBACK = 2;
const LOCAL = 4;

/** One endpoint as a slice contributes it: address and class bits. */
interface Contribution {
  readonly address: string;
  readonly bits: number;
}

interface SliceEntry {
  /** `namespace/service family`, the bucket this slice counts in. */
  readonly bucket: string;
  readonly service: string;
  readonly endpoints: readonly Contribution[];
}

/** Classes an endpoint counts in: ready, fallback, ready here, fallback here. */
function classesOf(bits: number): number[] {
  const out: number[] = [];
  if (bits & READY) out.push(0);
  if (bits & FALLBACK) out.push(1);
  if ((bits & (READY | LOCAL)) === (READY | LOCAL)) out.push(2);
  if ((bits & (FALLBACK | LOCAL)) === (FALLBACK | LOCAL)) out.push(3);
  return out;
}

/**
 * Per Service and family: address → references, per class. A class's map
 * exists only while it holds an address (most Services have no fallback and
 * no local endpoint).
 */
class Bucket {
  readonly #maps: (Map<string, number> | undefined)[] = [
    undefined,
    undefined,
    undefined,
    undefined,
  ];
  slices = 0;

  #size(i: number): number {
    return this.#maps[i]?.size ?? 0;
  }

  counts(): EndpointCounts {
    return {
      cluster: this.#size(0) > 0 ? this.#size(0) : this.#size(1),
      local: this.#size(2) > 0 ? this.#size(2) : this.#size(3),
    };
  }

  add(address: string, bits: number): void {
    for (const i of classesOf(bits)) {
      const m = this.#maps[i] ??= new Map();
      m.set(address, (m.get(address) ?? 0) + 1);
    }
  }

  remove(address: string, bits: number): void {
    for (const i of classesOf(bits)) {
      const m = this.#maps[i];
      if (!m) continue;
      const n = m.get(address) ?? 0;
      if (n > 1) m.set(address, n - 1);
      else if (m.size > 1) m.delete(address);
      else this.#maps[i] = undefined;
    }
  }
}

function bucketKey(service: string, family: 4 | 6): string {
  return `${service} ${family}`;
}

function verdictBits(c: EndpointCounts): number {
  return (c.cluster > 0 ? 1 : 0) | (c.local > 0 ? 2 : 0);
}

/**
 * Endpoint counts per Service, kept up to date one EndpointSlice at a time.
 * Every mutator returns the keys (`namespace/name`) of the Services whose
 * verdict-relevant counts changed: whether `cluster` or `local` is non-zero,
 * in either family. A change of numbers that keeps both sides of zero is not
 * reported (pods restarting behind a Service with other ready endpoints).
 */
export class EndpointIndex {
  readonly #nodeName: string | undefined;
  readonly #slices = new Map<string, SliceEntry>();
  readonly #buckets = new Map<string, Bucket>();
  #work = 0;

  /** @param nodeName this gateway's node; without it, no endpoint is local. */
  constructor(nodeName?: string) {
    this.#nodeName = nodeName;
  }

  /**
   * Endpoint entries added or removed since construction: the work the index
   * did. Tests use it to show an update costs in proportion to its slice.
   */
  get work(): number {
    return this.#work;
  }

  /** Number of slices counted (slices without a Service or of family FQDN are not). */
  get sliceCount(): number {
    return this.#slices.size;
  }

  /** The usable endpoints of Service `service` (`namespace/name`) for an address family. */
  counts(service: string, family: 4 | 6): EndpointCounts {
    return this.#buckets.get(bucketKey(service, family))?.counts() ?? NONE;
  }

  /** Adds or replaces one slice. */
  upsert(slice: EndpointSliceRecord): string[] {
    const key = serviceKey(slice);
    const next = this.#entry(slice);
    const before = this.#snapshot(this.#affected(key, next));
    this.#put(key, next);
    return this.#changed(before);
  }

  /** Forgets one slice. */
  delete(slice: { readonly namespace: string; readonly name: string }): string[] {
    const key = serviceKey(slice);
    if (!this.#slices.has(key)) return [];
    const before = this.#snapshot(this.#affected(key, undefined));
    this.#put(key, undefined);
    return this.#changed(before);
  }

  /**
   * Replaces every slice in scope with a complete list (after a LIST).
   * `namespace` limits the scope to one namespace; `undefined` means all.
   * Reports the net change: a Service whose verdict ends where it began is
   * not reported.
   */
  replace(slices: readonly EndpointSliceRecord[], namespace?: string): string[] {
    const next = new Map<string, SliceEntry | undefined>();
    for (const s of slices) next.set(serviceKey(s), this.#entry(s));
    const gone: string[] = [];
    for (const key of this.#slices.keys()) {
      if (next.has(key)) continue;
      if (namespace !== undefined && !key.startsWith(`${namespace}/`)) continue;
      gone.push(key);
    }
    const buckets = new Set<string>();
    for (const key of gone) for (const b of this.#affected(key, undefined)) buckets.add(b);
    for (const [key, entry] of next) for (const b of this.#affected(key, entry)) buckets.add(b);
    const before = this.#snapshot(buckets);
    for (const key of gone) this.#put(key, undefined);
    for (const [key, entry] of next) this.#put(key, entry);
    return this.#changed(before);
  }

  /** The buckets that replacing slice `key` with `next` touches. */
  #affected(key: string, next: SliceEntry | undefined): Set<string> {
    const out = new Set<string>();
    const old = this.#slices.get(key);
    if (old) out.add(old.bucket);
    if (next) out.add(next.bucket);
    return out;
  }

  /** Replaces slice `key`'s contribution; adds before removing, so a re-sent slice never drops a count through zero. */
  #put(key: string, next: SliceEntry | undefined): void {
    const old = this.#slices.get(key);
    if (next) this.#add(next);
    if (old) this.#remove(old);
    if (next) this.#slices.set(key, next);
    else this.#slices.delete(key);
  }

  #entry(slice: EndpointSliceRecord): SliceEntry | undefined {
    if (slice.service === undefined || slice.family === "ignored") return undefined;
    const service = serviceKey({ namespace: slice.namespace, name: slice.service });
    const endpoints: Contribution[] = [];
    for (const e of slice.endpoints) {
      let bits = 0;
      if (e.ready) bits |= READY;
      else if (e.serving && e.terminating) bits |= FALLBACK;
      if (bits === 0) continue;
      if (this.#nodeName !== undefined && e.nodeName === this.#nodeName) bits |= LOCAL;
      endpoints.push({ address: e.address, bits });
    }
    return { bucket: bucketKey(service, slice.family), service, endpoints };
  }

  #add(entry: SliceEntry): void {
    let bucket = this.#buckets.get(entry.bucket);
    if (!bucket) {
      bucket = new Bucket();
      this.#buckets.set(entry.bucket, bucket);
    }
    bucket.slices++;
    for (const e of entry.endpoints) {
      this.#work++;
      bucket.add(e.address, e.bits);
    }
  }

  #remove(entry: SliceEntry): void {
    const bucket = this.#buckets.get(entry.bucket);
    if (!bucket) return;
    for (const e of entry.endpoints) {
      this.#work++;
      bucket.remove(e.address, e.bits);
    }
    if (--bucket.slices === 0) this.#buckets.delete(entry.bucket);
  }

  #snapshot(buckets: ReadonlySet<string>): Map<string, { service: string; bits: number }> {
    const out = new Map<string, { service: string; bits: number }>();
    for (const b of buckets) {
      const service = b.slice(0, b.lastIndexOf(" "));
      out.set(b, { service, bits: verdictBits(this.#buckets.get(b)?.counts() ?? NONE) });
    }
    return out;
  }

  #changed(before: Map<string, { service: string; bits: number }>): string[] {
    const out = new Set<string>();
    for (const [b, { service, bits }] of before) {
      if (verdictBits(this.#buckets.get(b)?.counts() ?? NONE) !== bits) out.add(service);
    }
    return [...out];
  }
}
