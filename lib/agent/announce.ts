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
 *   for `delayMs` since they last became true, and
 * - the address is not damped: each time its condition breaks it gains a
 *   penalty that decays with a half-life, and it may come back only once the
 *   penalty is down to {@linkcode REUSE_LIMIT} (route flap damping, as BGP
 *   does it, RFC 2439). One break alone stays under the limit, so a single
 *   outage comes back after the hold-down; a condition that keeps breaking
 *   keeps the address withdrawn until it has been steady for a while, at
 *   most {@linkcode MAX_SUPPRESS_HALF_LIVES} half-lives after the last break.
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
import { quoted } from "../base/text.ts";
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
  damped: "damped after repeated withdrawals",
};

/** The penalty one break of an address's condition adds. */
export const FLAP_PENALTY = 1000;
/**
 * An address comes back only once its penalty has decayed to this. Equal to
 * {@linkcode FLAP_PENALTY}: one break alone never delays the return beyond the
 * hold-down; a second one before the first has decayed does.
 */
export const REUSE_LIMIT = 1000;
/**
 * The penalty is capped so that an address that stops flapping comes back at
 * most this many half-lives after its last break.
 */
export const MAX_SUPPRESS_HALF_LIVES = 10;
const MAX_PENALTY = REUSE_LIMIT * 2 ** MAX_SUPPRESS_HALF_LIVES;

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
  /** The flap penalty as of `penaltyAt`; it halves every half-life after. @default 0 */
  readonly penalty?: number;
  /** When `penalty` was last set. */
  readonly penaltyAt?: number;
}

/** The penalty of `state` decayed to `now`. */
export function penaltyAt(
  state: AddressState | undefined,
  now: number,
  halfLifeMs: number,
): number {
  const p = state?.penalty ?? 0;
  if (p === 0 || halfLifeMs <= 0) return 0;
  return p * 2 ** (-(now - (state?.penaltyAt ?? now)) / halfLifeMs);
}

/** When the penalty of `state` will have decayed to {@linkcode REUSE_LIMIT}. */
function reuseAt(state: AddressState | undefined, halfLifeMs: number): number {
  const p = state?.penalty ?? 0;
  if (p <= REUSE_LIMIT || halfLifeMs <= 0) return -Infinity;
  return (state?.penaltyAt ?? 0) + halfLifeMs * Math.log2(p / REUSE_LIMIT);
}

/** The result of {@linkcode stepAddress}. */
export interface AddressStep {
  readonly state: AddressState;
  /** When the hold-down ends, if the address waits for it. */
  readonly due: number | undefined;
}

/** How long an address waits before it comes back. */
export interface Timing {
  /** The hold-down in milliseconds (`--announce-delay`); 0 disables it. */
  readonly delayMs: number;
  /** The half-life of the flap penalty (`--announce-damping`); 0 disables damping. */
  readonly dampingHalfLifeMs: number;
}

/**
 * The pure transition of one address given its condition at `now`.
 * A failing condition withdraws at once, and when it held until now it adds
 * {@linkcode FLAP_PENALTY}; a holding one announces when the address was never
 * announced, or when the condition has held for the hold-down and the penalty
 * has decayed to {@linkcode REUSE_LIMIT}.
 */
export function stepAddress(
  prev: AddressState | undefined,
  condition: Condition,
  now: number,
  timing: Timing,
): AddressStep {
  const wasAnnounced = (prev?.wasAnnounced ?? false) || (prev?.announced ?? false);
  const halfLife = timing.dampingHalfLifeMs;
  if (!condition.holds) {
    const broke = prev?.since !== undefined && halfLife > 0;
    const penalty = broke
      ? Math.min(penaltyAt(prev, now, halfLife) + FLAP_PENALTY, MAX_PENALTY)
      : prev?.penalty ?? 0;
    return {
      state: {
        since: undefined,
        announced: false,
        wasAnnounced,
        reason: condition.reason,
        ...(penalty > 0 ? { penalty, penaltyAt: broke ? now : prev?.penaltyAt } : {}),
      },
      due: undefined,
    };
  }
  const since = prev?.since ?? now;
  const kept = prev?.penalty ? { penalty: prev.penalty, penaltyAt: prev.penaltyAt } : {};
  const holdEnd = timing.delayMs > 0 ? since + timing.delayMs : -Infinity;
  const reuse = reuseAt(prev, halfLife);
  if (prev?.announced || !wasAnnounced || (now >= holdEnd && now >= reuse)) {
    return {
      state: { since, announced: true, wasAnnounced: true, reason: undefined, ...kept },
      due: undefined,
    };
  }
  return {
    state: {
      since,
      announced: false,
      wasAnnounced,
      reason: reuse > holdEnd ? "damped" : "hold_down",
      ...kept,
    },
    due: Math.max(holdEnd, reuse),
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
  /** When the hold-down (or the damping) ends, while in `hold_down` or `damped`. */
  readonly holdDownUntil?: number;
  /** The flap penalty now, when there is one (see {@linkcode REUSE_LIMIT}). */
  readonly penalty?: number;
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
  const penalty = e.penalty !== undefined && e.penalty >= 1
    ? ` (flap penalty ${Math.round(e.penalty)}, returns at ${REUSE_LIMIT})`
    : "";
  // Counts are of the address's family: a dual-stack Service may be withheld in one family only.
  const family = `IPv${familyOf(e.address)}`;
  const services = e.services.map((s) => {
    const verdict = s.verdict === "qualifies" ? "ok" : s.verdict;
    const counts = s.trafficPolicy === "Local"
      ? `${s.endpoints.local} ${family} on node, ${s.endpoints.cluster} in cluster`
      : `${s.endpoints.cluster} ${family} endpoints`;
    return `${quotedService(s.service)} ${s.trafficPolicy} ${counts} ${verdict}`;
  }).join("; ");
  return `${e.address} ${state}${left}${health}${penalty} [${services}]`;
}

/** A Service's name quoted for one line of the log or `kube-gw plan`: escaped and bounded. */
export function quotedService(service: string): string {
  return quoted(service, 300);
}
