/**
 * Detects another program changing the managed addresses, typically a second
 * agent with other settings on the same interface. Pure: the
 * reconciler feeds it, at every read of the interface it trusted its view
 * before, what it expected (the addresses it had applied) and what it read.
 * An address it holds that keeps vanishing between reads, or one it does not
 * hold that keeps appearing, `threshold` times within the last `window` reads,
 * starts an episode, reported once; the episode ends after `window` reads
 * without any such change.
 *
 * @module
 */

/** Options for {@linkcode FightDetector}. */
export interface FightOptions {
  /** Changes of one address within the window that make a fight. @default 3 */
  readonly threshold?: number;
  /** How many reads the detector remembers. @default 10 */
  readonly window?: number;
  /** Addresses remembered per read and kind (a bound on memory). @default 1000 */
  readonly maxPerRead?: number;
}

/** One address and how often it changed behind the agent's back within the window. */
export interface Flapping {
  readonly address: string;
  readonly times: number;
}

/** What a fight looks like when it is detected. */
export interface FightReport {
  /** Addresses the agent holds that vanished between reads within the window (most often first). */
  readonly vanished: readonly Flapping[];
  /** Addresses the agent does not hold that appeared between reads within the window (most often first). */
  readonly appeared: readonly Flapping[];
  /** The number of reads the counts cover. */
  readonly reads: number;
}

/** What one observation changed. */
export type FightEvent =
  | { readonly kind: "started"; readonly report: FightReport }
  | { readonly kind: "ended" }
  | undefined;

class WindowCounts {
  readonly #counts = new Map<string, number>();
  readonly #ring: (readonly string[])[] = [];
  constructor(readonly window: number) {}

  push(addresses: readonly string[]): void {
    this.#ring.push(addresses);
    for (const a of addresses) this.#counts.set(a, (this.#counts.get(a) ?? 0) + 1);
    if (this.#ring.length > this.window) {
      for (const a of this.#ring.shift()!) {
        const n = this.#counts.get(a)! - 1;
        if (n === 0) this.#counts.delete(a);
        else this.#counts.set(a, n);
      }
    }
  }

  get quiet(): boolean {
    return this.#counts.size === 0;
  }

  atLeast(threshold: number): Flapping[] {
    const out: Flapping[] = [];
    for (const [address, times] of this.#counts) {
      if (times >= threshold) out.push({ address, times });
    }
    return out.sort((a, b) => b.times - a.times || (a.address < b.address ? -1 : 1));
  }
}

/** Watches the read-backs of one interface for another writer. */
export class FightDetector {
  readonly #threshold: number;
  readonly #maxPerRead: number;
  readonly #vanished: WindowCounts;
  readonly #appeared: WindowCounts;
  #reads = 0;
  #fighting = false;
  #quietReads = 0;

  constructor(options: FightOptions = {}) {
    this.#threshold = options.threshold ?? 3;
    this.#maxPerRead = options.maxPerRead ?? 1000;
    const window = options.window ?? 10;
    this.#vanished = new WindowCounts(window);
    this.#appeared = new WindowCounts(window);
  }

  /** Whether an episode is going on. */
  get fighting(): boolean {
    return this.#fighting;
  }

  /**
   * One read of the interface: `expected` is what the agent had applied and
   * believed there, `read` what is there (managed host addresses). Returns
   * `started` once when an episode begins, `ended` when it is over.
   */
  observe(expected: ReadonlySet<string>, read: ReadonlySet<string>): FightEvent {
    const vanished: string[] = [];
    const appeared: string[] = [];
    for (const a of expected) {
      if (vanished.length >= this.#maxPerRead) break;
      if (!read.has(a)) vanished.push(a);
    }
    for (const a of read) {
      if (appeared.length >= this.#maxPerRead) break;
      if (!expected.has(a)) appeared.push(a);
    }
    return this.observeChanges(vanished, appeared);
  }

  /**
   * One read, given as what changed: the addresses held that vanished and
   * those not held that appeared (both empty for a read that matched).
   */
  observeChanges(vanished: readonly string[], appeared: readonly string[]): FightEvent {
    vanished = vanished.slice(0, this.#maxPerRead);
    appeared = appeared.slice(0, this.#maxPerRead);
    this.#vanished.push(vanished);
    this.#appeared.push(appeared);
    this.#reads = Math.min(this.#reads + 1, this.#vanished.window);
    if (!this.#fighting) {
      const v = this.#vanished.atLeast(this.#threshold);
      const a = this.#appeared.atLeast(this.#threshold);
      if (v.length === 0 && a.length === 0) return undefined;
      this.#fighting = true;
      this.#quietReads = 0;
      // The report names every change in the window, not only those past the threshold: both
      // sides of a fight, even when one of them reached it first.
      return {
        kind: "started",
        report: {
          vanished: this.#vanished.atLeast(1),
          appeared: this.#appeared.atLeast(1),
          reads: this.#reads,
        },
      };
    }
    this.#quietReads = vanished.length === 0 && appeared.length === 0 ? this.#quietReads + 1 : 0;
    if (this.#quietReads >= this.#vanished.window) {
      this.#fighting = false;
      return { kind: "ended" };
    }
    return undefined;
  }
}

/**
 * One line for the log naming both facts, at most `max` addresses of each.
 *
 * @param max @default 10
 */
export function describeFight(report: FightReport, max = 10): string {
  const list = (xs: readonly Flapping[]) =>
    xs.slice(0, max).map((x) => `${x.address} (${x.times}×)`).join(", ") +
    (xs.length > max ? ` and ${xs.length - max} more` : "");
  const facts: string[] = [];
  if (report.vanished.length > 0) {
    facts.push(
      `${report.vanished.length} address(es) kube-gw holds vanished between reads: ${
        list(report.vanished)
      }`,
    );
  }
  if (report.appeared.length > 0) {
    facts.push(
      `${report.appeared.length} address(es) kube-gw does not want keep coming back: ${
        list(report.appeared)
      }`,
    );
  }
  return `another program is changing the managed addresses on the interface (in the last ${report.reads} reads): ${
    facts.join("; ")
  }. Is a second kube-gw with other settings (--selector, --namespace) managing this interface? One interface has one agent.`;
}
