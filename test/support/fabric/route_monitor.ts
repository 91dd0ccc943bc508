/**
 * Watches a namespace's kernel FIB through `ip -o monitor route`, timestamping
 * each change in this process (`performance.now()`), and keeps the next hops
 * of every main-table route it has seen.
 *
 * @module
 */

import { ip, IpMonitor } from "../procs/netns.ts";

/** One line of `ip -o monitor route`, parsed. */
export interface RouteEvent {
  readonly deleted: boolean;
  /** `unicast`, `local`, `blackhole`, ... */
  readonly type: string;
  /** With its prefix length: `10.0.100.30/32`. */
  readonly dst: string;
  readonly table: string;
  /** Gateways of the route, sorted; empty for a directly connected route. */
  readonly via: readonly string[];
}

const TYPES = new Set([
  "unicast",
  "local",
  "broadcast",
  "multicast",
  "anycast",
  "blackhole",
  "unreachable",
  "prohibit",
  "throw",
  "nat",
]);

/** Parses one line of `ip -o monitor route`; undefined for lines that are no route. */
export function parseRouteLine(line: string): RouteEvent | undefined {
  const tokens = line.replaceAll("\\", " ").trim().split(/\s+/).filter((t) => t.length > 0);
  let deleted = false;
  if (tokens[0] === "Deleted") {
    deleted = true;
    tokens.shift();
  }
  let type = "unicast";
  if (TYPES.has(tokens[0])) type = tokens.shift()!;
  const raw = tokens.shift();
  if (!raw || !/^[0-9a-f.:]+(\/\d+)?$/i.test(raw)) return undefined;
  const dst = raw.includes("/") ? raw : `${raw}/${raw.includes(":") ? 128 : 32}`;
  let table = "main";
  const via: string[] = [];
  for (let i = 0; i < tokens.length - 1; i++) {
    if (tokens[i] === "table") table = tokens[i + 1];
    if (tokens[i] === "via") via.push(tokens[i + 1] === "inet" ? tokens[i + 2] : tokens[i + 1]);
  }
  return { deleted, type, dst, table, via: via.sort() };
}

/** A route change as seen, with the time it was read. */
export interface SeenRoute extends RouteEvent {
  readonly at: number;
}

/** Next hops of the unicast main-table routes, by destination. */
export type FibView = ReadonlyMap<string, readonly string[]>;

/** A running `ip -o -n NETNS monitor route`. */
export class RouteMonitor implements AsyncDisposable {
  readonly #monitor: IpMonitor;
  readonly #fib = new Map<string, readonly string[]>();
  readonly #waiters = new Set<() => void>();
  /** Every route change seen, in order. */
  readonly history: SeenRoute[] = [];

  private constructor(readonly netns: string) {
    this.#monitor = new IpMonitor(netns, "route", {
      oneline: true,
      onLine: (text, at) => this.#line(text, at),
    });
  }

  /**
   * Starts the monitor and returns once it demonstrably sees changes.
   *
   * @param timeoutMs @default 20000
   */
  static async start(netns: string, timeoutMs = 20_000): Promise<RouteMonitor> {
    const m = new RouteMonitor(netns);
    // Prove the netlink subscription is live before anyone relies on it: `ip monitor` may not
    // listen yet (slower on a loaded machine), so the probe comes and goes until it is seen.
    const probe = "192.0.2.255/32";
    const end = performance.now() + timeoutMs;
    while (performance.now() < end) {
      const from = m.history.length;
      await ip("-n", netns, "route", "replace", "blackhole", probe);
      const seen = await m.#waitEvent(from, (e) => e.dst === probe && !e.deleted, 200);
      await ip("-n", netns, "route", "del", "blackhole", probe);
      if (seen) return m;
    }
    await m.stop();
    throw new Error(`ip monitor route in ${netns} saw no change within ${timeoutMs} ms`);
  }

  get pid(): number {
    return this.#monitor.pid;
  }

  /** The current view of the FIB (unicast routes of the main table). */
  get fib(): FibView {
    return this.#fib;
  }

  #line(text: string, at: number): void {
    const e = parseRouteLine(text);
    if (!e) return;
    this.history.push({ ...e, at });
    if (e.table === "main" && e.type === "unicast") {
      if (e.deleted) this.#fib.delete(e.dst);
      else this.#fib.set(e.dst, e.via);
    }
    for (const w of [...this.#waiters]) w();
  }

  #waitEvent(from: number, pred: (e: SeenRoute) => boolean, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.history.slice(from).some(pred)) finish(true);
      };
      const finish = (v: boolean) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(v);
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }

  /**
   * Resolves with the time (`performance.now()`) of the change after which
   * `pred` holds for the FIB view, or rejects after `timeoutMs`. If it holds
   * already, resolves with the time of the last change seen.
   */
  waitFor(pred: (fib: FibView) => boolean, timeoutMs: number, what = "condition"): Promise<number> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!pred(this.#fib)) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(this.history.at(-1)?.at ?? performance.now());
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        const fib = [...this.#fib].map(([d, v]) => `${d} via ${v.join(",") || "-"}`).join("; ");
        reject(new Error(`${what}: not seen in ${this.netns} within ${timeoutMs} ms; FIB: ${fib}`));
      }, timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }

  /** Stops the monitor. */
  stop(): Promise<void> {
    return this.#monitor.stop();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}
