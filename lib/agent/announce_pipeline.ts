/**
 * The announce pipeline: events → desired state → announce gate → announced
 * set.
 *
 * Service events update the desired state, EndpointSlice events the endpoint
 * index, kube-proxy's health the health gate; each re-evaluates, in the
 * announce gate, the addresses it may have changed, and the addresses whose
 * announced state flipped are handed on (to be planned). The gate is built
 * only after the first complete list of every source (else a restart would
 * withdraw everything); one timer, on an injected {@linkcode Clock}, follows
 * the gate's earliest hold-down. No I/O.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Cidr } from "../base/cidr.ts";
import type { Clock, TimerId } from "../base/clock.ts";
import type { ServiceRecord } from "../service/record.ts";
import type { AddressExplanation, AnnounceMode, HealthGate } from "./announce.ts";
import { AnnounceGate, type GateInputs, type GateStep } from "./announce_gate.ts";
import { type DesiredChange, DesiredState } from "./desired.ts";
import type { EndpointSliceRecord } from "./endpoint_slice.ts";
import { EndpointIndex } from "./endpoints.ts";
import type { AddressStateName, AgentObserver } from "./observer.ts";
import { type AddressOptions, type AddressSource } from "../service/eligibility.ts";

const log = getLogger(["kube-gw", "reconciler"]);

/** Options for {@linkcode AnnouncePipeline}. */
export interface AnnouncePipelineOptions {
  readonly networks: readonly Cidr[];
  /** Which addresses of a Service to take (`--external-ips`, `--class`). */
  readonly addresses: AddressOptions;
  /**
   * `ready`: announce only addresses with a usable endpoint (fed through
   * {@linkcode AnnouncePipeline.replaceSlices} and friends); `always`: ignore endpoints.
   */
  readonly announce: AnnounceMode;
  /** Hold-down before an address comes back, in milliseconds (`--announce-delay`); 0 disables. */
  readonly announceDelayMs: number;
  /** Half-life of the flap penalty, in milliseconds (`--announce-damping`); 0 disables. */
  readonly announceDampingMs: number;
  /** This gateway's node, for `externalTrafficPolicy: Local`. */
  readonly nodeName?: string;
  /** The hold-down timer runs on it. */
  readonly clock: Clock;
  readonly observer: AgentObserver;
  /** Called with the addresses whose announced state flipped, after each gate step that flipped any. */
  readonly onFlip: (addresses: readonly string[]) => void;
}

/** Keeps the announced set up to date as Services, EndpointSlices and health change. */
export class AnnouncePipeline {
  readonly #o: AnnouncePipelineOptions;
  readonly #desired: DesiredState;
  readonly #index: EndpointIndex;
  readonly #inputs: GateInputs;
  #health: HealthGate = { open: true };
  /** Built by {@linkcode open}; undefined before. */
  #gate: AnnounceGate | undefined;
  #expiryTimer: TimerId | undefined;
  #expiryAt: number | undefined;
  #stopped = false;

  constructor(options: AnnouncePipelineOptions) {
    this.#o = options;
    this.#desired = new DesiredState(options.networks, options.addresses);
    this.#index = new EndpointIndex(options.nodeName);
    const desired = this.#desired;
    const index = this.#index;
    const health = () => this.#health;
    this.#inputs = {
      get health() {
        return health();
      },
      claimants: (address) => desired.claimantsOf(address),
      counts: (service, family) => index.counts(service, family),
    };
  }

  /** `--announce`: whether EndpointSlices take part. */
  get mode(): AnnounceMode {
    return this.#o.announce;
  }

  /** The desired addresses (claimed by a Service), announced or not. */
  get desired(): ReadonlySet<string> {
    return new Set(this.#desired.addresses.keys());
  }

  /** The addresses the gate lets through; empty before {@linkcode open}. A live view. */
  get announced(): ReadonlySet<string> {
    return this.#gate?.announced ?? new Set();
  }

  /** The kube-proxy health gate as last set. */
  get health(): HealthGate {
    return this.#health;
  }

  /** Addresses by state (announced, or each withheld reason); empty before {@linkcode open}. */
  get stateCounts(): ReadonlyMap<AddressStateName, number> {
    return this.#gate?.stateCounts ?? new Map();
  }

  /** The desired addresses, in no particular order, without a copy. */
  desiredAddresses(): Iterable<string> {
    return this.#desired.addresses.keys();
  }

  /** Where a desired address comes from, over its Services. */
  sourcesOf(address: string): readonly AddressSource[] {
    return this.#desired.sourcesOf(address);
  }

  /** Why a desired address is announced or withheld; undefined before {@linkcode open}. */
  explain(address: string): AddressExplanation | undefined {
    return this.#gate?.explain(address, this.#inputs);
  }

  /** A complete list of the Services in `namespace`, or in all when undefined. */
  replace(services: ServiceRecord[], namespace: string | undefined): void {
    this.#changed(this.#desired.replace(services, namespace));
  }

  /** A Service was added or changed. */
  upsert(service: ServiceRecord): void {
    this.#changed(this.#desired.upsert(service));
  }

  /** A Service was deleted. */
  delete(namespace: string, name: string): void {
    this.#changed(this.#desired.delete(namespace, name));
  }

  #changed(change: DesiredChange): void {
    for (const r of change.newRejections) {
      log.warn(r.message);
      this.#o.observer.rejected(r.reason);
    }
    this.#evaluate(change.addresses);
  }

  /** A complete list of the EndpointSlices in `namespace`, or in all when undefined. */
  replaceSlices(slices: EndpointSliceRecord[], namespace: string | undefined): void {
    this.#servicesChanged(this.#index.replace(slices, namespace));
  }

  /** An EndpointSlice was added or changed. */
  upsertSlice(slice: EndpointSliceRecord): void {
    this.#servicesChanged(this.#index.upsert(slice));
  }

  /** An EndpointSlice was deleted. */
  deleteSlice(slice: { readonly namespace: string; readonly name: string }): void {
    this.#servicesChanged(this.#index.delete(slice));
  }

  /**
   * kube-proxy's health gate. When it opens or closes every desired address is
   * re-evaluated; a new reason alone changes only what is reported.
   */
  setHealth(health: HealthGate): void {
    const flipped = health.open !== this.#health.open;
    this.#health = health;
    if (flipped) this.#evaluate(this.#desired.addresses.keys());
  }

  /**
   * Builds the announce gate and evaluates every address: what is desired,
   * and what the interface `held` at start (so an address nobody claims any
   * more is withdrawn). Call after the first complete list of every source;
   * once only, later calls do nothing.
   */
  open(held: ReadonlySet<string>): void {
    if (this.#gate) return;
    this.#gate = new AnnounceGate({
      mode: this.#o.announce,
      delayMs: this.#o.announceDelayMs,
      dampingHalfLifeMs: this.#o.announceDampingMs,
      nodeName: this.#o.nodeName,
      announced: held,
    });
    const all = new Set(this.#desired.addresses.keys());
    for (const a of held) all.add(a);
    this.#evaluate(all);
  }

  /** Stops the hold-down timer for good. */
  stop(): void {
    this.#stopped = true;
    this.#o.clock.clearTimeout(this.#expiryTimer);
  }

  /** Services whose endpoint verdict changed: re-evaluate their addresses. */
  #servicesChanged(services: readonly string[]): void {
    if (services.length === 0 || !this.#gate) return;
    const addresses: string[] = [];
    for (const s of services) for (const a of this.#desired.addressesOf(s)) addresses.push(a);
    this.#evaluate(addresses);
  }

  /** Re-evaluates `addresses` in the gate (once it is open). */
  #evaluate(addresses: Iterable<string>): void {
    if (!this.#gate) return;
    this.#stepped(this.#gate.evaluate(addresses, this.#inputs, this.#o.clock.now()));
  }

  /** What a gate step changed: logs its warnings, hands on its flips, re-arms the expiry timer. */
  #stepped(step: GateStep): void {
    for (const w of step.warnings) log.warn(w);
    this.#o.observer.addressStates(this.#gate!.stateCounts);
    if (step.changed.length > 0) this.#o.onFlip(step.changed);
    this.#armExpiry();
  }

  #armExpiry(): void {
    const due = this.#gate?.nextExpiry;
    if (due === this.#expiryAt || this.#stopped) return;
    const clock = this.#o.clock;
    clock.clearTimeout(this.#expiryTimer);
    this.#expiryTimer = undefined;
    this.#expiryAt = due;
    if (due === undefined) return;
    this.#expiryTimer = clock.setTimeout(() => {
      this.#expiryTimer = undefined;
      this.#expiryAt = undefined;
      if (this.#gate) this.#stepped(this.#gate.expire(this.#inputs, clock.now()));
    }, Math.max(0, due - clock.now()));
  }
}
