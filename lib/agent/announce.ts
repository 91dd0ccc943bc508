/**
 * The announce decision: which desired addresses the router may announce,
 * and why the others are withheld. Pure: no I/O; time comes in as `now`.
 *
 * An address is announced exactly when
 * - the kube-proxy health gate is open, and
 * - at least one Service that claims it qualifies (see {@linkcode serviceVerdict}), and
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
export const REASON_TEXT: Readonly<Record<WithheldReason, string>> = {
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

/** What the gate reads at each evaluation; lookups must be pure and cheap. */
export interface GateInputs {
  readonly health: HealthGate;
  /** The Services that claim a desired address; empty when it is no longer desired. */
  claimants(address: string): readonly Claimant[];
  /** Usable endpoints of a Service (`namespace/name`) for an address family. */
  counts(service: string, family: 4 | 6): EndpointCounts;
}

/** A Service's own verdict on an address of the given family. */
export type ServiceVerdict =
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
export function serviceVerdict(
  c: Claimant,
  counts: EndpointCounts,
  mode: AnnounceMode,
  nodeName: string | undefined,
): ServiceVerdict {
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
const FAILURE_ORDER: readonly ServiceVerdict[] = [
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
    const v = serviceVerdict(c, counts(c.service, family), mode, nodeName);
    if (v === "qualifies") return { holds: true, by: c.service };
    worst = Math.min(worst, FAILURE_ORDER.indexOf(v));
  }
  const reason = (FAILURE_ORDER[worst] ?? "no_usable_endpoint") as Exclude<
    ServiceVerdict,
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

/** Options for {@linkcode AnnounceGate}. */
export interface AnnounceGateOptions {
  /** @default "ready" */
  readonly mode?: AnnounceMode;
  /** Hold-down in milliseconds; 0 disables. @default 2000 */
  readonly delayMs?: number;
  /** This gateway's node; without it Local Services are never announced. */
  readonly nodeName?: string;
  /**
   * Addresses on the interface at start: they count as announced, so one that
   * qualifies at its first evaluation stays without a hold-down (a restart
   * changes nothing), and one that is withdrawn waits for it to come back.
   */
  readonly announced?: Iterable<string>;
}

/** What one evaluation changed. */
export interface GateStep {
  /**
   * Addresses whose announced state flipped (an address on the interface at
   * start counts as announced): the `touched` set for the plan.
   */
  readonly changed: readonly string[];
  /** New one-line warnings (each said once per gate). */
  readonly warnings: readonly string[];
}

/** One Service's part in an explanation. */
export interface ServiceExplanation {
  readonly service: string;
  readonly trafficPolicy: TrafficPolicy;
  readonly verdict: ServiceVerdict;
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
  const state = e.state === "announced" ? "announced" : `withheld: ${REASON_TEXT[e.state]}`;
  const left = e.holdDownUntil !== undefined
    ? ` (${Math.max(0, Math.ceil((e.holdDownUntil - now) / 1000))}s left)`
    : "";
  const health = e.state === "kube_proxy_unhealthy" && e.health ? ` (${e.health})` : "";
  const services = e.services.map((s) => {
    const verdict = s.verdict === "qualifies" ? "ok" : s.verdict;
    const counts = s.trafficPolicy === "Local"
      ? `${s.endpoints.local} on node, ${s.endpoints.cluster} in cluster`
      : `${s.endpoints.cluster} endpoints`;
    return `${quoted(s.service)} ${s.trafficPolicy} ${counts} ${verdict}`;
  }).join("; ");
  return `${e.address} ${state}${left}${health} [${services}]`;
}

/** Services warned about for the proxy label, at most this many remembered. */
const MAX_WARNED = 10_000;

/** One line naming a Service, escaped and bounded for the log. */
function quoted(service: string): string {
  return JSON.stringify(service.length > 300 ? `${service.slice(0, 300)}…` : service);
}

/**
 * The announce gate, kept up to date incrementally. The caller re-evaluates
 * the addresses an event may have changed; the gate keeps, per address, since
 * when its condition has held, and which addresses wait for their hold-down
 * (in order of expiry, so {@linkcode nextExpiry} is O(1)).
 */
export class AnnounceGate {
  readonly #mode: AnnounceMode;
  readonly #delayMs: number;
  readonly #nodeName: string | undefined;
  readonly #states = new Map<string, AddressState>();
  readonly #announced = new Set<string>();
  /** Addresses in hold-down → when it ends; insertion order is expiry order. */
  readonly #pending = new Map<string, number>();
  /** Addresses that left the desired set after being announced → when; in time order. */
  readonly #recent = new Map<string, number>();
  readonly #byState = new Map<AddressStateName, number>();
  readonly #warned = new Set<string>();
  /** Addresses on the interface at start, not evaluated yet. */
  readonly #seeded: Set<string>;
  #warnedNodeName = false;
  /** The latest `now` seen: time never goes back inside the gate. */
  #now = -Infinity;

  constructor(options: AnnounceGateOptions = {}) {
    this.#mode = options.mode ?? "ready";
    this.#delayMs = Math.max(0, options.delayMs ?? 2000);
    this.#nodeName = options.nodeName;
    this.#seeded = new Set(options.announced ?? []);
  }

  /** The addresses to hold on the interface: the desired set for the plan. */
  get announced(): ReadonlySet<string> {
    return this.#announced;
  }

  /** Addresses by state (announced, or each withheld reason), for the gauge. */
  get stateCounts(): ReadonlyMap<AddressStateName, number> {
    return this.#byState;
  }

  /** When the earliest hold-down ends; arm one timer for it and call {@linkcode expire}. */
  get nextExpiry(): number | undefined {
    for (const due of this.#pending.values()) return due;
    return undefined;
  }

  /**
   * Re-evaluates `addresses` at `now`. An address with no claimant leaves the
   * gate (withdrawn if it was announced).
   */
  evaluate(addresses: Iterable<string>, inputs: GateInputs, now: number): GateStep {
    const t = this.#tick(now);
    const changed: string[] = [];
    const warnings: string[] = [];
    for (const a of addresses) this.#evaluateOne(a, inputs, t, changed, warnings);
    return { changed, warnings };
  }

  /** Re-evaluates the addresses whose hold-down has ended by `now`. */
  expire(inputs: GateInputs, now: number): GateStep {
    const t = this.#tick(now);
    const due: string[] = [];
    for (const [a, at] of this.#pending) {
      if (at > t) break;
      due.push(a);
    }
    return this.evaluate(due, inputs, t);
  }

  /** Why an address is announced or withheld, as of the last evaluation. */
  explain(address: string, inputs: GateInputs): AddressExplanation | undefined {
    const state = this.#states.get(address);
    const claimants = inputs.claimants(address);
    if (!state || claimants.length === 0) return undefined;
    const family = familyOf(address);
    const services = claimants.map((c) => {
      const endpoints = inputs.counts(c.service, family);
      return {
        service: c.service,
        trafficPolicy: c.trafficPolicy,
        verdict: serviceVerdict(c, endpoints, this.#mode, this.#nodeName),
        endpoints,
      };
    });
    const name: AddressStateName = state.announced ? "announced" : state.reason ?? "hold_down";
    const until = this.#pending.get(address);
    return {
      address,
      state: name,
      services,
      ...(until !== undefined ? { holdDownUntil: until } : {}),
      ...(inputs.health.reason !== undefined ? { health: inputs.health.reason } : {}),
    };
  }

  #tick(now: number): number {
    this.#now = Math.max(this.#now, now);
    for (const [a, at] of this.#recent) {
      if (at + this.#delayMs > this.#now) break;
      this.#recent.delete(a);
    }
    return this.#now;
  }

  #evaluateOne(
    address: string,
    inputs: GateInputs,
    now: number,
    changed: string[],
    warnings: string[],
  ): void {
    const prev = this.#states.get(address);
    const claimants = inputs.claimants(address);
    if (claimants.length === 0) {
      if (this.#seeded.delete(address)) {
        this.#recent.delete(address);
        this.#recent.set(address, now);
        changed.push(address);
      }
      if (!prev) return;
      if (prev.announced || prev.wasAnnounced) {
        this.#recent.delete(address);
        this.#recent.set(address, now);
      }
      this.#pending.delete(address);
      if (prev.announced) changed.push(address);
      this.#set(address, undefined);
      return;
    }
    this.#warn(claimants, warnings);
    const condition = addressCondition(
      address,
      claimants,
      (service, family) => inputs.counts(service, family),
      inputs.health,
      this.#mode,
      this.#nodeName,
    );
    // On the interface at start: announced already, so a qualifying address stays.
    // Withdrawn lately, before it left the desired set: coming back waits.
    const seed: AddressState | undefined = prev ??
      (this.#seeded.has(address)
        ? { since: undefined, announced: true, wasAnnounced: true, reason: undefined }
        : this.#recent.has(address)
        ? { since: undefined, announced: false, wasAnnounced: true, reason: undefined }
        : undefined);
    this.#recent.delete(address);
    this.#seeded.delete(address);
    const step = stepAddress(seed, condition, now, this.#delayMs);
    if (step.due === undefined) this.#pending.delete(address);
    else if (!this.#pending.has(address)) this.#pending.set(address, step.due);
    if ((seed?.announced ?? false) !== step.state.announced) changed.push(address);
    this.#set(address, step.state);
  }

  #set(address: string, state: AddressState | undefined): void {
    const prev = this.#states.get(address);
    if (prev) this.#count(prev, -1);
    if (state === undefined) {
      this.#states.delete(address);
      this.#announced.delete(address);
      return;
    }
    this.#states.set(address, state);
    if (state.announced) this.#announced.add(address);
    else this.#announced.delete(address);
    this.#count(state, 1);
  }

  #count(state: AddressState, delta: number): void {
    const name: AddressStateName = state.announced ? "announced" : state.reason ?? "hold_down";
    const n = (this.#byState.get(name) ?? 0) + delta;
    if (n === 0) this.#byState.delete(name);
    else this.#byState.set(name, n);
  }

  #warn(claimants: readonly Claimant[], warnings: string[]): void {
    for (const c of claimants) {
      if (c.proxySkipped && !this.#warned.has(c.service)) {
        if (this.#warned.size >= MAX_WARNED) this.#warned.clear();
        this.#warned.add(c.service);
        warnings.push(
          `not announcing the addresses of Service ${
            quoted(c.service)
          }: it carries the label service.kubernetes.io/service-proxy-name, so kube-proxy does not serve it`,
        );
      }
      if (
        c.trafficPolicy === "Local" && this.#mode === "ready" && this.#nodeName === undefined &&
        !c.proxySkipped && !this.#warnedNodeName
      ) {
        this.#warnedNodeName = true;
        warnings.push(
          `not announcing Services with externalTrafficPolicy: Local (first: ${
            quoted(c.service)
          }): no node name is known, so kube-gw cannot tell whether this node has an endpoint (set --node-name or KUBEGW_NODE_NAME)`,
        );
      }
    }
  }
}
