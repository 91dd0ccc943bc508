/**
 * The reconciler: keeps the managed interface equal to the announced set.
 *
 * A facade over three parts, so the agent and the one-shot commands have one
 * object to feed and ask: the announce pipeline (events → desired set → gate
 * → announced set; `announce_pipeline.ts`), the interface sync (read, plan,
 * apply through the address store; `interface_sync.ts`) and the scheduler
 * (coalescing window, retries, resync; `reconcile_scheduler.ts`). Data flows
 * one way: events → desired set → gate → plan → `ip`. The addresses whose
 * announced state flips are planned at the next reconcile. Nothing is changed
 * before the first complete list ({@linkcode Reconciler.markSynced}).
 *
 * @module
 */

import type { BackoffOptions } from "../base/backoff.ts";
import type { Cidr } from "../base/cidr.ts";
import type { Clock } from "../base/clock.ts";
import type { AddressStore, Plan } from "../kernel/address_store.ts";
import type { ServiceRecord } from "../service/record.ts";
import type { AnnounceMode, HealthGate } from "./announce.ts";
import { AnnouncePipeline } from "./announce_pipeline.ts";
import type { EndpointSliceRecord } from "./endpoint_slice.ts";
import { InterfaceSync } from "./interface_sync.ts";
import { type AgentObserver, quietObserver } from "./observer.ts";
import { ReconcileScheduler } from "./reconcile_scheduler.ts";
import { type StatusReport, statusReport } from "./status_report.ts";
import { type AddressOptions } from "../service/eligibility.ts";

/** Options for {@linkcode Reconciler}; the agent's values are in `run.ts`. */
export interface ReconcilerOptions {
  readonly store: AddressStore;
  readonly networks: readonly Cidr[];
  /** Coalescing window in milliseconds. */
  readonly windowMs: number;
  /** Re-read the interface and repair drift this often, in milliseconds; 0 disables. */
  readonly resyncMs: number;
  /** Delays before retrying a failed reconcile. */
  readonly retryBackoff: BackoffOptions;
  /** The coalescing window, retry delays, resync and hold-downs run on it. */
  readonly clock: Clock;
  /** @default quietObserver */
  readonly observer?: AgentObserver;
  /** Which addresses of a Service to take (`--external-ips`, `--class`). */
  readonly addresses: AddressOptions;
  /**
   * `ready`: announce only addresses with a usable endpoint (fed through
   * {@linkcode Reconciler.replaceSlices} and friends); `always`: ignore endpoints.
   */
  readonly announce: AnnounceMode;
  /** Hold-down before an address comes back, in milliseconds; 0 disables. */
  readonly announceDelayMs: number;
  /** Half-life of the flap penalty, in milliseconds; 0 disables damping. */
  readonly announceDampingMs: number;
  /** This gateway's node, for `externalTrafficPolicy: Local`. */
  readonly nodeName?: string;
  /** On stop, how long a running `ip` may finish before the store stops it. */
  readonly stopGraceMs: number;
}

/** Keeps the managed interface equal to the announced addresses. */
export class Reconciler {
  readonly #clock: Clock;
  readonly #stopGraceMs: number;
  readonly #pipeline: AnnouncePipeline;
  readonly #sync: InterfaceSync;
  readonly #scheduler: ReconcileScheduler;

  constructor(options: ReconcilerOptions) {
    this.#clock = options.clock;
    this.#stopGraceMs = options.stopGraceMs;
    const observer = options.observer ?? quietObserver;
    const sync = new InterfaceSync({
      store: options.store,
      networks: options.networks,
      observer,
      clock: options.clock,
    });
    const scheduler = new ReconcileScheduler({
      clock: options.clock,
      windowMs: options.windowMs,
      resyncMs: options.resyncMs,
      retryBackoff: options.retryBackoff,
      observer,
      reconcile: () => this.reconcileOnce(),
      reread: () => sync.reread(),
      verify: () => sync.verify(),
    });
    this.#pipeline = new AnnouncePipeline({
      networks: options.networks,
      addresses: options.addresses,
      announce: options.announce,
      announceDelayMs: options.announceDelayMs,
      announceDampingMs: options.announceDampingMs,
      nodeName: options.nodeName,
      clock: options.clock,
      observer,
      onFlip: (addresses) => {
        sync.touch(addresses);
        scheduler.schedule();
      },
    });
    this.#sync = sync;
    this.#scheduler = scheduler;
  }

  /** The desired addresses (claimed by a Service), announced or not. */
  get desired(): ReadonlySet<string> {
    return this.#pipeline.desired;
  }

  /** The addresses the gate lets through: what the interface is brought to. */
  get announced(): ReadonlySet<string> {
    return this.#pipeline.announced;
  }

  /** Why the reconciler is not ready, or undefined when it is. */
  notReady(): string | undefined {
    if (!this.#scheduler.started) {
      return this.#pipeline.mode === "ready"
        ? "waiting for the first complete list of Services and EndpointSlices"
        : "waiting for the first complete list of Services";
    }
    const lastError = this.#scheduler.lastError;
    if (lastError === undefined) return "waiting for the first reconcile";
    if (lastError !== null) return `the last reconcile failed: ${lastError}`;
    if (this.#sync.fighting) {
      return "another program keeps changing the managed addresses (see the warning in the log)";
    }
    return undefined;
  }

  /** A complete list of the Services in `namespace`, or in all when undefined. */
  replace(services: ServiceRecord[], namespace: string | undefined): void {
    this.#pipeline.replace(services, namespace);
  }

  /** A Service was added or changed. */
  upsert(service: ServiceRecord): void {
    this.#pipeline.upsert(service);
  }

  /** A Service was deleted. */
  delete(namespace: string, name: string): void {
    this.#pipeline.delete(namespace, name);
  }

  /** A complete list of the EndpointSlices in `namespace`, or in all when undefined. */
  replaceSlices(slices: EndpointSliceRecord[], namespace: string | undefined): void {
    this.#pipeline.replaceSlices(slices, namespace);
  }

  /** An EndpointSlice was added or changed. */
  upsertSlice(slice: EndpointSliceRecord): void {
    this.#pipeline.upsertSlice(slice);
  }

  /** An EndpointSlice was deleted. */
  deleteSlice(slice: { readonly namespace: string; readonly name: string }): void {
    this.#pipeline.deleteSlice(slice);
  }

  /** kube-proxy's health gate: see {@linkcode AnnouncePipeline.setHealth}. */
  setHealth(health: HealthGate): void {
    this.#pipeline.setHealth(health);
  }

  /**
   * Builds the announce gate and evaluates every address: what is desired,
   * and what the interface held at the first read (so an address nobody
   * claims any more is withdrawn). Call after the first complete list of
   * every source; {@linkcode markSynced} does, and the one-shot commands.
   */
  openGate(): void {
    this.#pipeline.open(this.#sync.startHeld ?? new Set());
  }

  /** Why each desired address is announced or withheld, for `/status` and `kube-gw plan`. */
  status(): StatusReport {
    return statusReport(this.#pipeline, this.#clock.now());
  }

  /**
   * Opens the gate after the first complete list: from now on, reconciles
   * run. Starts the periodic resync.
   */
  markSynced(): void {
    if (this.#scheduler.started) return;
    // Before the start: the gate's first step schedules nothing; the first reconcile plans it all.
    this.openGate();
    this.#scheduler.start();
  }

  /**
   * Checks the interface beside the reconciles; drift makes the next
   * reconcile re-read it and repair it. What the periodic resync runs.
   */
  resync(): void {
    this.#scheduler.resync();
  }

  /** The next reconcile re-reads the interface and repairs any drift. */
  reread(): void {
    this.#sync.reread();
  }

  /**
   * Reads the interface's managed host addresses, refusing on a conflict, and
   * reports them to the observer (so the address gauge is right from the start,
   * before the first list).
   */
  readManaged(): Promise<Set<string>> {
    return this.#sync.readManaged();
  }

  /** The plan from the interface's state to the announced set. */
  async plan(): Promise<Plan> {
    this.openGate();
    return await this.#sync.plan(this.announced);
  }

  /**
   * Brings the interface to the announced set once. Returns the plan applied
   * (empty when nothing changed). Throws when `ip` fails; the next call
   * re-reads the interface.
   */
  async reconcileOnce(): Promise<Plan> {
    this.openGate();
    return await this.#sync.sync(() => this.announced);
  }

  /**
   * Renews the lifetime of the managed addresses on the interface
   * (`--address-lifetime`), never beside a plan. Returns how many were renewed.
   */
  renew(): Promise<number> {
    return this.#sync.renew();
  }

  /** Stops a running `ip` now; the call that ran it rejects (`InterruptedError`). */
  interrupt(reason: Error): void {
    this.#sync.interrupt(reason);
  }

  /**
   * Stops scheduling and waits for a running reconcile to finish: its `ip`
   * gets `stopGraceMs` to end on its own, then is stopped (SIGTERM, SIGKILL).
   * Never leaves an `ip` process running.
   */
  stop(): Promise<void> {
    this.#pipeline.stop();
    return this.#scheduler.stop({
      graceMs: this.#stopGraceMs,
      interrupt: () => this.#sync.interrupt(new Error("stopped")),
    });
  }
}
