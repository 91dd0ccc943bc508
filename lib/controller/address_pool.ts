/**
 * The AddressPool resource (`kube-gw.io/v1alpha1`, cluster-scoped) as the
 * controller keeps it: its identity, its spec made a {@linkcode Pool} (or
 * why it cannot be), and the parts of its status the controller writes, to
 * write again only on change. Pure.
 *
 * The API server validates a pool at `kubectl apply` (the CRD's schema and
 * CEL rules), but the decoder trusts nothing of it: an older CRD, a write
 * that bypassed validation or a hostile object are read with the bounds of
 * `pools.ts` (DNS-label names, canonical CIDRs of the allowed sizes, at most
 * {@linkcode MAX_CIDRS_PER_ADDRESS_POOL} CIDRs and 1024 namespaces, no
 * overlap within the pool), each value cut before it is shown. A spec that
 * breaks them gives a record with a `problem`, never an exception: the pool
 * exists (so the resources are in force) but hands out nothing.
 *
 * @module
 */

import { type Cidr } from "../base/cidr.ts";
import { isObject, MAX_NAME_LENGTH, ShapeError } from "../base/shape.ts";
import {
  checkPools,
  MAX_NAMESPACES_PER_POOL,
  type Pool,
  poolCidr,
  PoolConfigError,
} from "./pools.ts";

/** The AddressPool collection (for `collectionPath`) and its kind. */
export const ADDRESS_POOLS = {
  group: "kube-gw.io",
  version: "v1alpha1",
  resource: "addresspools",
  kind: "AddressPool",
} as const;

/** Most CIDRs read from one AddressPool (the CRD's `maxItems`). */
export const MAX_CIDRS_PER_ADDRESS_POOL = 256;
/** Most conditions read from a status. */
const MAX_CONDITIONS = 8;
/** Longest condition text kept (a longer one is cut, so it differs and is written again). */
const MAX_CONDITION_TEXT = 4096;

const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** One condition as read from (or written to) a status. */
export interface PoolCondition {
  readonly type: string;
  readonly status: "True" | "False" | "Unknown";
  readonly reason: string;
  readonly message: string;
  readonly lastTransitionTime: string;
  readonly observedGeneration?: number;
}

/** Addresses of one family of a pool. */
export interface FamilyUsage {
  readonly used: number;
  /** A decimal string: an IPv6 pool holds more than an integer counts. */
  readonly free: string;
}

/** The status of a pool: what the controller writes. */
export interface PoolStatus {
  readonly observedGeneration?: number;
  readonly used?: number;
  readonly free?: string;
  readonly ipv4?: FamilyUsage;
  readonly ipv6?: FamilyUsage;
  readonly conditions: readonly PoolCondition[];
}

/** What the controller keeps of an AddressPool. */
export interface AddressPoolRecord {
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
  /** `metadata.generation`; 0 when absent. */
  readonly generation: number;
  /** `metadata.creationTimestamp` (RFC 3339); `""` when absent. Older pools win an overlap. */
  readonly createdAt: string;
  /** The pool, when the spec is valid. */
  readonly pool?: Pool;
  /** Why the spec is not a valid pool, one line. */
  readonly problem?: string;
  /** The status as read. */
  readonly status: PoolStatus;
}

function shown(v: unknown): string {
  if (typeof v === "string") {
    return v.length > 64
      ? `${JSON.stringify(v.slice(0, 64))}…(${v.length} chars)`
      : JSON.stringify(v);
  }
  if (Array.isArray(v)) return `a list of ${v.length} entries`;
  return isObject(v) ? "a mapping" : String(v);
}

function text(v: unknown, max: number): string {
  return typeof v === "string" ? v.slice(0, max) : "";
}

function count(v: unknown): number | undefined {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

function decimal(v: unknown): string | undefined {
  return typeof v === "string" && /^[0-9]{1,40}$/.test(v) ? v : undefined;
}

function family(v: unknown): FamilyUsage | undefined {
  if (!isObject(v)) return undefined;
  const used = count(v.used);
  const free = decimal(v.free);
  return used !== undefined && free !== undefined ? { used, free } : undefined;
}

/** Reads the status, bounded; what cannot be read is left out (and so written again). */
export function decodePoolStatus(raw: unknown): PoolStatus {
  if (!isObject(raw)) return { conditions: [] };
  const conditions: PoolCondition[] = [];
  if (Array.isArray(raw.conditions)) {
    for (const c of raw.conditions.slice(0, MAX_CONDITIONS)) {
      if (!isObject(c)) continue;
      const status = c.status;
      if (status !== "True" && status !== "False" && status !== "Unknown") continue;
      const g = count(c.observedGeneration);
      conditions.push({
        type: text(c.type, 316),
        status,
        reason: text(c.reason, 1024),
        message: text(c.message, MAX_CONDITION_TEXT),
        lastTransitionTime: text(c.lastTransitionTime, 64),
        ...(g !== undefined ? { observedGeneration: g } : {}),
      });
    }
  }
  const out: Record<string, unknown> = { conditions };
  const g = count(raw.observedGeneration);
  if (g !== undefined) out.observedGeneration = g;
  const used = count(raw.used);
  if (used !== undefined) out.used = used;
  const free = decimal(raw.free);
  if (free !== undefined) out.free = free;
  for (const f of ["ipv4", "ipv6"] as const) {
    const u = family(raw[f]);
    if (u) out[f] = u;
  }
  return out as unknown as PoolStatus;
}

/**
 * Reads the spec into a pool named `name`.
 *
 * @throws {PoolConfigError} one line naming the field.
 */
function specPool(name: string, spec: unknown): Pool {
  const where = `AddressPool "${name}" field spec`;
  if (!LABEL.test(name)) {
    throw new PoolConfigError(
      `AddressPool ${shown(name)}: the name is not a DNS label (Services name pools by it)`,
    );
  }
  if (!isObject(spec)) throw new PoolConfigError(`${where}: missing or not a mapping`);
  const raw = spec.cidrs;
  if (!Array.isArray(raw) || raw.length === 0) {
    throw new PoolConfigError(`${where}.cidrs: must be a non-empty list of CIDRs`);
  }
  if (raw.length > MAX_CIDRS_PER_ADDRESS_POOL) {
    throw new PoolConfigError(`${where}.cidrs: more than ${MAX_CIDRS_PER_ADDRESS_POOL} entries`);
  }
  const cidrs: Cidr[] = raw.map((c, i) => poolCidr(c, `${where}.cidrs[${i}]`));
  let namespaces: string[] | undefined;
  if (spec.namespaces !== undefined && spec.namespaces !== null) {
    const ns = spec.namespaces;
    if (!Array.isArray(ns)) {
      throw new PoolConfigError(`${where}.namespaces: must be a list of namespace names`);
    }
    if (ns.length > MAX_NAMESPACES_PER_POOL) {
      throw new PoolConfigError(
        `${where}.namespaces: more than ${MAX_NAMESPACES_PER_POOL} entries`,
      );
    }
    namespaces = [];
    for (const [i, n] of ns.entries()) {
      if (typeof n !== "string" || !LABEL.test(n)) {
        throw new PoolConfigError(`${where}.namespaces[${i}]: ${shown(n)} is not a namespace name`);
      }
      if (!namespaces.includes(n)) namespaces.push(n);
    }
  }
  for (const key of ["autoAssign", "allowReserved"]) {
    const v = spec[key];
    if (v !== undefined && v !== null && typeof v !== "boolean") {
      throw new PoolConfigError(`${where}.${key}: ${shown(v)} is not true or false`);
    }
  }
  const pool: Pool = {
    name,
    cidrs,
    namespaces,
    autoAssign: spec.autoAssign !== false,
    ...(spec.allowReserved === true ? { allowReserved: true } : {}),
  };
  checkPools([pool], `AddressPool "${name}"`);
  return pool;
}

/**
 * Decodes an AddressPool. A spec that is not a valid pool gives a record
 * with `problem`.
 *
 * @throws {ShapeError} when the metadata is unreadable (no name, too long).
 */
export function decodeAddressPool(obj: unknown): AddressPoolRecord {
  if (!isObject(obj) || !isObject(obj.metadata)) {
    throw new ShapeError("Cannot read AddressPool: metadata is missing");
  }
  const meta = obj.metadata;
  const name = meta.name;
  if (typeof name !== "string" || name === "" || name.length > MAX_NAME_LENGTH) {
    throw new ShapeError("Cannot read AddressPool: metadata.name is missing or too long");
  }
  const base = {
    name,
    uid: text(meta.uid, 64),
    resourceVersion: text(meta.resourceVersion, 64),
    generation: count(meta.generation) ?? 0,
    createdAt: text(meta.creationTimestamp, 64),
    status: decodePoolStatus(obj.status),
  };
  try {
    return { ...base, pool: specPool(name, obj.spec) };
  } catch (err) {
    if (!(err instanceof PoolConfigError)) throw err;
    return { ...base, problem: err.message };
  }
}
