/**
 * The reconciler: keeps the managed interface equal to the announced set.
 *
 * Service events update the desired state, EndpointSlice events the endpoint
 * index, kube-proxy's health the health gate; each re-evaluates, in the
 * announce gate, the addresses it may have changed, and the addresses whose
 * announced state flipped schedule a reconcile. Data flows one way: events →
 * desired set → gate → plan → `ip`. The gate is evaluated only after the
 * first complete list of every source (else a restart would withdraw
 * everything); one timer follows the gate's earliest hold-down.
 *
 * A reconcile plans from the gate's announced set; a burst of events
 * within the coalescing window becomes one reconcile, and events that arrive
 * while `ip` runs are picked up by the next one. The kernel state is read at
 * the first reconcile, after any failure and on every resync; in between the
 * reconciler trusts what it applied, so a reconcile costs one `ip` process.
 * Nothing is changed before the first complete list. Time (the coalescing
 * window, the retry backoff, the resync) runs on an injected {@linkcode Clock}.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { Backoff, type BackoffOptions } from "../base/backoff.ts";
import type { Cidr } from "../base/cidr.ts";
import {
  type AddressExplanation,
  type AddressStateName,
  AnnounceGate,
  type AnnounceMode,
  formatExplanation,
  type GateInputs,
  type GateStep,
  type HealthGate,
} from "./announce.ts";
import { type DesiredChange, DesiredState } from "./desired.ts";
import type { EndpointSliceRecord } from "./endpoint_slice.ts";
import { EndpointIndex } from "./endpoints.ts";
import { describeFight, FightDetector } from "./fight_detector.ts";
import { familyOf } from "../base/ip.ts";
import { type AgentObserver, quietObserver } from "./observer.ts";
import { isEmptyPlan, managedView, plan, planTouched } from "./plan.ts";
import type { ServiceRecord } from "../service/record.ts";
import { type AddressStore, InterruptedError, type Plan } from "../kernel/address_store.ts";
import { type Clock, type TimerId } from "../base/clock.ts";
import { type AddressOptions, type AddressSource } from "../service/eligibility.ts";

const log = getLogger(["kube-gw", "reconciler"]);

function countV6(addresses: Iterable<string>): number {
  let n = 0;
  for (const a of addresses) if (familyOf(a) === 6) n++;
  return n;
}

/** Raised when the interface holds an address kube-gw must not manage around. */
export class ConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConflictError";
  }
}

/** Options for {@linkcode Reconciler}. */
export interface ReconcilerOptions {
  readonly store: AddressStore;
  readonly networks: readonly Cidr[];
  /** Coalescing window in milliseconds. @default 2 */
  readonly windowMs?: number;
  /** Re-read the interface and repair drift this often; 0 disables. @default 30000 */
  readonly resyncMs?: number;
  /** Delays before retrying a failed reconcile. @default 1 s doubling to 30 s, with jitter */
  readonly retryBackoff?: BackoffOptions;
  /** The coalescing window, retry delays and resync run on it (`systemClock` in the agent). */
  readonly clock: Clock;
  /** @default quietObserver */
  readonly observer?: AgentObserver;
  /** Which addresses of a Service to take. @default externalIPs only */
  readonly addresses?: AddressOptions;
  /**
   * `ready`: announce only addresses with a usable endpoint (fed through
   * {@linkcode Reconciler.replaceSlices} and friends); `always`: ignore endpoints.
   * @default "always"
   */
  readonly announce?: AnnounceMode;
  /** Hold-down before an address comes back, in milliseconds; 0 disables. @default 0 */
  readonly announceDelayMs?: number;
  /** This gateway's node, for `externalTrafficPolicy: Local`. */
  readonly nodeName?: string;
  /**
   * On stop, how long a running `ip` may finish before it is stopped (SIGTERM,
   * then SIGKILL; lib/kernel/spawn.ts). @default 5000
   */
  readonly stopGraceMs?: number;
}

/** One address as `kube-gw plan` and `/status` show it. */
export interface AddressStatus extends Omit<AddressExplanation, "holdDownUntil"> {
  /** Where the address comes from, over its Services. */
  readonly sources: readonly AddressSource[];
  /** Milliseconds left in the hold-down, while in `hold_down`. */
  readonly holdDownLeftMs?: number;
  /** The explanation as one line (the address first), as `kube-gw plan` prints it. */
  readonly line: string;
}

/** Everything `/status` serves. */
export interface StatusReport {
  /** The kube-proxy health gate. */
  readonly health: HealthGate;
  /** Addresses by state. */
  readonly counts: Readonly<Partial<Record<AddressStateName, number>>>;
  /** One entry per desired address, sorted by address. */
  readonly addresses: readonly AddressStatus[];
}

/** Keeps the managed interface equal to the announced addresses. */
export class Reconciler {
  readonly #o: ReconcilerOptions;
  readonly #clock: Clock;
  readonly #observer: AgentObserver;
  readonly #desired: DesiredState;
  readonly #index: EndpointIndex;
  readonly #retry: Backoff;
  readonly #inputs: GateInputs;
  #health: HealthGate = { open: true };
  /** Built at the first complete list ({@linkcode openGate}); undefined before. */
  #gate: AnnounceGate | undefined;
  /** The managed addresses of the first read: what the gate counts as announced at start. */
  #startHeld: ReadonlySet<string> | undefined;
  #expiryTimer: TimerId | undefined;
  #expiryAt: number | undefined;
  #current = new Set<string>();
  /** Read the interface before the next plan instead of trusting `#current`. */
  #reread = true;
  /**
   * Addresses whose desired state changed since the last plan; every other
   * address is desired exactly when it is in `#current`. Undefined after a
   * read of the interface: the next plan covers every address.
   */
  #touched: Set<string> | undefined;
  /** IPv6 addresses among those last read or applied, for the held-address gauge. */
  #heldV6 = 0;
  #synced = false;
  #timer: TimerId | undefined;
  #resyncTimer: TimerId | undefined;
  #running: Promise<void> | undefined;
  #dirty = false;
  #stopped = false;
  /** The tail of the store's queue: see {@linkcode Reconciler.renew}. */
  #queue: Promise<void> = Promise.resolve();
  /** Whether `#current` is what the interface held after our last apply (fight detection). */
  #trusted = false;
  readonly #fights = new FightDetector();
  /** Aborts a running `ip` once the stop's grace is over. */
  readonly #kill = new AbortController();
  /** Undefined before the first reconcile; then the last one's error, or null. */
  #lastError: string | null | undefined;

  constructor(options: ReconcilerOptions) {
    this.#o = options;
    this.#clock = options.clock;
    this.#observer = options.observer ?? quietObserver;
    this.#retry = new Backoff({ initialMs: 1000, maxMs: 30_000, ...options.retryBackoff });
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

  /** The desired addresses (claimed by a Service), announced or not. */
  get desired(): ReadonlySet<string> {
    return new Set(this.#desired.addresses.keys());
  }

  /** The addresses the gate lets through: what the interface is brought to. */
  get announced(): ReadonlySet<string> {
    return this.#gate?.announced ?? new Set();
  }

  /** The Services that claim an address. */
  claimants(address: string): string[] {
    return this.#desired.claimants(address);
  }

  /** Whether the first complete list arrived and the last reconcile succeeded. */
  get ready(): boolean {
    return this.notReady() === undefined;
  }

  /** Why the reconciler is not ready, or undefined when it is. */
  notReady(): string | undefined {
    if (!this.#synced) {
      return (this.#o.announce ?? "always") === "ready"
        ? "waiting for the first complete list of Services and EndpointSlices"
        : "waiting for the first complete list of Services";
    }
    if (this.#lastError === undefined) return "waiting for the first reconcile";
    if (this.#lastError !== null) return `the last reconcile failed: ${this.#lastError}`;
    if (this.#fights.fighting) {
      return "another program keeps changing the managed addresses (see the warning in the log)";
    }
    return undefined;
  }

  replace(services: ServiceRecord[], namespace: string | undefined): void {
    this.#changed(this.#desired.replace(services, namespace));
  }

  upsert(service: ServiceRecord): void {
    this.#changed(this.#desired.upsert(service));
  }

  delete(namespace: string, name: string): void {
    this.#changed(this.#desired.delete(namespace, name));
  }

  #changed(change: DesiredChange): void {
    for (const r of change.newRejections) {
      log.warn(r.message);
      this.#observer.rejected(r.reason);
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
    this.#stepped(this.#gate.evaluate(addresses, this.#inputs, this.#clock.now()));
  }

  /** What a gate step changed: logs its warnings, plans its flips, re-arms the expiry timer. */
  #stepped(step: GateStep): void {
    for (const w of step.warnings) log.warn(w);
    for (const a of step.changed) this.#touched?.add(a);
    this.#observer.addressStates(this.#gate!.stateCounts);
    if (step.changed.length > 0) this.#schedule();
    this.#armExpiry();
  }

  #armExpiry(): void {
    const due = this.#gate?.nextExpiry;
    if (due === this.#expiryAt || this.#stopped) return;
    this.#clock.clearTimeout(this.#expiryTimer);
    this.#expiryTimer = undefined;
    this.#expiryAt = due;
    if (due === undefined) return;
    this.#expiryTimer = this.#clock.setTimeout(() => {
      this.#expiryTimer = undefined;
      this.#expiryAt = undefined;
      if (this.#gate) this.#stepped(this.#gate.expire(this.#inputs, this.#clock.now()));
    }, Math.max(0, due - this.#clock.now()));
  }

  /**
   * Builds the announce gate and evaluates every address: what is desired,
   * and what the interface held at the first read (so an address nobody
   * claims any more is withdrawn). Call after the first complete list of
   * every source; {@linkcode markSynced} does, and the one-shot commands.
   */
  openGate(): void {
    if (this.#gate) return;
    const held = this.#startHeld ?? new Set<string>();
    this.#gate = new AnnounceGate({
      mode: this.#o.announce ?? "always",
      delayMs: this.#o.announceDelayMs ?? 0,
      nodeName: this.#o.nodeName,
      announced: held,
    });
    const all = new Set(this.#desired.addresses.keys());
    for (const a of held) all.add(a);
    this.#evaluate(all);
  }

  /** Why each desired address is announced or withheld, for `/status` and `kube-gw plan`. */
  status(): StatusReport {
    const now = this.#clock.now();
    const addresses: AddressStatus[] = [];
    for (const address of this.#desired.addresses.keys()) {
      const e = this.#gate?.explain(address, this.#inputs);
      if (!e) continue;
      const { holdDownUntil, ...rest } = e;
      addresses.push({
        ...rest,
        sources: this.#desired.sourcesOf(address),
        ...(holdDownUntil !== undefined
          ? { holdDownLeftMs: Math.max(0, holdDownUntil - now) }
          : {}),
        line: formatExplanation(e, now),
      });
    }
    addresses.sort((x, y) => x.address.localeCompare(y.address, "en", { numeric: true }));
    return {
      health: this.#health,
      counts: Object.fromEntries(this.#gate?.stateCounts ?? []),
      addresses,
    };
  }

  /**
   * Opens the gate after the first complete list: from now on, reconciles
   * run. Starts the periodic resync.
   */
  markSynced(): void {
    if (this.#synced) return;
    // Before #synced: the gate's first step schedules nothing; the reconcile below plans it all.
    this.openGate();
    this.#synced = true;
    const resyncMs = this.#o.resyncMs ?? 30_000;
    if (resyncMs > 0) {
      this.#resyncTimer = this.#clock.setInterval(() => this.resync(), resyncMs);
    }
    this.#schedule(0);
  }

  /** Re-reads the interface at the next reconcile and repairs any drift. */
  resync(): void {
    this.#reread = true;
    this.#schedule(0);
  }

  #schedule(delay = this.#o.windowMs ?? 2): void {
    if (this.#stopped || !this.#synced) return;
    if (this.#running) {
      this.#dirty = true;
      return;
    }
    if (this.#timer !== undefined) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#reconcile().finally(() => {
        this.#running = undefined;
        if (this.#dirty) {
          this.#dirty = false;
          this.#schedule();
        }
      });
    }, delay);
  }

  async #reconcile(): Promise<void> {
    const started = this.#clock.now();
    const seconds = () => (this.#clock.now() - started) / 1000;
    try {
      const applied = await this.reconcileOnce();
      this.#lastError = null;
      this.#retry.reset();
      this.#observer.reconciled(isEmptyPlan(applied) ? "noop" : "changed", seconds());
    } catch (err) {
      this.#lastError = (err as Error).message;
      this.#observer.reconciled("error", seconds());
      const interrupted = err instanceof InterruptedError;
      if (this.#stopped) {
        // A stop is not an error: what `ip` left half done is read at the next start.
        if (interrupted) log.info("stopped while ip ran; the next start re-reads the interface");
        else log.info("stopped; the last reconcile failed: {error}", { error: this.#lastError });
        return;
      }
      const delay = this.#retry.next();
      // A signal that killed `ip` is most often a stop on its way (systemd signals the whole
      // unit at once): say so only if no stop came before the retry.
      if (!interrupted) {
        log.error("reconcile failed: {error}; retrying in {delay}ms", {
          error: this.#lastError,
          delay,
        });
      }
      if (this.#timer === undefined) {
        this.#timer = this.#clock.setTimeout(() => {
          this.#timer = undefined;
          if (interrupted) {
            log.warn("the last reconcile was interrupted: {error}; retrying now", {
              error: (err as Error).message,
            });
          }
          this.#schedule(0);
        }, delay);
      }
    }
  }

  /**
   * Reads the interface's managed host addresses, refusing on a conflict, and
   * reports them to the observer (so the address gauge is right from the start,
   * before the first list).
   */
  async readManaged(): Promise<Set<string>> {
    const held = await this.#read(true);
    this.#startHeld ??= new Set(held);
    return held;
  }

  async #read(refuseConflicts: boolean): Promise<Set<string>> {
    const view = managedView(await this.#o.store.read(this.#kill.signal), this.#o.networks);
    if (refuseConflicts && view.conflicts.length > 0) {
      const list = view.conflicts.map((c) => `${c.local}/${c.prefixlen}`).join(", ");
      throw new ConflictError(
        `the interface holds ${list}, which overlaps a managed network but is not a host address; kube-gw will not manage around it`,
      );
    }
    const held = new Set(view.hosts);
    this.#heldV6 = countV6(held);
    this.#report(held.size);
    return held;
  }

  /** The plan from the interface's state to the announced set. */
  async plan(): Promise<Plan> {
    this.openGate();
    return plan(this.announced, await this.readManaged());
  }

  /**
   * Brings the interface to the desired set once. Returns the plan applied
   * (empty when nothing changed). Throws when `ip` fails; the next call
   * re-reads the interface.
   */
  async reconcileOnce(): Promise<Plan> {
    this.openGate();
    if (this.#reread) {
      const read = await this.readManaged();
      if (this.#trusted) this.#watchForFights(read);
      this.#current = read;
      this.#reread = false;
      this.#touched = undefined;
    }
    const applied = await this.#apply(this.#planNext());
    this.#trusted = true;
    return applied;
  }

  /** Compares a read with what was applied: another writer shows as repeated drift. */
  #watchForFights(read: ReadonlySet<string>): void {
    const event = this.#fights.observe(this.#current, read);
    if (event?.kind === "started") {
      log.warn(describeFight(event.report));
      this.#observer.interfaceConflict(true);
    } else if (event?.kind === "ended") {
      log.info("the managed addresses have stopped changing behind kube-gw's back");
      this.#observer.interfaceConflict(false);
    }
  }

  /**
   * Removes every managed host address, whatever is desired, so BGP withdraws
   * them (`kube-gw drain`). A subnet that overlaps a managed network is not
   * kube-gw's and stays; it does not stop the drain. Returns the plan applied.
   */
  async drain(): Promise<Plan> {
    this.#current = await this.#read(false);
    this.#reread = false;
    this.#touched = new Set();
    return await this.#apply(plan([], this.#current));
  }

  /** Applies a plan, the one place that changes the interface and logs it. */
  async #apply(p: Plan): Promise<Plan> {
    if (isEmptyPlan(p)) return p;
    try {
      await this.#serial(async () => {
        await this.#o.store.apply(p, this.#kill.signal);
        for (const r of p.remove) this.#current.delete(r);
        for (const a of p.add) this.#current.add(a);
      });
    } catch (err) {
      this.#reread = true;
      this.#trusted = false;
      throw err;
    }
    for (const a of p.add) log.info("assuming address {address}", { address: a });
    for (const r of p.remove) log.info("forfeiting address {address}", { address: r });
    // A plan adds only what is missing and removes only what is there: the count follows it.
    this.#heldV6 += countV6(p.add) - countV6(p.remove);
    this.#report(this.#current.size);
    return p;
  }

  /**
   * The plan for this reconcile: every address after a read of the interface,
   * else only the addresses touched since the last plan. Starts a new touched
   * set, so changes that arrive while `ip` runs go into the next plan.
   */
  #planNext(): Plan {
    const touched = this.#touched;
    this.#touched = new Set();
    const announced = this.announced;
    return touched === undefined
      ? plan(announced, this.#current)
      : planTouched(touched, announced, this.#current);
  }

  #report(total: number): void {
    this.#observer.held(4, total - this.#heldV6);
    this.#observer.held(6, this.#heldV6);
  }

  /**
   * The managed addresses the reconciler believes the interface holds: what it
   * last read plus what it applied since. A live view: copy it to keep it.
   */
  held(): ReadonlySet<string> {
    return this.#current;
  }

  /**
   * Runs `fn` after every plan or renewal before it: a renewal (`address
   * replace`) running beside a plan could re-add an address the plan removes.
   */
  #serial(fn: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  /**
   * Renews the lifetime of the managed addresses on the interface
   * (`--address-lifetime`) in one store run, never beside a plan: the held
   * set, or what the interface holds when a re-read is pending (before the
   * first reconcile, after a failure). Returns how many were renewed.
   */
  renew(): Promise<number> {
    let count = 0;
    return this.#serial(async () => {
      if (!this.#o.store.renew) return;
      const addresses = this.#reread ? await this.#read(false) : new Set(this.#current);
      count = addresses.size;
      if (count > 0) await this.#o.store.renew(addresses);
    }).then(() => count);
  }

  /**
   * Stops scheduling and waits for a running reconcile to finish: its `ip`
   * gets `stopGraceMs` to end on its own, then is stopped (SIGTERM, SIGKILL).
   * Never leaves an `ip` process running.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#clock.clearTimeout(this.#timer);
    this.#clock.clearInterval(this.#resyncTimer);
    this.#clock.clearTimeout(this.#expiryTimer);
    const running = this.#running;
    if (!running) return;
    const grace = this.#clock.setTimeout(() => {
      log.info("ip still runs {grace}ms after the stop; stopping it", {
        grace: this.#o.stopGraceMs ?? 5000,
      });
      this.#kill.abort(new Error("stopped"));
    }, this.#o.stopGraceMs ?? 5000);
    try {
      await running;
    } finally {
      this.#clock.clearTimeout(grace);
    }
  }
}
