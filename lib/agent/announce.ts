/**
 * The announce decision: whether the router may announce one desired
 * address, and why it is withheld otherwise, with the explanation `kube-gw
 * plan` and `/status` show. Pure: no I/O; time comes in as `now`. The gate
 * that applies it to every address as events arrive is `announce_gate.ts`.
 *
 * An address is announced exactly when
 * - the kube-proxy health gate is open, and
 * - at least one Service that claims it qualifies (see {@linkcode announceVerdict}), and
 * - the hold-down has elapsed: the two conditions above have held continuously
 *   for `delayMs` since they last became true.
 *
 * Withdrawal is immediate: the hold-down never delays it. The hold-down only
 * applies to an address that was announced before (by this gate, or present
 * on the interface at start, or withdrawn less than `delayMs` ago before it
 * left the desired set): a brand-new address whose condition holds is
 * announced at once, since operators expect a new Service with ready
 * endpoints to come up immediately; once it has been withdrawn, coming back
 * waits, so a flapping endpoint or a Service deleted and re-created in a loop
 * cannot flap the route in the fabric.
 *
 * @module
 */

import type { EndpointCounts } from "./endpoints.ts";
import { familyOf } from "../base/ip.ts";
import type { TrafficPolicy } from "../service/record.ts";
import {
  ADDRESS_STATES,
  type AddressStateName,
  WITHHELD_REASONS,
  type WithheldReason,
} from "./observer.ts";

/** `ready`: announce only what kube-proxy can deliver. `always`: ignore endpoints. */
export type AnnounceMode = "ready" | "always";

// The reasons and states are listed in the observer port, which the metrics read.
export { ADDRESS_STATES, type AddressStateName, WITHHELD_REASONS, type WithheldReason };

/** One line per reason, for `kube-gw plan` and the log. */
export const WITHHELD_TEXT: Readonly<Record<WithheldReason, string>> = {
  no_usable_endpoint: "no usable endpoint",
  no_endpoint_on_node: "no endpoint on this node (externalTrafficPolicy: Local)",
  no_node_name: "no node name for a Local Service (set --node-name)",
  proxy_skipped: "kube-proxy skips the Service (label service.kubernetes.io/service-proxy-name)",
  kube_proxy_unhealthy: "kube-proxy unhealthy",
  hold_down: "in hold-down",
};

/** A Service that claims an address, with what the decision needs of it. */
export interface Claimant {
  /** `namespace/name`. */
  readonly service: string;
  readonly trafficPolicy: TrafficPolicy;
  /** Whether it carries the label `service.kubernetes.io/service-proxy-name`. */
  readonly proxySkipped: boolean;
}

/** The kube-proxy health gate as the decision sees it. */
export interface HealthGate {
  readonly open: boolean;
  /** Why it is closed (or open on unknown health), for explanations. */
  readonly reason?: string;
}

/** A Service's own verdict on an address of the given family. */
export type AnnounceVerdict =
  | "qualifies"
  | "no_usable_endpoint"
  | "no_endpoint_on_node"
  | "no_node_name"
  | "proxy_skipped";

/**
 * Whether one Service makes its address deliverable by kube-proxy.
 * `always` mode ignores endpoints and the traffic policy; a Service that
 * kube-proxy skips never qualifies, in either mode.
 */
export function announceVerdict(
  c: Claimant,
  counts: EndpointCounts,
  mode: AnnounceMode,
  nodeName: string | undefined,
): AnnounceVerdict {
  if (c.proxySkipped) return "proxy_skipped";
  if (mode === "always") return "qualifies";
  if (c.trafficPolicy === "Cluster") return counts.cluster > 0 ? "qualifies" : "no_usable_endpoint";
  if (nodeName === undefined) return "no_node_name";
  if (counts.local > 0) return "qualifies";
  return counts.cluster > 0 ? "no_endpoint_on_node" : "no_usable_endpoint";
}

/** The instantaneous condition of an address, before the hold-down. */
export type Condition =
  | { readonly holds: true; readonly by: string }
  | { readonly holds: false; readonly reason: Exclude<WithheldReason, "hold_down"> };

/** Which reason is reported when several Services fail: the one closest to qualifying first. */
const FAILURE_ORDER: readonly AnnounceVerdict[] = [
  "no_endpoint_on_node",
  "no_usable_endpoint",
  "no_node_name",
  "proxy_skipped",
];

/**
 * Whether an address may be announced now, hold-down aside: the health gate is
 * open and one of its Services qualifies. With no claimant the address is not
 * desired; the condition then fails with `no_usable_endpoint`.
 */
export function addressCondition(
  address: string,
  claimants: readonly Claimant[],
  counts: (service: string, family: 4 | 6) => EndpointCounts,
  health: HealthGate,
  mode: AnnounceMode,
  nodeName: string | undefined,
): Condition {
  if (!health.open) return { holds: false, reason: "kube_proxy_unhealthy" };
  const family = familyOf(address);
  let worst = FAILURE_ORDER.length;
  for (const c of claimants) {
    const v = announceVerdict(c, counts(c.service, family), mode, nodeName);
    if (v === "qualifies") return { holds: true, by: c.service };
    worst = Math.min(worst, FAILURE_ORDER.indexOf(v));
  }
  const reason = (FAILURE_ORDER[worst] ?? "no_usable_endpoint") as Exclude<
    AnnounceVerdict,
    "qualifies"
  >;
  return { holds: false, reason };
}

/** What the gate remembers of one address. */
export interface AddressState {
  /** Since when the condition has held without a break; undefined while it fails. */
  readonly since: number | undefined;
  readonly announced: boolean;
  /** Whether it has been announced before: coming back then waits for the hold-down. */
  readonly wasAnnounced: boolean;
  /** Why it is withheld; undefined when announced. */
  readonly reason: WithheldReason | undefined;
}

/** The result of {@linkcode stepAddress}. */
export interface AddressStep {
  readonly state: AddressState;
  /** When the hold-down ends, if the address waits for it. */
  readonly due: number | undefined;
}

/**
 * The pure transition of one address given its condition at `now`.
 * A failing condition withdraws at once; a holding one announces when the
 * address was never announced, or the hold-down is 0, or the condition has
 * held for `delayMs`.
 */
export function stepAddress(
  prev: AddressState | undefined,
  condition: Condition,
  now: number,
  delayMs: number,
): AddressStep {
  const wasAnnounced = (prev?.wasAnnounced ?? false) || (prev?.announced ?? false);
  if (!condition.holds) {
    return {
      state: { since: undefined, announced: false, wasAnnounced, reason: condition.reason },
      due: undefined,
    };
  }
  const since = prev?.since ?? now;
  if (prev?.announced || !wasAnnounced || delayMs <= 0 || now - since >= delayMs) {
    return {
      state: { since, announced: true, wasAnnounced: true, reason: undefined },
      due: undefined,
    };
  }
  return {
    state: { since, announced: false, wasAnnounced, reason: "hold_down" },
    due: since + delayMs,
  };
}

/** One Service's part in an explanation. */
export interface ServiceExplanation {
  readonly service: string;
  readonly trafficPolicy: TrafficPolicy;
  readonly verdict: AnnounceVerdict;
  readonly endpoints: EndpointCounts;
}

/** Why an address is announced or withheld, for `kube-gw plan` and `/status`. */
export interface AddressExplanation {
  readonly address: string;
  readonly state: AddressStateName;
  readonly services: readonly ServiceExplanation[];
  /** When the hold-down ends, while in `hold_down`. */
  readonly holdDownUntil?: number;
  /** The health gate's reason when kube-proxy's health closes the gate. */
  readonly health?: string;
}

/**
 * One line for `kube-gw plan`: the address, its state (announced, or withheld
 * with the reason), and its Services with their verdicts. `now` turns the
 * hold-down's end into the time left.
 */
export function formatExplanation(e: AddressExplanation, now: number): string {
  const state = e.state === "announced" ? "announced" : `withheld: ${WITHHELD_TEXT[e.state]}`;
  const left = e.holdDownUntil !== undefined
    ? ` (${Math.max(0, Math.ceil((e.holdDownUntil - now) / 1000))}s left)`
    : "";
  const health = e.state === "kube_proxy_unhealthy" && e.health ? ` (${e.health})` : "";
  const services = e.services.map((s) => {
    const verdict = s.verdict === "qualifies" ? "ok" : s.verdict;
    const counts = s.trafficPolicy === "Local"
      ? `${s.endpoints.local} on node, ${s.endpoints.cluster} in cluster`
      : `${s.endpoints.cluster} endpoints`;
    return `${quotedService(s.service)} ${s.trafficPolicy} ${counts} ${verdict}`;
  }).join("; ");
  return `${e.address} ${state}${left}${health} [${services}]`;
}

/** A Service's name quoted for one line of the log or `kube-gw plan`: escaped and bounded. */
export function quotedService(service: string): string {
  return JSON.stringify(service.length > 300 ? `${service.slice(0, 300)}…` : service);
}
