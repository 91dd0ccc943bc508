/**
 * Summary statistics for benchmark samples. Pure.
 *
 * @module
 */

/**
 * The q-quantile (0 ≤ q ≤ 1) of samples by the nearest-rank method: the
 * smallest sample with at least q of all samples at or below it. NaN when
 * there are no samples.
 */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}

/** The largest sample; NaN when there are none. */
export function maxOf(samples: readonly number[]): number {
  let m = NaN;
  for (const s of samples) if (!(s <= m)) m = s;
  return m;
}

/** p50, p99 and max of a set of samples, with the count. */
export interface Distribution {
  readonly n: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** Summarises samples as p50, p99 and max. */
export function distribution(samples: readonly number[]): Distribution {
  return {
    n: samples.length,
    p50: quantile(samples, 0.5),
    p99: quantile(samples, 0.99),
    max: maxOf(samples),
  };
}

/** One figure over several runs: the median run and the worst run. */
export interface AcrossRuns {
  readonly runs: readonly number[];
  readonly median: number;
  /** The largest value: every figure here is a cost (time, bytes, requests). */
  readonly worst: number;
}

/** The median (lower median for an even count) and the worst of per-run values. */
export function acrossRuns(runs: readonly number[]): AcrossRuns {
  return {
    runs: [...runs],
    median: quantile(runs, 0.5),
    worst: maxOf(runs),
  };
}
