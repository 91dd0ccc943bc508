/**
 * Exponential backoff with jitter. Pure but for the random source, which is
 * injectable; the waiting itself is the caller's (`sleep` in ports.ts).
 *
 * @module
 */

/** Options for {@linkcode Backoff}. */
export interface BackoffOptions {
  /** First delay in milliseconds. @default 500 */
  readonly initialMs?: number;
  /** Upper bound for a delay in milliseconds. @default 30000 */
  readonly maxMs?: number;
  /** Growth per attempt. @default 2 */
  readonly factor?: number;
  /** Random source in [0, 1). @default Math.random */
  readonly random?: () => number;
}

/**
 * Delays that grow by `factor` per attempt up to `maxMs`, each drawn
 * uniformly from [delay/2, delay] so that many gateways restarted at once do
 * not retry in step.
 */
export class Backoff {
  readonly #initial: number;
  readonly #max: number;
  readonly #factor: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.#initial = options.initialMs ?? 500;
    this.#max = options.maxMs ?? 30_000;
    this.#factor = options.factor ?? 2;
    this.#random = options.random ?? Math.random;
  }

  /** The delay before the next attempt. */
  next(): number {
    const ceiling = Math.min(this.#max, this.#initial * this.#factor ** this.#attempt);
    this.#attempt++;
    return Math.round(ceiling / 2 + (ceiling / 2) * this.#random());
  }

  /** Starts over after a success. */
  reset(): void {
    this.#attempt = 0;
  }
}
