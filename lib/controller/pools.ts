/**
 * Address pools of the LoadBalancer controller: parsed and strictly validated
 * from the `pools.yaml` key of a ConfigMap and from `--pool CIDR` flags. Pure:
 * the caller hands in the text.
 *
 * ```yaml
 * pools:
 *   - name: public
 *     cidrs: [198.51.100.0/24, 2001:db8:100::/120]
 *     namespaces: [web, shop]   # omitted: every namespace may use the pool
 *     autoAssign: true          # default true; false: only by name or request
 *     allowReserved: false      # default false: network, broadcast and IPv6 all-zeros skipped
 * ```
 *
 * Rules: names are unique DNS labels; CIDRs canonical (`lib/base/cidr.ts`), at
 * least /16 for IPv4 and /48 for IPv6, none overlapping another (in the same
 * pool or another), none touching a special range (unspecified, loopback,
 * multicast, link-local, broadcast). Every error is one line naming the pool
 * and the field; a YAML syntax error gives only its line and column.
 *
 * @module
 */

import yaml from "js-yaml";
import { type Cidr, CidrSyntaxError, parseCidr, specialRangeOf } from "../base/cidr.ts";
import { familyBits } from "../base/ip.ts";

/** One pool of addresses. */
export interface Pool {
  readonly name: string;
  /** Canonical, non-overlapping networks, in the order given. */
  readonly cidrs: readonly Cidr[];
  /** Namespaces that may use the pool; absent means every namespace. */
  readonly namespaces?: readonly string[];
  /** Whether Services that neither name a pool nor ask for an address get addresses from it. */
  readonly autoAssign: boolean;
  /**
   * Whether the pool hands out the reserved addresses of its blocks: the
   * network and broadcast addresses of IPv4 blocks of /30 or larger, the
   * all-zeros (subnet-router anycast) address of IPv6 blocks of /126 or larger.
   * @default false
   */
  readonly allowReserved?: boolean;
}

/** The name of the pool made from `--pool` flags, open to every namespace. */
export const FLAG_POOL_NAME = "default";

/** Raised for a pools configuration that is not valid; the message is one line. */
export class PoolConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PoolConfigError";
  }
}

/** Largest `pools.yaml` accepted (a ConfigMap holds at most 1 MiB). */
export const MAX_POOLS_TEXT = 1 << 20;
/** Most pools accepted. */
export const MAX_POOLS = 256;
/** Most CIDRs accepted in one pool. */
export const MAX_CIDRS_PER_POOL = 64;
/** Most namespaces accepted in one pool's list. */
export const MAX_NAMESPACES_PER_POOL = 1024;
/** Shortest prefix accepted per family (a /16 holds 65,536 IPv4 addresses). */
export const MIN_PREFIX: Readonly<Record<4 | 6, number>> = { 4: 16, 6: 48 };

const NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const NAMESPACE = NAME;
const POOL_KEYS = new Set(["name", "cidrs", "namespaces", "autoAssign", "allowReserved"]);

/** The most characters of a value an error message shows. */
const SHOWN = 64;

/**
 * A value for an error message, bounded before it is serialized: a string or
 * number as JSON (a string cut to 64 characters first), a list or mapping by
 * its kind and size only, so that no hostile value (a huge string, a deep or
 * aliased structure) costs more than its first characters to show.
 */
function show(v: unknown): string {
  if (typeof v === "string") {
    const cut = v.length > SHOWN;
    return `${JSON.stringify(cut ? v.slice(0, SHOWN) : v)}${cut ? `…(${v.length} chars)` : ""}`;
  }
  if (Array.isArray(v)) return `a list of ${v.length} entries`;
  if (typeof v === "object" && v !== null) return "a mapping";
  return String(v);
}

/**
 * Refuses a document in which one node is reached twice: YAML anchors and
 * aliases (`&a`, `*a`) let a small text stand for an exponentially large
 * value, and nothing in a pools file needs them. One walk over the distinct
 * nodes, stopped at the first repeat.
 *
 * @throws {PoolConfigError} when the document uses an alias.
 */
function refuseAliases(doc: unknown): void {
  const seen = new Set<object>();
  const stack: unknown[] = [doc];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v !== "object" || v === null) continue;
    if (seen.has(v)) {
      throw new PoolConfigError("pools.yaml: anchors and aliases (&name, *name) are not allowed");
    }
    seen.add(v);
    // One push per child: spreading a list of 100,000 entries into push() overflows the stack.
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push(child);
  }
}

function lastAddress(c: Cidr): bigint {
  return c.base + (1n << BigInt(familyBits(c.family) - c.prefix)) - 1n;
}

/**
 * Validates one CIDR text of a pool (`where` names it in the error). With the prefix bounds above, a block
 * touches a special range exactly when its first or last address lies in one
 * (every special range is either larger than the smallest allowed block, so it
 * would contain the first address, or a single address at an end of the space).
 *
 * @throws {PoolConfigError} one line naming `where` and the value.
 */
export function poolCidr(text: unknown, where: string): Cidr {
  if (typeof text !== "string") {
    throw new PoolConfigError(`${where}: ${show(text)} is not a string`);
  }
  let cidr: Cidr;
  try {
    cidr = parseCidr(text);
  } catch (err) {
    if (!(err instanceof CidrSyntaxError)) throw err;
    throw new PoolConfigError(`${where}: ${show(text)} is not a CIDR: ${err.detail}`, {
      cause: err,
    });
  }
  if (cidr.prefix < MIN_PREFIX[cidr.family]) {
    throw new PoolConfigError(
      `${where}: ${show(text)} is too large (at most /${
        MIN_PREFIX[cidr.family]
      } for IPv${cidr.family})`,
    );
  }
  for (const value of [cidr.base, lastAddress(cidr)]) {
    const special = specialRangeOf({ family: cidr.family, value, text: "" });
    if (special) {
      throw new PoolConfigError(
        `${where}: ${show(text)} overlaps the ${special.replace("_", "-")} range`,
      );
    }
  }
  return cidr;
}

/** Validates one entry of `pools`. */
function poolEntry(raw: unknown, index: number): Pool {
  const at = `pools[${index}]`;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new PoolConfigError(`pools.yaml: ${at} is not a mapping`);
  }
  const entry = raw as Record<string, unknown>;
  const name = entry.name;
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new PoolConfigError(
      `pools.yaml: ${at} field name: ${show(name)} is not a pool name (a DNS label)`,
    );
  }
  const where = `pools.yaml: pool "${name}" (${at}) field`;
  for (const key of Object.keys(entry)) {
    if (!POOL_KEYS.has(key)) {
      throw new PoolConfigError(
        `${where} ${
          show(key)
        }: unknown field (known: name, cidrs, namespaces, autoAssign, allowReserved)`,
      );
    }
  }
  const cidrsRaw = entry.cidrs;
  if (!Array.isArray(cidrsRaw) || cidrsRaw.length === 0) {
    throw new PoolConfigError(`${where} cidrs: must be a non-empty list of CIDRs`);
  }
  if (cidrsRaw.length > MAX_CIDRS_PER_POOL) {
    throw new PoolConfigError(`${where} cidrs: more than ${MAX_CIDRS_PER_POOL} entries`);
  }
  const cidrs = cidrsRaw.map((c, i) => poolCidr(c, `${where} cidrs[${i}]`));
  let namespaces: string[] | undefined;
  if (entry.namespaces !== undefined && entry.namespaces !== null) {
    if (!Array.isArray(entry.namespaces)) {
      throw new PoolConfigError(`${where} namespaces: must be a list of namespace names`);
    }
    if (entry.namespaces.length > MAX_NAMESPACES_PER_POOL) {
      throw new PoolConfigError(
        `${where} namespaces: more than ${MAX_NAMESPACES_PER_POOL} entries`,
      );
    }
    namespaces = [];
    for (const [i, ns] of entry.namespaces.entries()) {
      if (typeof ns !== "string" || !NAMESPACE.test(ns)) {
        throw new PoolConfigError(
          `${where} namespaces[${i}]: ${show(ns)} is not a namespace name`,
        );
      }
      if (!namespaces.includes(ns)) namespaces.push(ns);
    }
  }
  const auto = entry.autoAssign;
  if (auto !== undefined && typeof auto !== "boolean") {
    throw new PoolConfigError(`${where} autoAssign: ${show(auto)} is not true or false`);
  }
  const reserved = entry.allowReserved;
  if (reserved !== undefined && typeof reserved !== "boolean") {
    throw new PoolConfigError(`${where} allowReserved: ${show(reserved)} is not true or false`);
  }
  return {
    name,
    cidrs,
    namespaces,
    autoAssign: auto ?? true,
    ...(reserved ? { allowReserved: true } : {}),
  };
}

/**
 * Checks a whole set of pools: unique names, no two CIDRs overlapping.
 * O(n log n) in the number of CIDRs.
 *
 * @throws {PoolConfigError} naming the pools and CIDRs in conflict.
 */
export function checkPools(pools: readonly Pool[], source = "pools"): void {
  const names = new Set<string>();
  for (const p of pools) {
    if (names.has(p.name)) {
      throw new PoolConfigError(`${source}: pool "${p.name}" field name: the name is used twice`);
    }
    names.add(p.name);
  }
  const blocks = pools.flatMap((p) =>
    p.cidrs.map((c) => ({ pool: p.name, cidr: c, last: lastAddress(c) }))
  );
  blocks.sort((a, b) =>
    a.cidr.family - b.cidr.family ||
    (a.cidr.base < b.cidr.base ? -1 : a.cidr.base > b.cidr.base ? 1 : 0)
  );
  for (let i = 1, reach = blocks[0]; i < blocks.length; i++) {
    const b = blocks[i];
    if (b.cidr.family === reach.cidr.family && b.cidr.base <= reach.last) {
      throw new PoolConfigError(
        `${source}: pool "${b.pool}" field cidrs: ${b.cidr.text} overlaps ${reach.cidr.text} of pool "${reach.pool}"`,
      );
    }
    if (b.cidr.family !== reach.cidr.family || b.last > reach.last) reach = b;
  }
}

/**
 * Parses and validates the `pools.yaml` key of the pools ConfigMap.
 * An empty document or `pools: []` gives no pools.
 *
 * @throws {PoolConfigError} one line naming the pool and the field.
 */
export function parsePoolsYaml(text: string): Pool[] {
  try {
    return parseWithin(text);
  } catch (err) {
    // Whatever the document, reading it refuses it; it never escapes as another error.
    if (err instanceof RangeError) {
      throw new PoolConfigError("pools.yaml: nested too deeply or too large", { cause: err });
    }
    throw err;
  }
}

function parseWithin(text: string): Pool[] {
  if (text.length > MAX_POOLS_TEXT) {
    throw new PoolConfigError(`pools.yaml: larger than ${MAX_POOLS_TEXT} bytes`);
  }
  let doc: unknown;
  try {
    doc = yaml.load(text, { schema: yaml.JSON_SCHEMA, json: false });
  } catch (err) {
    if (err instanceof yaml.YAMLException) {
      const m = err.mark;
      const where = m ? ` at line ${m.line + 1}, column ${m.column + 1}` : "";
      throw new PoolConfigError(`pools.yaml: not valid YAML${where}: ${err.reason}`, {
        cause: err,
      });
    }
    if (err instanceof RangeError) {
      throw new PoolConfigError("pools.yaml: nested too deeply", { cause: err });
    }
    throw err;
  }
  refuseAliases(doc);
  if (doc === undefined || doc === null) return [];
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw new PoolConfigError("pools.yaml: the document must be a mapping with a key pools");
  }
  for (const key of Object.keys(doc)) {
    if (key !== "pools") {
      throw new PoolConfigError(`pools.yaml: field ${show(key)}: unknown field (known: pools)`);
    }
  }
  const raw = (doc as Record<string, unknown>).pools;
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new PoolConfigError("pools.yaml: field pools: must be a list");
  if (raw.length > MAX_POOLS) {
    throw new PoolConfigError(`pools.yaml: field pools: more than ${MAX_POOLS} pools`);
  }
  const pools = raw.map(poolEntry);
  checkPools(pools);
  return pools;
}

/**
 * Makes the pool of the `--pool` flags (repeatable, comma-separated): one
 * pool named {@linkcode FLAG_POOL_NAME}, open to every namespace, with
 * `autoAssign`. No flags give no pool.
 *
 * @throws {PoolConfigError} naming `--pool` and the value.
 */
export function flagPool(values: readonly string[]): Pool | undefined {
  const items = values.flatMap((v) => v.split(",")).map((v) => v.trim()).filter((v) => v);
  if (items.length === 0) return undefined;
  if (items.length > MAX_CIDRS_PER_POOL) {
    throw new PoolConfigError(`--pool: more than ${MAX_CIDRS_PER_POOL} CIDRs`);
  }
  const pool = {
    name: FLAG_POOL_NAME,
    cidrs: items.map((t) => poolCidr(t, "--pool")),
    autoAssign: true,
  };
  checkPools([pool], "--pool");
  return pool;
}

/**
 * The pools in force: those of the ConfigMap in their order, then the flag
 * pool (so an operator's ordered pools come first for auto-assignment).
 *
 * @throws {PoolConfigError} when a ConfigMap pool is named
 *   {@linkcode FLAG_POOL_NAME} or overlaps the flag pool.
 */
export function mergePools(fromFlags: Pool | undefined, fromConfig: readonly Pool[]): Pool[] {
  const clash = fromFlags && fromConfig.findIndex((p) => p.name === FLAG_POOL_NAME);
  if (clash !== undefined && clash >= 0) {
    throw new PoolConfigError(
      `pools.yaml: pool "${FLAG_POOL_NAME}" (pools[${clash}]) field name: "${FLAG_POOL_NAME}" is the pool of the --pool flags; rename it`,
    );
  }
  const all = fromFlags ? [...fromConfig, fromFlags] : [...fromConfig];
  checkPools(all);
  return all;
}
