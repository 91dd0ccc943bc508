/**
 * Prometheus metrics for the agent, on prom-client, in a registry of its own.
 * They follow the agent's events through {@linkcode AgentObserver} and know
 * nothing else of the domain.
 *
 * @module
 */

import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { registerProcessMetrics } from "../http/process_metrics.ts";
import {
  ADDRESS_STATES,
  type AgentObserver,
  KUBE_PROXY_PHASES,
  type KubeProxyPhase,
  type ReconcileResult,
  type RenewalResult,
  type ResyncResult,
} from "./observer.ts";
import { apiMetrics } from "../kube/api_metrics.ts";
import type { ApiObserver, RestartReason } from "../kube/observer.ts";

/** The agent's metrics and the observer hooks that feed them. */
export class Metrics implements AgentObserver, ApiObserver {
  readonly registry = new Registry();
  readonly #addresses: Gauge<"family" | "state">;
  readonly #reconciles: Counter<"result">;
  readonly #duration: Histogram;
  readonly #resyncs: Counter<"result">;
  readonly #restarts: Counter<"reason">;
  readonly #rejected: Counter<"reason">;
  readonly #lastSync: Gauge;
  readonly #kubeProxy: Gauge<"state">;
  readonly #renewals: Counter<"result">;
  readonly #renewalDuration: Histogram;
  readonly #conflict: Gauge;
  readonly #conflicts: Counter;
  readonly #api: ApiObserver;
  /** The age of the least current watch in ms, and the staleness limit; set by the agent. */
  #apiAge: (() => number | undefined) | undefined;
  #staleAfterMs = Infinity;

  constructor(version: string, commit: string) {
    const registers = [this.registry];
    registerProcessMetrics(this.registry, version, commit);
    // Two views in one gauge, never to be summed across: {family} counts what the
    // interface holds (read back, from the start); {state} counts the desired
    // addresses by the announce gate's verdict (after the first complete list).
    this.#addresses = new Gauge({
      name: "kubegw_addresses",
      help:
        "Service addresses: {family} held on the managed interface; {state} desired, by announce state (announced or the reason withheld). Do not sum across the two.",
      labelNames: ["family", "state"],
      registers,
    });
    this.#addresses.set({ family: "ipv4" }, 0);
    this.#addresses.set({ family: "ipv6" }, 0);
    for (const state of ADDRESS_STATES) this.#addresses.set({ state }, 0);
    this.#reconciles = new Counter({
      name: "kubegw_reconciles_total",
      help: "Reconciles by result: changed (changed the interface), noop, error.",
      labelNames: ["result"],
      registers,
    });
    const results: ReconcileResult[] = ["changed", "noop", "error"];
    for (const result of results) this.#reconciles.inc({ result }, 0);
    this.#duration = new Histogram({
      name: "kubegw_reconcile_duration_seconds",
      help: "Time to plan and apply one reconcile.",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.#resyncs = new Counter({
      name: "kubegw_resyncs_total",
      help:
        "Resync checks by result: clean (the interface held what was applied), drift (a reconcile re-reads and repairs it), error.",
      labelNames: ["result"],
      registers,
    });
    const checks: ResyncResult[] = ["clean", "drift", "error"];
    for (const result of checks) this.#resyncs.inc({ result }, 0);
    this.#restarts = new Counter({
      name: "kubegw_watch_restarts_total",
      help:
        "Watch restarts by reason: closed (server timeout), error, gone (410 or 504 too large resource version: relist), stalled (silent past its timeout).",
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
      help:
        "Unix time of the last reconcile that succeeded while every watch was current (within --api-stale-after): the interface matched an up-to-date view of the API.",
      registers,
    });
    this.#kubeProxy = new Gauge({
      name: "kubegw_kube_proxy_health",
      help:
        "1 for the kube-proxy health gate's state: off, waiting (boot, closed until the first 200), " +
        "unknown (open: never answered since a start with addresses), healthy, unhealthy, ineligible.",
      labelNames: ["state"],
      registers,
    });
    for (const state of KUBE_PROXY_PHASES) this.#kubeProxy.set({ state }, state === "off" ? 1 : 0);
    this.#renewals = new Counter({
      name: "kubegw_address_renewals_total",
      help: "Renewals of address lifetimes (--address-lifetime) by result: ok, error.",
      labelNames: ["result"],
      registers,
    });
    const renewalResults: RenewalResult[] = ["ok", "error"];
    for (const result of renewalResults) this.#renewals.inc({ result }, 0);
    this.#renewalDuration = new Histogram({
      name: "kubegw_address_renewal_duration_seconds",
      help: "Time of one renewal of address lifetimes (one ip -batch run).",
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.#conflict = new Gauge({
      name: "kubegw_interface_conflict",
      help: "1 while another program keeps changing the managed addresses (a second agent?).",
      registers,
    });
    this.#conflict.set(0);
    this.#conflicts = new Counter({
      name: "kubegw_interface_conflicts_total",
      help: "Episodes of another program changing the managed addresses.",
      registers,
    });
    this.#conflicts.inc(0);
    const apiAge = () => this.#apiAge?.();
    new Gauge({
      name: "kubegw_api_last_current_timestamp_seconds",
      help:
        "Unix time at which the least current watch was last known current (a list, an event, a bookmark, or an answered liveness probe); 0 before the first list.",
      registers,
      collect(this: Gauge) {
        const age = apiAge();
        this.set(age === undefined ? 0 : (Date.now() - age) / 1000);
      },
    });
    this.#api = apiMetrics(registers);
  }

  reconciled(result: ReconcileResult, seconds: number): void {
    this.#reconciles.inc({ result });
    this.#duration.observe(seconds);
    if (result !== "error") this.#synced();
  }

  resynced(result: ResyncResult, _seconds: number): void {
    this.#resyncs.inc({ result });
    // A clean check is a sync that found nothing to do: on a quiet cluster, the only one.
    if (result === "clean") this.#synced();
  }

  /** A reconcile or check succeeded: a successful sync if every watch is current. */
  #synced(): void {
    // Not wired to the watches (no agent): every success counts, as before.
    const age = this.#apiAge ? this.#apiAge() : 0;
    if (age !== undefined && age <= this.#staleAfterMs) this.#lastSync.set(Date.now() / 1000);
  }

  /**
   * Where the age of the least current watch comes from (undefined before
   * every watch listed), and the staleness past which a reconcile no longer
   * counts as a successful sync.
   */
  watchApiCurrency(ageMs: () => number | undefined, staleAfterMs: number): void {
    this.#apiAge = ageMs;
    this.#staleAfterMs = staleAfterMs;
  }

  authFailed(status: number): void {
    this.#api.authFailed(status);
  }

  connectionReplaced(reason: string): void {
    this.#api.connectionReplaced(reason);
  }

  held(family: 4 | 6, count: number): void {
    this.#addresses.set({ family: family === 4 ? "ipv4" : "ipv6" }, count);
  }

  rejected(reason: string): void {
    this.#rejected.inc({ reason });
  }

  addressStates(counts: ReadonlyMap<string, number>): void {
    for (const state of ADDRESS_STATES) this.#addresses.set({ state }, counts.get(state) ?? 0);
  }

  /** Counts a watch restart by reason (the metric has no kind label yet). */
  watchRestarted(_kind: string, reason: RestartReason): void {
    this.#restarts.inc({ reason });
  }

  kubeProxyHealth(phase: KubeProxyPhase): void {
    for (const state of KUBE_PROXY_PHASES) this.#kubeProxy.set({ state }, state === phase ? 1 : 0);
  }

  renewed(result: RenewalResult, seconds: number): void {
    this.#renewals.inc({ result });
    this.#renewalDuration.observe(seconds);
  }

  interfaceConflict(active: boolean): void {
    this.#conflict.set(active ? 1 : 0);
    if (active) this.#conflicts.inc();
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
