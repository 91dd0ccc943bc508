/**
 * What the agent reports as it works: one interface that the reconciler and
 * the list-watch sources report to, and that the metrics implement. Plain
 * string unions only: nothing of the domain is imported here.
 *
 * @module
 */

/** How a reconcile ended: it changed the interface, found nothing to do, or failed. */
export type ReconcileResult = "changed" | "noop" | "error";

/** Why a watch was restarted: the server ended it, an error, 410 Gone (relist), silence. */
export type RestartReason = "closed" | "error" | "gone" | "stalled";

/** The kube-proxy health gate's phase (`HealthPhase` of lib/proxy_health.ts). */
export type KubeProxyPhase =
  | "off"
  | "waiting"
  | "unknown"
  | "healthy"
  | "unhealthy"
  | "ineligible";

/** How a renewal of address lifetimes ended (`--address-lifetime`). */
export type RenewalResult = "ok" | "error";

/** Receives the agent's events. */
export interface AgentObserver {
  /** One reconcile ended after `seconds`. */
  reconciled(result: ReconcileResult, seconds: number): void;
  /** The interface holds `count` managed addresses of `family`. */
  held(family: 4 | 6, count: number): void;
  /** A value from the API was refused, for `reason` (reported once while it persists). */
  rejected(reason: string): void;
  /** The watch of `kind` (e.g. `Service`) was restarted. */
  watchRestarted(kind: string, reason: RestartReason): void;
  /** The kube-proxy health gate entered `phase` (reported at start and on each change). */
  kubeProxyHealth(phase: KubeProxyPhase): void;
  /** One renewal of address lifetimes ended after `seconds`. */
  renewed(result: RenewalResult, seconds: number): void;
  /**
   * Desired addresses by announce state (`announced`, or a withheld reason);
   * states absent from the map count 0.
   */
  addressStates(counts: ReadonlyMap<string, number>): void;
}

/** An observer that ignores everything: the default where none is given. */
export const quietObserver: AgentObserver = {
  reconciled() {},
  held() {},
  rejected() {},
  watchRestarted() {},
  kubeProxyHealth() {},
  renewed() {},
  addressStates() {},
};
