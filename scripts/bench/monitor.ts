/**
 * Watches a namespace's address changes with `ip -n NS monitor address` (or,
 * for route mode, its route changes with `ip monitor route`) and timestamps
 * each one when this process reads it (`performance.now()`, the
 * clock the fake API server stamps its watch events with).
 *
 * @module
 */

import { IpMonitor } from "../../test/support/procs/netns.ts";

/** One address change as the kernel reported it. */
export interface AddressEvent {
  readonly kind: "add" | "del";
  readonly address: string;
  /** `performance.now()` when the line was read. */
  readonly at: number;
}

const LINE = /^(Deleted )?\d+: \S+\s+inet6? ([0-9a-f.:]+)\/\d+ /;

/** Parses one line of `ip monitor address` output; undefined for other lines. */
export function parseMonitorLine(line: string): Omit<AddressEvent, "at"> | undefined {
  const m = LINE.exec(line);
  if (!m) return undefined;
  return { kind: m[1] ? "del" : "add", address: m[2] };
}

const ROUTE_LINE =
  /^(Deleted )?(?:unreachable |blackhole |prohibit |local )?([0-9a-f.:]+)(\/\d+)? /;

/**
 * Parses one line of `ip monitor route` output into the change of a host
 * route (`A` or `A/32`, `/128`); undefined for other lines and prefixes.
 */
export function parseRouteMonitorLine(line: string): Omit<AddressEvent, "at"> | undefined {
  const m = ROUTE_LINE.exec(line);
  if (!m || (m[3] && m[3] !== "/32" && m[3] !== "/128")) return undefined;
  return { kind: m[1] ? "del" : "add", address: m[2] };
}

/** What a monitor watches: addresses (address mode) or routes (route mode). */
export type Watched = "address" | "route";

interface Waiter {
  readonly kind: "add" | "del";
  readonly after: number;
  readonly resolve: (at: number) => void;
}

interface SetWaiter {
  readonly kind: "add" | "del";
  readonly pending: Set<string>;
  last: number;
  readonly resolve: (at: number) => void;
}

const decoder = new TextDecoder();

/** A running `ip monitor address` for one namespace. */
export class AddressMonitor implements AsyncDisposable {
  readonly #monitor: IpMonitor;
  /** The latest time each address was seen added / deleted. */
  readonly #lastAdd = new Map<string, number>();
  readonly #lastDel = new Map<string, number>();
  readonly #waiters = new Map<string, Waiter[]>();
  readonly #setWaiters = new Set<SetWaiter>();
  /** Number of address events read. */
  events = 0;
  /** When the last event was read (`performance.now()`), or 0. */
  lastAt = 0;

  private constructor(readonly netns: string, watched: Watched) {
    const parse = watched === "route" ? parseRouteMonitorLine : parseMonitorLine;
    this.#monitor = new IpMonitor(netns, watched, {
      onLine: (text: string, at: number) => {
        const ev = parse(text);
        if (ev) this.#seen({ ...ev, at });
      },
    });
  }

  /**
   * Starts monitoring and returns once the monitor provably sees changes: a
   * marker address outside every managed network is added and removed.
   */
  static async start(
    netns: string,
    marker = "198.51.100.254",
    watched: Watched = "address",
  ): Promise<AddressMonitor> {
    const mon = new AddressMonitor(netns, watched);
    const [add, del] = watched === "route"
      ? [["route", "replace", "blackhole", `${marker}/32`], ["route", "del", `${marker}/32`]]
      : [["address", "replace", `${marker}/32`, "dev", "lo"], [
        "address",
        "del",
        `${marker}/32`,
        "dev",
        "lo",
      ]];
    const deadline = performance.now() + 5000;
    while (performance.now() < deadline) {
      const t = performance.now();
      await ipQuiet("-n", netns, ...add);
      const seen = await Promise.race([
        mon.waitFor(marker, "add", t),
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 200)),
      ]);
      await ipQuiet("-n", netns, ...del);
      if (seen !== undefined) {
        await mon.waitFor(marker, "del", t);
        return mon;
      }
    }
    await mon.stop();
    throw new Error(`ip monitor in ${netns} reported nothing within 5s: ${mon.stderr}`);
  }

  /** What `ip monitor` wrote to stderr (e.g. a netlink overrun). */
  get stderr(): string {
    return this.#monitor.stderr;
  }

  #seen(ev: AddressEvent): void {
    this.events++;
    this.lastAt = ev.at;
    (ev.kind === "add" ? this.#lastAdd : this.#lastDel).set(ev.address, ev.at);
    const key = `${ev.kind} ${ev.address}`;
    const ws = this.#waiters.get(key);
    if (ws) {
      const keep = ws.filter((w) => {
        if (ev.at < w.after) return true;
        w.resolve(ev.at);
        return false;
      });
      if (keep.length > 0) this.#waiters.set(key, keep);
      else this.#waiters.delete(key);
    }
    for (const sw of this.#setWaiters) {
      if (sw.kind !== ev.kind || !sw.pending.delete(ev.address)) continue;
      sw.last = ev.at;
      if (sw.pending.size === 0) {
        this.#setWaiters.delete(sw);
        sw.resolve(sw.last);
      }
    }
  }

  /** Resolves with the read time of the first `kind` change of `address` at or after `after`. */
  waitFor(address: string, kind: "add" | "del", after: number): Promise<number> {
    const last = (kind === "add" ? this.#lastAdd : this.#lastDel).get(address);
    if (last !== undefined && last >= after) return Promise.resolve(last);
    return new Promise((resolve) => {
      const key = `${kind} ${address}`;
      const list = this.#waiters.get(key) ?? [];
      list.push({ kind, after, resolve });
      this.#waiters.set(key, list);
    });
  }

  /**
   * Resolves with the read time of the last of `addresses` to change (`kind`)
   * from now on; `progress` reports how many are still pending.
   */
  waitForAll(addresses: Iterable<string>, kind: "add" | "del"): {
    done: Promise<number>;
    pending: () => number;
  } {
    const pending = new Set(addresses);
    let resolve!: (at: number) => void;
    const done = new Promise<number>((r) => resolve = r);
    const sw: SetWaiter = { kind, pending, last: performance.now(), resolve };
    if (pending.size === 0) resolve(sw.last);
    else this.#setWaiters.add(sw);
    return { done, pending: () => pending.size };
  }

  /** Stops the monitor. */
  stop(): Promise<void> {
    return this.#monitor.stop();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

async function ipQuiet(...args: string[]): Promise<void> {
  const out = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) throw new Error(`ip ${args.join(" ")}: ${decoder.decode(out.stderr).trim()}`);
}
