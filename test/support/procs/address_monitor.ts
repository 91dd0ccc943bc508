/**
 * Watches a namespace's addresses through `ip -o monitor address`: every
 * change, in the kernel's order, with the time it was read. A marker address
 * proves the monitor listens and that every earlier change has been read, so
 * a test can assert that something did not happen without sampling.
 *
 * @module
 */

import { ip, IpMonitor } from "./netns.ts";

/** One line of `ip -o monitor address`, parsed. */
export interface AddressEvent {
  /** RTM_DELADDR; otherwise RTM_NEWADDR (an add, or a change of an address already there). */
  readonly deleted: boolean;
  readonly dev: string;
  /** Without its prefix length: `10.0.100.30`. */
  readonly address: string;
  readonly prefixLength: number;
}

/** Parses one line of `ip -o monitor address`; undefined for lines that are no address. */
export function parseAddressLine(line: string): AddressEvent | undefined {
  const m = /^(Deleted )?\d+:\s+(\S+?)(?:@\S+)?\s+inet6?\s+([0-9a-f.:]+)\/(\d+)/i.exec(line);
  if (!m) return undefined;
  return { deleted: m[1] !== undefined, dev: m[2], address: m[3], prefixLength: Number(m[4]) };
}

/** An address change as seen, with the time (`performance.now()`) it was read. */
export interface SeenAddress extends AddressEvent {
  readonly at: number;
}

/**
 * The marker: TEST-NET-1, outside every network a test manages or a router
 * announces, so neither the agent nor bgpd acts on it.
 */
const MARKER = { address: "192.0.2.254", dev: "lo" } as const;

/** A running `ip -o -n NETNS monitor address`. */
export class AddressMonitor implements AsyncDisposable {
  readonly #monitor: IpMonitor;
  readonly #waiters = new Set<() => void>();
  #markersDeleted = 0;
  /** Every address change seen, in order, without the marker's. */
  readonly history: SeenAddress[] = [];

  private constructor(readonly netns: string) {
    this.#monitor = new IpMonitor(netns, "address", {
      oneline: true,
      onLine: (text, at) => this.#line(text, at),
    });
  }

  /**
   * Starts the monitor and returns once it demonstrably sees changes.
   *
   * @param timeoutMs @default 20000
   */
  static async start(netns: string, timeoutMs = 20_000): Promise<AddressMonitor> {
    const m = new AddressMonitor(netns);
    const end = performance.now() + timeoutMs;
    // `ip monitor` may not listen yet: the marker goes in and out until it is seen.
    while (!await m.#markOnce(200)) {
      if (performance.now() > end) {
        await m.stop();
        throw new Error(`ip monitor address in ${netns} saw no change within ${timeoutMs} ms`);
      }
    }
    return m;
  }

  #line(text: string, at: number): void {
    const e = parseAddressLine(text);
    if (!e) return;
    if (e.address === MARKER.address && e.dev === MARKER.dev) {
      if (e.deleted) this.#markersDeleted++;
    } else {
      this.history.push({ ...e, at });
    }
    for (const w of [...this.#waiters]) w();
  }

  /** Adds and deletes the marker; whether its deletion was seen within `timeoutMs`. */
  async #markOnce(timeoutMs: number): Promise<boolean> {
    const from = this.#markersDeleted;
    const cidr = `${MARKER.address}/32`;
    await ip("-n", this.netns, "address", "replace", cidr, "dev", MARKER.dev);
    await ip("-n", this.netns, "address", "del", cidr, "dev", MARKER.dev);
    return await this.#until(() => this.#markersDeleted > from, timeoutMs);
  }

  #until(pred: () => boolean, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const check = () => {
        if (pred()) finish(true);
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
   * Returns once every change made before the call is in `history`: netlink
   * reports changes in order, so once the marker's deletion is read, so is
   * everything before it. Not to be called twice at once.
   *
   * @param timeoutMs @default 20000
   * @throws {Error} when the marker is not seen within `timeoutMs`.
   */
  async sync(timeoutMs = 20_000): Promise<void> {
    if (!await this.#markOnce(timeoutMs)) {
      throw new Error(`ip monitor address in ${this.netns}: marker not seen in ${timeoutMs} ms`);
    }
  }

  /**
   * Resolves once `pred` holds for the history, or rejects naming `what`
   * after `timeoutMs`.
   *
   * @param timeoutMs @default 20000
   */
  async waitFor(
    what: string,
    pred: (history: readonly SeenAddress[]) => boolean,
    timeoutMs = 20_000,
  ): Promise<void> {
    if (!await this.#until(() => pred(this.history), timeoutMs)) {
      const seen = this.history.map((e) => `${e.deleted ? "-" : "+"}${e.address}`).join(" ");
      throw new Error(`${what}: not seen in ${this.netns} within ${timeoutMs} ms; seen: ${seen}`);
    }
  }

  /** Stops the monitor. */
  stop(): Promise<void> {
    return this.#monitor.stop();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}
