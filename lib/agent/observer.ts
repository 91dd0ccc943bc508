/**
 * What the agent reports as it works: one interface that the reconciler and
 * the list-watch sources report to, and that the metrics implement. Plain
 * string unions only: nothing of the domain is imported here. What the
 * list-watch engine and the API client report is defined beside them
 * (`lib/kube/observer.ts`); {@linkcode AgentObserver} extends the former.
 *
 * @module
 */

import type { ListWatchObserver } from "../kube/observer.ts";

/** How a reconcile ended: it changed the interface, found nothing to do, or failed. */
export type ReconcileResult = "changed" | "noop" | "error";

/**
 * The kube-proxy health gate's phases (`HealthPhase` of lib/agent/kube_proxy_health.ts
 * is this union): `off` (checking off, the gate always open); `waiting`
 * (started with no managed address, a boot: closed until the first 200);
 * `unknown` (started with addresses, no 200 yet: open, health unknown);
 * `healthy` (200 last, or fewer failed polls than close the gate since);
 * `unhealthy` (closed after failed polls in a row); `ineligible` (closed:
 * kube-proxy said `nodeEligible: false`).
 */
export const KUBE_PROXY_PHASES = [
  "off",
  "waiting",
  "unknown",
  "healthy",
  "unhealthy",
  "ineligible",
] as const;

/** The kube-proxy health gate's phase; see {@linkcode KUBE_PROXY_PHASES}. */
export type KubeProxyPhase = typeof KUBE_PROXY_PHASES[number];

/** Every reason the announce gate withholds an address (`announce.ts` decides them). */
export const WITHHELD_REASONS = [
  "no_usable_endpoint",
  "no_endpoint_on_node",
  "no_node_name",
  "proxy_skipped",
  "kube_proxy_unhealthy",
  "hold_down",
  "damped",
] as const;

/** Why an address is withheld. */
export type WithheldReason = typeof WITHHELD_REASONS[number];

/** The values of `kubegw_addresses{state}`: announced, or why withheld. */
export const ADDRESS_STATES = ["announced", ...WITHHELD_REASONS] as const;

/** A state of an address: announced, or the reason it is withheld. */
export type AddressStateName = typeof ADDRESS_STATES[number];

/**
 * How a resync's check ended: the interface held what was applied (`clean`),
 * it did not and a reconcile re-reads and repairs it (`drift`), or the read
 * failed (`error`; a reconcile re-reads too).
 */
export type ResyncResult = "clean" | "drift" | "error";

/** How a renewal of address lifetimes ended (`--address-lifetime`). */
export type RenewalResult = "ok" | "error";

/** Receives the agent's events, the list-watch engine's (watch restarts) among them. */
export interface AgentObserver extends ListWatchObserver {
  /** One reconcile ended after `seconds`. */
  reconciled(result: ReconcileResult, seconds: number): void;
  /** One resync's check ended after `seconds`. */
  resynced(result: ResyncResult, seconds: number): void;
  /** The interface holds `count` managed addresses of `family`. */
  held(family: 4 | 6, count: number): void;
  /** A value from the API was refused, for `reason` (reported once while it persists). */
  rejected(reason: string): void;
  /** The kube-proxy health gate entered `phase` (reported at start and on each change). */
  kubeProxyHealth(phase: KubeProxyPhase): void;
  /** One renewal of address lifetimes ended after `seconds`. */
  renewed(result: RenewalResult, seconds: number): void;
  /**
   * Desired addresses by announce state (`announced`, or a withheld reason);
   * states absent from the map count 0.
   */
  addressStates(counts: ReadonlyMap<string, number>): void;
  /** Another program started (true) or stopped (false) changing the managed addresses. */
  interfaceConflict(active: boolean): void;
}

/** An observer that ignores everything: the default where none is given. */
export const quietObserver: AgentObserver = {
  reconciled() {},
  resynced() {},
  held() {},
  rejected() {},
  watchRestarted() {},
  kubeProxyHealth() {},
  renewed() {},
  addressStates() {},
  interfaceConflict() {},
};
