/**
 * The announce gate: the rule of `announce.ts` kept up to date incrementally
 * over every desired address, with the hold-downs in order of expiry and the
 * one-time warnings. Pure: no I/O; time comes in as `now`.
 *
 * @module
 */

import type { EndpointCounts } from "./endpoints.ts";
import { familyOf } from "../base/ip.ts";
import {
  addressCondition,
  type AddressExplanation,
  type AddressState,
  type AddressStateName,
  type AnnounceMode,
  announceVerdict,
  type Claimant,
  type HealthGate,
  penaltyAt,
  quotedService,
  stepAddress,
  type Timing,
} from "./announce.ts";

/** Services warned about for the proxy label, at most this many remembered. */
const MAX_WARNED = 10_000;

/** What the gate reads at each evaluation; lookups must be pure and cheap. */
export interface GateInputs {
  readonly health: HealthGate;
  /** The Services that claim a desired address; empty when it is no longer desired. */
  claimants(address: string): readonly Claimant[];
  /** Usable endpoints of a Service (`namespace/name`) for an address family. */
  counts(service: string, family: 4 | 6): EndpointCounts;
}

/** Options for {@linkcode AnnounceGate}. */
export interface AnnounceGateOptions {
  /** `--announce`. */
  readonly mode: AnnounceMode;
  /** Hold-down in milliseconds (`--announce-delay`); 0 disables. */
  readonly delayMs: number;
  /** Half-life of the flap penalty (`--announce-damping`); 0 disables damping. */
  readonly dampingHalfLifeMs: number;
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

/**
 * The announce gate, kept up to date incrementally. The caller re-evaluates
 * the addresses an event may have changed; the gate keeps, per address, since
 * when its condition has held and its flap penalty, and which addresses wait
 * for their hold-down (in order of expiry, so {@linkcode nextExpiry} is O(1))
 * or for their penalty to decay (damped; the earliest is cached).
 */
export class AnnounceGate {
  readonly #mode: AnnounceMode;
  readonly #delayMs: number;
  readonly #timing: Timing;
  readonly #nodeName: string | undefined;
  readonly #states = new Map<string, AddressState>();
  readonly #announced = new Set<string>();
  /** Addresses in hold-down → when it ends; insertion order is expiry order. */
  readonly #pending = new Map<string, number>();
  /** Damped addresses → when they may return; in no order. */
  readonly #damped = new Map<string, number>();
  /** The earliest return of a damped address; undefined: not known, scan. */
  #dampedNext: number | undefined;
  /** Addresses that left the desired set after being announced → when; in time order. */
  readonly #recent = new Map<string, number>();
  readonly #byState = new Map<AddressStateName, number>();
  readonly #warned = new Set<string>();
  /** Addresses on the interface at start, not evaluated yet. */
  readonly #seeded: Set<string>;
  #warnedNodeName = false;
  /** The latest `now` seen: time never goes back inside the gate. */
  #now = -Infinity;

  constructor(options: AnnounceGateOptions) {
    this.#mode = options.mode;
    this.#delayMs = Math.max(0, options.delayMs);
    this.#timing = {
      delayMs: this.#delayMs,
      dampingHalfLifeMs: Math.max(0, options.dampingHalfLifeMs),
    };
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

  /**
   * When the earliest hold-down or damping ends; arm one timer for it and
   * call {@linkcode expire}.
   */
  get nextExpiry(): number | undefined {
    let next: number | undefined;
    for (const due of this.#pending.values()) {
      next = due;
      break;
    }
    if (this.#damped.size > 0) {
      if (this.#dampedNext === undefined) {
        let min = Infinity;
        for (const due of this.#damped.values()) if (due < min) min = due;
        this.#dampedNext = min;
      }
      if (next === undefined || this.#dampedNext < next) next = this.#dampedNext;
    }
    return next;
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
    if (this.#dampedNext === undefined || this.#dampedNext <= t) {
      for (const [a, at] of this.#damped) if (at <= t) due.push(a);
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
        verdict: announceVerdict(c, endpoints, this.#mode, this.#nodeName),
        endpoints,
      };
    });
    const name: AddressStateName = state.announced ? "announced" : state.reason ?? "hold_down";
    const until = this.#pending.get(address) ?? this.#damped.get(address);
    const penalty = penaltyAt(state, this.#now, this.#timing.dampingHalfLifeMs);
    return {
      address,
      state: name,
      services,
      ...(until !== undefined ? { holdDownUntil: until } : {}),
      ...(penalty >= 1 ? { penalty } : {}),
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
      this.#unschedule(address);
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
    const step = stepAddress(seed, condition, now, this.#timing);
    this.#schedule(address, step.due, step.state.reason === "damped");
    if ((seed?.announced ?? false) !== step.state.announced) changed.push(address);
    this.#set(address, step.state);
  }

  /**
   * Keeps `address` waiting until `due` (none: not waiting): in the ordered
   * hold-down map, whose dues only grow, or among the damped ones.
   */
  #schedule(address: string, due: number | undefined, damped: boolean): void {
    if (due === undefined) return this.#unschedule(address);
    if (damped) {
      this.#pending.delete(address);
      const was = this.#damped.get(address);
      if (was === due) return;
      if (was !== undefined && was === this.#dampedNext) this.#dampedNext = undefined;
      this.#damped.set(address, due);
      if (this.#dampedNext !== undefined && due < this.#dampedNext) this.#dampedNext = due;
      if (this.#damped.size === 1) this.#dampedNext = due;
      return;
    }
    this.#unscheduleDamped(address);
    if (!this.#pending.has(address)) this.#pending.set(address, due);
  }

  #unschedule(address: string): void {
    this.#pending.delete(address);
    this.#unscheduleDamped(address);
  }

  #unscheduleDamped(address: string): void {
    const was = this.#damped.get(address);
    if (was === undefined) return;
    this.#damped.delete(address);
    if (was === this.#dampedNext) this.#dampedNext = undefined;
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
            quotedService(c.service)
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
            quotedService(c.service)
          }): no node name is known, so kube-gw cannot tell whether this node has an endpoint (set --node-name or KUBEGW_NODE_NAME)`,
        );
      }
    }
  }
}
