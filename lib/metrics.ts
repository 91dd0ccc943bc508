/**
 * Prometheus metrics for the agent, on prom-client, in a registry of its own.
 *
 * @module
 */

import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Rejection } from "./desired.ts";
import type { ReconcileObserver } from "./reconciler.ts";
import type { RestartReason } from "./service_source.ts";

/** The agent's metrics and the observer hooks that feed them. */
export class Metrics implements ReconcileObserver {
  readonly registry = new Registry();
  readonly #addresses: Gauge<"family">;
  readonly #reconciles: Counter<"result">;
  readonly #duration: Histogram;
  readonly #restarts: Counter<"reason">;
  readonly #rejected: Counter<"reason">;
  readonly #lastSync: Gauge;

  constructor(version: string, commit: string) {
    const registers = [this.registry];
    new Gauge({
      name: "kubegw_build_info",
      help: "Version and commit of the running kube-gw; always 1.",
      labelNames: ["version", "commit"],
      registers,
    }).set({ version, commit }, 1);
    this.#addresses = new Gauge({
      name: "kubegw_addresses",
      help: "Service addresses held on the managed interface.",
      labelNames: ["family"],
      registers,
    });
    this.#addresses.set({ family: "ipv4" }, 0);
    this.#addresses.set({ family: "ipv6" }, 0);
    this.#reconciles = new Counter({
      name: "kubegw_reconciles_total",
      help: "Reconciles by result: success (changed the interface), noop, error.",
      labelNames: ["result"],
      registers,
    });
    for (const result of ["success", "noop", "error"]) this.#reconciles.inc({ result }, 0);
    this.#duration = new Histogram({
      name: "kubegw_reconcile_duration_seconds",
      help: "Time to plan and apply one reconcile.",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.#restarts = new Counter({
      name: "kubegw_watch_restarts_total",
      help:
        "Watch restarts by reason: closed (server timeout), error, gone (410, relist), stalled.",
      labelNames: ["reason"],
      registers,
    });
    this.#rejected = new Counter({
      name: "kubegw_rejected_external_ips_total",
      help: "External IPs refused, counted once per Service, IP and reason.",
      labelNames: ["reason"],
      registers,
    });
    this.#lastSync = new Gauge({
      name: "kubegw_last_successful_sync_timestamp_seconds",
      help: "Unix time of the last reconcile that succeeded.",
      registers,
    });
    new Gauge({
      name: "kubegw_process_memory_bytes",
      help: "Memory of the agent process, from Deno.memoryUsage().",
      labelNames: ["kind"],
      registers,
      collect(this: Gauge<"kind">) {
        const m = Deno.memoryUsage();
        this.set({ kind: "rss" }, m.rss);
        this.set({ kind: "heap_total" }, m.heapTotal);
        this.set({ kind: "heap_used" }, m.heapUsed);
        this.set({ kind: "external" }, m.external);
      },
    });
  }

  reconciled(result: "success" | "error" | "noop", seconds: number): void {
    this.#reconciles.inc({ result });
    this.#duration.observe(seconds);
    if (result !== "error") this.#lastSync.set(Date.now() / 1000);
  }

  held(family: 4 | 6, count: number): void {
    this.#addresses.set({ family: family === 4 ? "ipv4" : "ipv6" }, count);
  }

  rejected(rejection: Rejection): void {
    this.#rejected.inc({ reason: rejection.reason });
  }

  /** Counts a watch restart. */
  watchRestarted(reason: RestartReason): void {
    this.#restarts.inc({ reason });
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
