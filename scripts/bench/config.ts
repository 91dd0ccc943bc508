/**
 * Benchmark sizes: the full run the issue asks for, and a small run for CI
 * that exercises every scenario in well under two minutes.
 *
 * @module
 */

/** Sizes and repetitions of every scenario. */
export interface BenchConfig {
  readonly mode: "full" | "small";
  /** Runs of each kube-gw measurement. */
  readonly runs: number;
  /** Runs of each prototype measurement (it is slow by design). */
  readonly prototypeRuns: number;
  readonly latency: {
    /** Sequential creates, then as many deletes, for kube-gw. */
    readonly events: number;
    /** Sampled creates (and deletes) for the prototype. */
    readonly prototypeEvents: number;
    /** Mean gap between the prototype's sampled events (exponential). */
    readonly prototypeMeanGapMs: number;
  };
  readonly initialSync: { readonly sizes: readonly number[] };
  /** Scenario `route_mode`: initial sync in route mode (and address mode up to 10,000). */
  readonly routeMode: { readonly sizes: readonly number[] };
  readonly churn: {
    readonly services: number;
    readonly perSecond: number;
    readonly seconds: number;
  };
  /**
   * Scenario `route_events`: event latency in route mode beside address mode
   * (`latency.events` each), and churn in route mode at this size.
   */
  readonly routeEvents: { readonly churn: BenchConfig["churn"] };
  /** Scenario `fabric_scale` (opt-in): N Services × 2 routes through the BGP fabric. */
  readonly fabricScale: { readonly services: number; readonly runs: number };
  readonly memory: { readonly sizes: readonly number[]; readonly idleMs: number };
  readonly endpoints: {
    readonly services: number;
    /** Slices emptied one at a time, for the withdrawal latency. */
    readonly withdrawals: number;
    /** Slice updates a second that change no announcement. */
    readonly perSecond: number;
    readonly seconds: number;
  };
  readonly apiCost: {
    readonly services: number;
    readonly windowMs: number;
    /** kube-gw agents measured side by side (each with its own API server). */
    readonly replicas: number;
  };
  /** `--address-lifetime`: renewal of this many addresses, and an agent over whole intervals. */
  readonly renewal: {
    readonly addresses: number;
    readonly lifetimeSeconds: number;
    /** Renewal intervals (a third of the lifetime each) the agent is measured over. */
    readonly intervals: number;
  };
  /** Scenario `fuzz`: hostile values in all, across Services; huge strings; one large Service. */
  readonly fuzz: {
    readonly strings: number;
    readonly services: number;
    readonly hugeChars: number;
    readonly bigServiceMb: number;
  };
  /** Scenario `controller_fuzz`: Services seeded, edits while running, pools.yaml documents. */
  readonly controllerFuzz: {
    readonly services: number;
    readonly edits: number;
    readonly poolsDocs: number;
  };
  /** Write V8 CPU profiles of every agent into this directory. */
  readonly cpuProfDir?: string;
  /** Write every agent's log into this directory. */
  readonly logDir?: string;
}

/** The run the issue specifies. */
export const FULL: BenchConfig = {
  mode: "full",
  runs: 3,
  prototypeRuns: 3,
  latency: { events: 1000, prototypeEvents: 40, prototypeMeanGapMs: 1000 },
  initialSync: { sizes: [1000, 10_000, 25_000] },
  routeMode: { sizes: [10_000, 50_000] },
  churn: { services: 10_000, perSecond: 500, seconds: 30 },
  routeEvents: { churn: { services: 50_000, perSecond: 500, seconds: 30 } },
  fabricScale: { services: 50_000, runs: 1 },
  memory: { sizes: [100, 10_000], idleMs: 20_000 },
  endpoints: { services: 10_000, withdrawals: 500, perSecond: 500, seconds: 20 },
  apiCost: { services: 100, windowMs: 600_000, replicas: 3 },
  renewal: { addresses: 10_000, lifetimeSeconds: 90, intervals: 3 },
  fuzz: { strings: 50_000, services: 1000, hugeChars: 1_000_000, bigServiceMb: 5 },
  controllerFuzz: { services: 1000, edits: 2000, poolsDocs: 60 },
};

/** Every scenario at a small size, for CI: checks that nothing broke, times nothing. */
export const SMALL: BenchConfig = {
  mode: "small",
  runs: 2,
  prototypeRuns: 1,
  latency: { events: 200, prototypeEvents: 3, prototypeMeanGapMs: 300 },
  initialSync: { sizes: [200] },
  routeMode: { sizes: [200] },
  churn: { services: 200, perSecond: 100, seconds: 5 },
  routeEvents: { churn: { services: 200, perSecond: 100, seconds: 3 } },
  fabricScale: { services: 500, runs: 1 },
  memory: { sizes: [100, 200], idleMs: 2000 },
  endpoints: { services: 200, withdrawals: 50, perSecond: 100, seconds: 3 },
  apiCost: { services: 100, windowMs: 12_000, replicas: 1 },
  renewal: { addresses: 200, lifetimeSeconds: 3, intervals: 3 },
  fuzz: { strings: 10_000, services: 300, hugeChars: 100_000, bigServiceMb: 1 },
  controllerFuzz: { services: 150, edits: 200, poolsDocs: 40 },
};
