/**
 * Prometheus metrics of `kube-gw controller`, in a registry of their own: the
 * allocations and their latency, failures by reason, status write failures,
 * refused pools edits, pool sizes and use, leadership, Events, watch
 * restarts, refused credentials and replaced API connections. A
 * {@linkcode ControllerObserver}, and the observer of the list-watch engine
 * and of the API client; pool use is read at scrape time.
 *
 * @module
 */

import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { registerProcessMetrics } from "../http/process_metrics.ts";
import type { ControllerObserver, EventOutcome } from "./ports.ts";
import { familyBits } from "../base/ip.ts";
import { apiMetrics } from "../kube/api_metrics.ts";
import type { ApiObserver, ListWatchObserver, RestartReason } from "../kube/observer.ts";
import type { Pool } from "./pools.ts";

/** The controller's metrics. */
export class ControllerMetrics implements ControllerObserver, ListWatchObserver, ApiObserver {
  readonly registry = new Registry();
  readonly #written: Counter<"result">;
  readonly #latency: Histogram;
  readonly #failures: Counter<"reason">;
  readonly #writeFailures: Counter<"kind">;
  readonly #configErrors: Counter;
  readonly #poolSize: Gauge<"pool" | "family">;
  readonly #leader: Gauge;
  readonly #events: Counter<"reason" | "outcome">;
  readonly #restarts: Counter<"kind" | "reason">;
  readonly #api: ApiObserver;
  #pools: readonly Pool[] = [];
  /** The addresses held per pool name, read at each scrape. */
  poolUse: () => ReadonlyMap<string, number> = () => new Map();

  constructor(version: string, commit: string) {
    const registers = [this.registry];
    registerProcessMetrics(this.registry, version, commit);
    this.#written = new Counter({
      name: "kubegw_lb_status_writes_total",
      help: "Status writes by result: allocated (addresses written), cleared.",
      labelNames: ["result"],
      registers,
    });
    for (const result of ["allocated", "cleared"]) this.#written.inc({ result }, 0);
    this.#latency = new Histogram({
      name: "kubegw_lb_status_write_latency_seconds",
      help: "From the event that queued a Service to its status written.",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.#failures = new Counter({
      name: "kubegw_lb_allocation_failures_total",
      help: "Requests that could not be met, by reason.",
      labelNames: ["reason"],
      registers,
    });
    this.#writeFailures = new Counter({
      name: "kubegw_lb_status_write_failures_total",
      help: "Failed status writes: conflict (409, decided again), error (retried with backoff).",
      labelNames: ["kind"],
      registers,
    });
    for (const kind of ["conflict", "error"]) this.#writeFailures.inc({ kind }, 0);
    this.#configErrors = new Counter({
      name: "kubegw_lb_config_errors_total",
      help: "Pools edits refused (the last good pools stay).",
      registers,
    });
    this.#configErrors.inc(0);
    this.#poolSize = new Gauge({
      name: "kubegw_lb_pool_addresses",
      help: "Addresses in each pool, by family.",
      labelNames: ["pool", "family"],
      registers,
    });
    const pools = () => this.#pools;
    const used = () => this.poolUse();
    new Gauge({
      name: "kubegw_lb_pool_used_addresses",
      help: "Addresses of each pool held by Services (as seen by the leader; 0 on a standby).",
      labelNames: ["pool"],
      registers,
      collect(this: Gauge<"pool">) {
        this.reset();
        const counts = used();
        for (const p of pools()) this.set({ pool: p.name }, counts.get(p.name) ?? 0);
      },
    });
    this.#leader = new Gauge({
      name: "kubegw_lb_leader",
      help: "1 while this controller leads (and writes), else 0.",
      registers,
    });
    this.#leader.set(0);
    this.#events = new Counter({
      name: "kubegw_lb_events_total",
      help:
        "Events by reason and outcome: emit (accepted by the API server), duplicate, rate_limited, dropped, failed.",
      labelNames: ["reason", "outcome"],
      registers,
    });
    this.#restarts = new Counter({
      name: "kubegw_watch_restarts_total",
      help: "Watch restarts by kind and reason: closed, error, gone (410, relist), stalled.",
      labelNames: ["kind", "reason"],
      registers,
    });
    // The agent's names: one dashboard panel serves both programs.
    this.#api = apiMetrics(registers);
  }

  statusWritten(kind: "allocated" | "cleared", seconds: number): void {
    this.#written.inc({ result: kind });
    this.#latency.observe(seconds);
  }

  allocationFailed(reason: string): void {
    this.#failures.inc({ reason });
  }

  writeFailed(kind: "conflict" | "error"): void {
    this.#writeFailures.inc({ kind });
  }

  configError(): void {
    this.#configErrors.inc();
  }

  poolsChanged(pools: readonly Pool[]): void {
    this.#pools = pools;
    this.#poolSize.reset();
    for (const p of pools) {
      for (const fam of [4, 6] as const) {
        const size = p.cidrs.filter((c) => c.family === fam)
          .reduce((n, c) => n + 2 ** (familyBits(fam) - c.prefix), 0);
        if (size > 0) this.#poolSize.set({ pool: p.name, family: `ipv${fam}` }, size);
      }
    }
  }

  leadership(role: "leader" | "standby"): void {
    this.#leader.set(role === "leader" ? 1 : 0);
  }

  /** Counts one Event's outcome. */
  event(reason: string, outcome: EventOutcome): void {
    this.#events.inc({ reason, outcome });
  }

  /** Counts a watch restart by kind and reason. */
  watchRestarted(kind: string, reason: RestartReason): void {
    this.#restarts.inc({ kind, reason });
  }

  /** Counts an answer of 401 or 403. */
  authFailed(status: number): void {
    this.#api.authFailed(status);
  }

  /** Counts a replacement of the API connection. */
  connectionReplaced(reason: string): void {
    this.#api.connectionReplaced(reason);
  }

  /** The exposition text for `/metrics`. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** The content type of {@linkcode render}'s output. */
  get contentType(): string {
    return this.registry.contentType;
  }
}
