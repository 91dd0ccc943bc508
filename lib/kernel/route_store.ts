/**
 * Route mode's {@linkcode AddressStore}: each Service address is one kernel
 * route, `unreachable A/32` (`/128`) tagged with kube-gw's protocol number, in
 * one table (main unless told). The router holds no address, so none of its
 * own listeners answers on a Service address; kube-proxy's DNAT runs before
 * routing, so Service traffic still reaches the pods; a packet for a port no
 * Service serves gets "host unreachable" and is never forwarded (a `dev lo`
 * route would send it round `lo` until its TTL ran out). The measurements are
 * in docs/router.md.
 *
 * Ownership is by protocol number: every route of kube-gw's protocol in the
 * table is kube-gw's (read back with `owned`), and routes of other protocols
 * are never touched.
 *
 * The router's own connections to a Service address need a route that is not
 * `unreachable`: "local access", one rule (`iif lo lookup N`, only the
 * router's own packets) and one `NET dev lo` route per managed network in
 * table N, N being the protocol number. The store puts them in place with the
 * first plan it applies after a read found them missing (an empty plan too:
 * `missing` tells the resync that a read found them gone), and never removes
 * them.
 *
 * Reads are one `ip -json -N -batch` per family; a plan is one `ip -batch`,
 * or, from {@linkcode SPLIT_MIN_LINES} lines (a start with 100,000 routes),
 * a few side by side: the kernel takes route inserts from several processes
 * at once, and two halve the time of one (docs/benchmarks.md).
 *
 * @module
 */

import { type Cidr, hostPrefix } from "../base/cidr.ts";
import { forEachSlice } from "../base/clock.ts";
import { systemClock } from "../base/system_clock.ts";
import { familyOf, normalizeTrustedIp } from "../base/ip.ts";
import {
  type AddressStore,
  type InterfaceAddress,
  InterruptedError,
  type Plan,
} from "./address_store.ts";
import { IpCommand } from "./ip_command.ts";
import type { Spawn } from "./spawn.ts";

/** The route type each address is held as. */
export const ROUTE_TYPE = "unreachable";

/** {@linkcode ROUTE_TYPE}'s number (RTN_UNREACHABLE), as `ip -N` prints it. */
const ROUTE_TYPE_NUMBER = "7";

/** Whether a route's `type` as `ip -json` prints it (by name, or by number with `-N`) is `name`. */
function isType(type: unknown, name: "unicast" | typeof ROUTE_TYPE): boolean {
  if (name === "unicast") return type === undefined || type === "unicast" || type === "1";
  return type === ROUTE_TYPE || type === ROUTE_TYPE_NUMBER;
}

/** The preference of the local-access rule: before main (32766), after most rules set by hand. */
export const LOCAL_ACCESS_PREF = 32000;

/** Where and how the store keeps its routes. */
export interface RouteSpec {
  /** kube-gw's protocol number (`--route-protocol`). */
  readonly protocol: number;
  /** The table (`--route-table`): `main` or a number. */
  readonly table: string;
}

/** One route as `ip -json route show` prints it (the fields read). */
interface RouteJson {
  readonly type?: string;
  readonly dst?: string;
  readonly dev?: string;
}

function parseJsonArrays(text: string): unknown[][] {
  // `ip -json -batch` prints one array per command, each on its own line.
  return text.split("\n").filter((l) => l.trim() !== "").map((line) => {
    const value: unknown = JSON.parse(line);
    if (!Array.isArray(value)) throw new SyntaxError("Cannot parse ip -json output: not an array");
    return value;
  });
}

/** An IPv4 address in canonical form (no leading zeros): `ip`'s usual output, taken as it is. */
const CANONICAL_V4 =
  /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** A route's destination as `ip` prints it (`A`, `A/N` or `default`), parsed; undefined if foreign. */
function parseDst(dst: string, family: 4 | 6): { local: string; prefixlen: number } | undefined {
  if (dst === "default") return { local: family === 4 ? "0.0.0.0" : "::", prefixlen: 0 };
  // The common case, 100,000 times at a read: a host route as ip prints it.
  if (family === 4 && CANONICAL_V4.test(dst)) return { local: dst, prefixlen: 32 };
  const cut = dst.indexOf("/");
  const addr = cut < 0 ? dst : dst.slice(0, cut);
  const canonical = normalizeTrustedIp(addr);
  if (!canonical || canonical.family !== family) return undefined;
  const prefixlen = cut < 0 ? hostPrefix(family) : Number(dst.slice(cut + 1));
  if (!Number.isInteger(prefixlen) || prefixlen < 0 || prefixlen > hostPrefix(family)) {
    return undefined;
  }
  return { local: canonical.text, prefixlen };
}

/**
 * Parses the routes of `ip -json route show table T proto P` for one family:
 * every one is kube-gw's (`owned`); one of another type than
 * {@linkcode ROUTE_TYPE} is `misshapen`. Entries without a destination ip
 * can read are skipped.
 *
 * @throws {SyntaxError} when the value is not what `ip` prints.
 */
export function parseRoutes(routes: readonly unknown[], family: 4 | 6): InterfaceAddress[] {
  const out: InterfaceAddress[] = [];
  for (const r of routes) {
    if (typeof r !== "object" || r === null) throw new SyntaxError("a route is not an object");
    const { type, dst } = r as RouteJson;
    if (typeof dst !== "string") continue;
    const parsed = parseDst(dst, family);
    if (!parsed) continue;
    const base: InterfaceAddress = { family, ...parsed, owned: true };
    out.push(isType(type, ROUTE_TYPE) ? base : { ...base, misshapen: true });
  }
  return out;
}

/** What a read found of local access, for one family. */
export interface LocalAccessState {
  /** The rule `iif lo lookup N proto P` exists. */
  readonly rule: boolean;
  /** The `NET dev lo` routes of protocol P in table N (canonical `A/N` texts). */
  readonly routes: ReadonlySet<string>;
}

/** Parses `ip -json -N rule show`'s and table N's output into a {@linkcode LocalAccessState}. */
export function parseLocalAccess(
  rules: readonly unknown[],
  routes: readonly unknown[],
  spec: RouteSpec,
  family: 4 | 6,
): LocalAccessState {
  const n = String(spec.protocol);
  const rule = rules.some((r) => {
    const { iif, table, protocol } = (r ?? {}) as Record<string, unknown>;
    return iif === "lo" && String(table) === n && String(protocol) === n;
  });
  const held = new Set<string>();
  for (const r of routes) {
    const { dst, dev, type } = (r ?? {}) as RouteJson;
    if (typeof dst !== "string" || dev !== "lo" || !isType(type, "unicast")) continue;
    const parsed = parseDst(dst, family);
    if (parsed) held.add(`${parsed.local}/${parsed.prefixlen}`);
  }
  return { rule, routes: held };
}

/**
 * The `ip -batch` lines for a plan: local-access routes first, then adds,
 * then removals. A removal is an address (its host route) or, for a route
 * kube-gw's protocol holds outside the managed networks, `A/N`. Every line
 * names the table and the protocol, so a route of another protocol is never
 * replaced or deleted.
 */
export function routeBatchLines(
  plan: Plan,
  spec: RouteSpec,
  localAccess: readonly string[] = [],
): string[] {
  const where = `table ${spec.table} proto ${spec.protocol}`;
  const prefix = (a: string) => a.includes("/") ? a : `${a}/${hostPrefix(familyOf(a))}`;
  return [
    ...localAccess.map((n) =>
      `route replace ${n} dev lo table ${spec.protocol} proto ${spec.protocol}\n`
    ),
    ...plan.add.map((a) => `route replace ${ROUTE_TYPE} ${prefix(a)} ${where}\n`),
    ...plan.remove.map((a) => `route del ${prefix(a)} ${where}\n`),
  ];
}

/** {@linkcode routeBatchLines} as one `ip -batch` script. */
export function routeBatchScript(
  plan: Plan,
  spec: RouteSpec,
  localAccess: readonly string[] = [],
): string {
  return routeBatchLines(plan, spec, localAccess).join("");
}

/** A plan of at least this many lines is split over parallel `ip -batch` runs. */
export const SPLIT_MIN_LINES = 4096;

/**
 * The `ip -batch` scripts a plan's `lines` run as: one below
 * {@linkcode SPLIT_MIN_LINES}, else `batches` (1 if not a finite number),
 * each a contiguous run of lines. The lines of a plan name distinct routes,
 * so their order across scripts does not matter; the store runs missing
 * local access before them.
 */
export function splitBatch(lines: readonly string[], batches: number): string[] {
  const many = Number.isFinite(batches) ? Math.max(1, Math.floor(batches)) : 1;
  const n = lines.length < SPLIT_MIN_LINES ? 1 : many;
  const size = Math.ceil(lines.length / n);
  const out: string[] = [];
  for (let i = 0; i < lines.length; i += size) out.push(lines.slice(i, i + size).join(""));
  return out;
}

/**
 * How many `ip -batch` a large plan runs side by side: the CPUs, at most 4
 * (on 2 CPUs, 2 took 100,000 routes in 0.8 s where 1 took 1.35 s; 4 gained
 * little more).
 */
export function defaultBatches(): number {
  return Math.min(4, Math.max(1, navigator.hardwareConcurrency || 1));
}

/** Options for {@linkcode RouteStore}. */
export interface RouteStoreOptions extends RouteSpec {
  /** The managed networks: local access is kept for each. */
  readonly networks: readonly Cidr[];
  /** A network namespace: every command runs as `ip -n NAME`. */
  readonly netns?: string;
  /** The `ip` program; `ip` from PATH by default. */
  readonly binary?: string;
  readonly spawn?: Spawn;
  /** How many `ip -batch` a large plan runs side by side. @default defaultBatches() */
  readonly batches?: number;
}

/** {@linkcode AddressStore} keeping one route of kube-gw's protocol per address. */
export class RouteStore implements AddressStore {
  readonly #spec: RouteSpec;
  readonly #networks: readonly Cidr[];
  readonly #ip: IpCommand;
  readonly #batches: number;
  /** Local-access pieces the last read found missing; everything before the first read. */
  #missing: { rules: (4 | 6)[]; routes: string[] } | undefined;
  /** Reads started, and the number of the read `#missing` is from: an older read never overwrites it. */
  #reads = 0;
  #missingFrom = 0;

  constructor(options: RouteStoreOptions) {
    this.#spec = { protocol: options.protocol, table: options.table };
    this.#networks = options.networks;
    this.#ip = new IpCommand(options);
    this.#batches = options.batches ?? defaultBatches();
  }

  /** How many processes this store has started. */
  get spawned(): number {
    return this.#ip.spawned;
  }

  /** How many `ip` processes run now. */
  get running(): number {
    return this.#ip.running;
  }

  /** Resolves once no `ip` process runs. */
  idle(): Promise<void> {
    return this.#ip.idle();
  }

  /** Every route of kube-gw's protocol in the table, both families; notes missing local access. */
  async read(signal?: AbortSignal): Promise<InterfaceAddress[]> {
    const seq = ++this.#reads;
    const out: InterfaceAddress[] = [];
    const missing = { rules: [] as (4 | 6)[], routes: [] as string[] };
    const p = this.#spec.protocol;
    for (const family of [4, 6] as const) {
      const script = `route show table ${this.#spec.table} proto ${p}\n` +
        `rule show\nroute show table ${p} proto ${p}\n`;
      const [routes, rules, local] = await this.#ip.read(
        ["-json", "-N", `-${family}`, "-batch", "-"],
        (text) => {
          const arrays = parseJsonArrays(text);
          if (arrays.length !== 3) throw new SyntaxError(`expected 3 arrays, got ${arrays.length}`);
          return arrays;
        },
        { signal, stdin: script },
      );
      // A slice at a time: 100,000 routes must not hold up the events meanwhile.
      await forEachSlice(systemClock, routes, (slice) => {
        for (const r of parseRoutes(slice, family)) out.push(r);
      });
      const nets = this.#networks.filter((n) => n.family === family);
      if (nets.length === 0) continue;
      const state = parseLocalAccess(rules, local, this.#spec, family);
      if (!state.rule) missing.rules.push(family);
      for (const n of nets) if (!state.routes.has(n.text)) missing.routes.push(n.text);
    }
    if (seq > this.#missingFrom) {
      this.#missing = missing;
      this.#missingFrom = seq;
    }
    return out;
  }

  /** The local-access pieces the last read found missing, in words; undefined when none. */
  missing(): string | undefined {
    const m = this.#missing;
    if (!m || (m.rules.length === 0 && m.routes.length === 0)) return undefined;
    const p = this.#spec.protocol;
    const parts = [
      ...m.rules.map((f) => `the rule iif lo lookup ${p} (IPv${f})`),
      ...m.routes.map((n) => `the route ${n} dev lo in table ${p}`),
    ];
    return `local access: ${parts.join(", ")}`;
  }

  /**
   * Applies a plan in one `ip -batch` (a large one in several side by side,
   * after one of the local access the last read found missing, if any). When
   * a run fails, the others still finish before a failure is thrown, one of
   * `ip` before an {@linkcode InterruptedError}.
   */
  async apply(plan: Plan, signal?: AbortSignal): Promise<void> {
    const read = this.#missing;
    // An empty plan only puts back local access a read found missing.
    if (plan.add.length === 0 && plan.remove.length === 0 && this.missing() === undefined) return;
    const missing = read ?? {
      rules: [...new Set(this.#networks.map((n) => n.family))],
      routes: this.#networks.map((n) => n.text),
    };
    const p = String(this.#spec.protocol);
    for (const family of missing.rules) {
      await this.#ip.run(
        [
          `-${family}`,
          "rule",
          "add",
          "pref",
          String(LOCAL_ACCESS_PREF),
          "iif",
          "lo",
          "lookup",
          p,
          "proto",
          p,
        ],
        { signal },
      ).catch((err) => {
        // Another run added it since the read: what matters is that it is there.
        if (!/File exists/.test((err as Error).message)) throw err;
      });
    }
    const batch = (stdin: string) => this.#ip.run(["-force", "-batch", "-"], { stdin, signal });
    const local = routeBatchScript({ add: [], remove: [] }, this.#spec, missing.routes);
    const parts = splitBatch(routeBatchLines(plan, this.#spec), this.#batches);
    // Local access goes in before any route: an address routed as unreachable without it would
    // refuse the router's own connections. One batch holds both; parts run after it.
    if (parts.length <= 1) parts[0] = local + (parts[0] ?? "");
    else if (local !== "") await batch(local);
    const runs = await Promise.allSettled(parts.filter((script) => script !== "").map(batch));
    const failures = runs.flatMap((r) => r.status === "rejected" ? [r.reason] : []);
    // A failure of ip says more than a part stopped because the agent is stopping.
    if (failures.length > 0) {
      throw failures.find((e) => !(e instanceof InterruptedError)) ?? failures[0];
    }
    // A read that ran beside this plan (the resync's check) has the newer word.
    if (this.#missing === read) this.#missing = { rules: [], routes: [] };
  }
}
