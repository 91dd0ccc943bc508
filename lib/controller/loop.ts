/**
 * The LoadBalancer controller's loop: the Service and pools watches feed a
 * cache, the leader decides each changed Service with the pure
 * {@linkcode Allocator} and writes the outcome through small adapters
 * ({@linkcode StatusWriter}, an Event sink). Only the leader writes.
 *
 * - Nothing is decided before the first complete list of Services (and of
 *   the pools ConfigMap when there is one).
 * - A term begins with {@linkcode Allocator.rebuild} from the Services'
 *   status, so a restart or a new leader never moves an address.
 * - Each event queues one Service key in a {@linkcode WorkQueue}; its workers
 *   decide one Service at a time each, so the cost of an event is that of its
 *   Service (plus, when an address is freed, one retry of each Service still
 *   waiting for one).
 * - Every status write carries the resourceVersion it was decided on, so it
 *   never lands on a version that changed since (its class, say). A 409 is
 *   decided again from the newest cached version (the watch delivers it and
 *   queues the key again); other write errors are retried after a backoff,
 *   and a retry decides again from the newest version too.
 * - An address is never in two statuses at once: one a Service lets go
 *   stays out of reach while its status still shows it (the allocator drains
 *   it until the write that takes it out has landed).
 * - kube-gw clears only what it wrote: a Service that is no longer its own
 *   has its status cleared only when that lists nothing but addresses
 *   kube-gw holds for it; Events name only what kube-gw did.
 * - Warnings go through a {@linkcode WarningLedger}: each counts as told
 *   once the API server accepted it, and is sent again until then.
 * - A pools edit that does not validate keeps the last good pools, and says
 *   why in the log, a metric and a Warning Event on the ConfigMap.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { Allocator } from "./allocator.ts";
import type { ControllerObserver, EventRegarding, EventSink, StatusWriter } from "./ports.ts";
import { quietControllerObserver } from "./ports.ts";
import { externalIpRefusals, type LbServiceRecord, statusShows } from "./lb_service.ts";
import type { ListWatchSink } from "../kube/list_watch.ts";
import { mergePools, parsePoolsYaml, type Pool, PoolConfigError } from "./pools.ts";
import type { PoolsConfigMap } from "./pools_configmap.ts";
import { serviceKey } from "../service/record.ts";
import type { Clock } from "../base/clock.ts";
import { WorkQueue } from "./work_queue.ts";
import { WarningLedger } from "./warnings.ts";
import { conflictNote, type NormalEvent, refusalNote, releaseEvents } from "./event_notes.ts";
import { StatusWrites } from "./status_writes.ts";
import { type ClassOptions, isOurs } from "../service/class.ts";

const log = getLogger(["kube-gw", "controller"]);

/** Options of {@linkcode Controller}. */
export interface ControllerOptions {
  readonly classes: ClassOptions;
  /** The pool of `--pool`, if any. */
  readonly flagPool?: Pool;
  /** Whether a pools ConfigMap is watched (`--config`): the controller waits for its first list. */
  readonly watchesConfig: boolean;
  /** Whether AddressPools are watched (the controller waits for their list). @default false */
  readonly watchesResources?: boolean;
  readonly status: StatusWriter;
  readonly events: EventSink;
  readonly clock: Clock;
  readonly observer?: ControllerObserver;
  /** Services decided (and written) at once; one Service is never decided twice at once. @default 16 */
  readonly concurrency?: number;
  /** Delay before a failed write (not a 409) is tried again. @default 1 s doubling to 30 s */
  readonly retry?: { readonly initialMs: number; readonly maxMs: number };
  /** Delay before a Warning that was not told is sent again. @default 5 s doubling to 60 s */
  readonly warningRetry?: { readonly initialMs: number; readonly maxMs: number };
}

function regardingService(svc: LbServiceRecord): EventRegarding {
  return { kind: "Service", namespace: svc.namespace, name: svc.name, uid: svc.uid };
}

function regardingConfigMap(cm: PoolsConfigMap): EventRegarding {
  return { kind: "ConfigMap", namespace: cm.namespace, name: cm.name, uid: cm.uid };
}

/** The key of the pools ConfigMap among the objects owed Warnings (Services are `ns/name`). */
function configKey(cm: PoolsConfigMap): string {
  return `ConfigMap ${cm.namespace}/${cm.name}`;
}

/** The controller: caches, allocator, work queue. Drive it through its sinks and leadership. */
export class Controller {
  readonly #o: ControllerOptions;
  readonly #observer: ControllerObserver;
  /** Services that are kube-gw's, or were and may still carry a status to clear. */
  readonly #cache = new Map<string, LbServiceRecord>();
  /**
   * Service keys to decide. It works during a term only: a standby queues
   * nothing, a new term queues every cached Service.
   */
  readonly #queue: WorkQueue;
  /** Services whose request could not be met: tried again when an address is freed. */
  readonly #failed = new Set<string>();
  /** The Warnings each Service (and the pools ConfigMap) is owed, until told. */
  readonly #warnings: WarningLedger;
  readonly #writes: StatusWrites;
  #pools: readonly Pool[];
  /** The pools of `--pool` and the ConfigMap, and of the AddressPools (which win) if any. */
  #configPools: readonly Pool[];
  #resourcePools: readonly Pool[] | undefined;
  #servicesSynced = false;
  #configSynced: boolean;
  #resourcesSynced: boolean;
  #leading = false;
  #term: AbortController | undefined;
  #allocator: Allocator | undefined;

  constructor(options: ControllerOptions) {
    this.#o = options;
    this.#observer = options.observer ?? quietControllerObserver;
    this.#pools = this.#configPools = options.flagPool ? [options.flagPool] : [];
    this.#configSynced = !options.watchesConfig;
    this.#resourcesSynced = !options.watchesResources;
    this.#queue = new WorkQueue({
      clock: options.clock,
      concurrency: options.concurrency,
      retry: options.retry,
      process: (key, queuedAt, signal) => this.#process(key, queuedAt, signal),
    });
    this.#writes = new StatusWrites({
      status: options.status,
      observer: this.#observer,
      clock: options.clock,
      queue: this.#queue,
      cache: this.#cache,
    });
    this.#warnings = new WarningLedger({
      events: options.events,
      clock: options.clock,
      retry: options.warningRetry,
    });
    this.#observer.poolsChanged(this.#pools);
  }

  /** Whether the caches hold a complete list (ready, as leader or standby). */
  get synced(): boolean {
    return this.#servicesSynced && this.#configSynced && this.#resourcesSynced;
  }

  /** Why the controller is not ready, or `undefined`. */
  notReady(): string | undefined {
    if (!this.#servicesSynced) return "waiting for the first list of Services";
    if (!this.#configSynced) return "waiting for the first list of the pools ConfigMap";
    if (!this.#resourcesSynced) return "waiting for the first list of AddressPools";
    return undefined;
  }

  /** The pools in force. */
  get pools(): readonly Pool[] {
    return this.#pools;
  }

  /** The addresses each Service holds in this term (empty when not leading). */
  get assignments(): ReadonlyMap<string, readonly string[]> {
    return this.#allocator?.assignments ?? new Map();
  }

  /** The pool an address lies in, if any. */
  poolOf(address: string): string | undefined {
    return this.#allocator?.poolOf(address);
  }

  /** Feeds the Service watch (all namespaces). */
  readonly services: ListWatchSink<LbServiceRecord> = {
    replace: (items) => {
      const seen = new Set<string>();
      for (const svc of items) {
        seen.add(serviceKey(svc));
        this.#upsert(svc);
      }
      for (const key of [...this.#cache.keys()]) {
        if (!seen.has(key)) this.#delete(key);
      }
      if (!this.#servicesSynced) {
        this.#servicesSynced = true;
        log.info("first list of Services complete: {count} of kube-gw's class", {
          count: this.#cache.size,
        });
        this.#maybeBegin();
      }
    },
    upsert: (svc) => this.#upsert(svc),
    delete: (svc) => this.#delete(serviceKey(svc)),
  };

  /** Feeds the pools ConfigMap watch (one object, by field selector). */
  readonly config: ListWatchSink<PoolsConfigMap> = {
    replace: (items) => {
      this.#applyConfig(items[0]);
      if (!this.#configSynced) {
        this.#configSynced = true;
        this.#maybeBegin();
      }
    },
    upsert: (cm) => this.#applyConfig(cm),
    delete: () => this.#applyConfig(undefined),
  };

  #upsert(svc: LbServiceRecord): void {
    const key = serviceKey(svc);
    const prev = this.#cache.get(key);
    if (!isOurs(svc, this.#o.classes)) {
      // Only a Service that was ours (or holds an address) needs anything done.
      if (!prev && !this.#allocator?.assignments.has(key)) return;
    }
    if (prev && prev.uid !== svc.uid) {
      this.#o.events.forget(regardingService(prev));
      this.#warnings.forget(key);
    }
    this.#cache.set(key, svc);
    this.#queue.add(key);
  }

  #delete(key: string): void {
    const prev = this.#cache.get(key);
    if (!prev) return;
    this.#cache.delete(key);
    this.#o.events.forget(regardingService(prev));
    this.#warnings.forget(key);
    this.#queue.add(key);
  }

  #applyConfig(cm: PoolsConfigMap | undefined): void {
    let pools: Pool[];
    try {
      if (cm?.problem) throw new PoolConfigError(`pools.yaml: ${cm.problem}`);
      const fromConfig = cm?.text !== undefined ? parsePoolsYaml(cm.text) : [];
      pools = mergePools(this.#o.flagPool, fromConfig);
    } catch (err) {
      if (!(err instanceof PoolConfigError)) throw err;
      this.#observer.configError();
      log.error(
        "pools ConfigMap {namespace}/{name} refused, keeping the last good pools: {error}",
        {
          namespace: cm?.namespace ?? "",
          name: cm?.name ?? "",
          error: err.message,
        },
      );
      if (cm) {
        this.#warnings.set(configKey(cm), regardingConfigMap(cm), "InvalidPools", {
          reason: "InvalidPools",
          action: "LoadPools",
          note: `${err.message}; the last good pools stay in force`,
        });
      }
      return;
    }
    if (cm) this.#warnings.forget(configKey(cm));
    if (!cm) log.warn("the pools ConfigMap is gone: only --pool pools remain");
    this.#configPools = pools;
    if (!this.#resourcePools) this.#usePools(pools);
  }

  /** The AddressPools' pools (`undefined`: none exists); the first call ends the wait for them. */
  setResourcePools(pools: readonly Pool[] | undefined): void {
    this.#resourcePools = pools;
    this.#usePools(pools ?? this.#configPools);
    this.#resourcesSynced = true;
    this.#maybeBegin();
  }

  #usePools(pools: readonly Pool[]): void {
    this.#pools = pools;
    this.#observer.poolsChanged(pools);
    log.info("pools in force: {pools}", {
      pools: pools.map((p) => `${p.name}=${p.cidrs.map((c) => c.text).join(",")}`).join(" ") ||
        "none",
    });
    if (this.#allocator && this.#term) {
      const outside = this.#allocator.setPools(pools);
      for (const held of outside) {
        const svc = this.#cache.get(held.key);
        if (svc) this.#outsideWarning(svc, held.address);
      }
      for (const key of this.#failed) this.#queue.add(key);
    }
  }

  /** This process now leads: rebuild from status (once synced) and allocate. */
  startLeading(): void {
    if (this.#leading) return;
    this.#leading = true;
    this.#observer.leadership("leader");
    this.#maybeBegin();
  }

  /** This process no longer leads: stop writing at once (in-flight writes are aborted). */
  stopLeading(): void {
    if (!this.#leading) return;
    this.#leading = false;
    this.#observer.leadership("standby");
    this.#term?.abort(new Error("no longer the leader"));
    this.#term = undefined;
    this.#allocator = undefined;
    this.#queue.stop();
    this.#warnings.stop();
    this.#failed.clear();
  }

  #maybeBegin(): void {
    if (!this.#leading || this.#term || !this.synced) return;
    this.#term = new AbortController();
    this.#queue.start(this.#term.signal);
    this.#warnings.start(this.#term.signal);
    const allocator = new Allocator(this.#pools);
    const ours = [...this.#cache.values()].filter((s) => isOurs(s, this.#o.classes));
    const report = allocator.rebuild(ours);
    this.#allocator = allocator;
    log.info("rebuilt from status: {restored} addresses of {services} Services", {
      restored: report.restored,
      services: ours.length,
    });
    for (const c of report.conflicts) {
      log.warn("{key} claims {address} in its status, held by the older {holder}: not taken back", {
        ...c,
      });
      const loser = this.#cache.get(c.key);
      const winner = this.#cache.get(c.holder);
      if (!loser || !winner) continue;
      this.#warnings.set(c.key, regardingService(loser), `AddressConflict/${c.address}`, {
        reason: "AddressConflict",
        action: "Allocate",
        note: conflictNote(c.address, loser, winner),
      });
    }
    for (const i of report.invalid) {
      log.warn("{key} has {address} in its status: not an address kube-gw can hold", { ...i });
    }
    for (const o of report.outsidePools) {
      const svc = this.#cache.get(o.key);
      if (svc) this.#outsideWarning(svc, o.address);
    }
    for (const key of this.#cache.keys()) this.#queue.add(key);
  }

  #outsideWarning(svc: LbServiceRecord, address: string): void {
    if (svc.externalIPs.includes(address)) return;
    this.#warnings.set(serviceKey(svc), regardingService(svc), `AddressOutsidePools/${address}`, {
      reason: "AddressOutsidePools",
      action: "Allocate",
      note: `${address} lies in no pool; it stays until the Service lets it go`,
    });
  }

  /** Resolves once nothing is queued or being decided (for tests and benchmarks). */
  idle(): Promise<void> {
    return this.#queue.idle();
  }

  /** Whether every Warning owed to a Service (`ns/name`) was accepted by the API server. */
  warningsTold(key: string): boolean {
    return this.#warnings.told(key);
  }

  #released(released: readonly string[]): void {
    if (released.length === 0) return;
    for (const key of this.#failed) this.#queue.add(key);
  }

  async #process(key: string, queuedAt: number, signal: AbortSignal): Promise<void> {
    const allocator = this.#allocator!;
    const svc = this.#cache.get(key);
    if (!svc) {
      this.#failed.delete(key);
      this.#released(allocator.release(key));
      return;
    }
    const regarding = regardingService(svc);
    const normal = (e: NormalEvent) =>
      void this.#o.events.record({ regarding, type: "Normal", ...e }, signal);
    const warn = (topic: string, reason: string, action: string, note: string) =>
      this.#warnings.set(key, regarding, topic, { reason, action, note });

    if (!isOurs(svc, this.#o.classes)) {
      this.#failed.delete(key);
      this.#warnings.forget(key);
      // Only a status that lists nothing but what kube-gw holds for the Service is kube-gw's to
      // clear: another implementation may have written it since the Service changed class.
      const held = allocator.assignments.get(key) ?? [];
      const ingress = svc.ingressIPs;
      if (ingress.length > 0 && ingress.every((a) => held.includes(a))) {
        if (!await this.#writes.write(key, svc, [], queuedAt, signal)) return;
        const cls = this.#o.classes.class;
        normal({
          reason: "IPReleased",
          action: "Release",
          note: `released ${ingress.join(", ")}: the Service is no longer of class ${cls}`,
        });
      } else if (ingress.length > 0) {
        log.info(
          "{key} is no longer kube-gw's; its status lists addresses kube-gw did not write, left as they are",
          { key },
        );
      }
      this.#cache.delete(key);
      this.#released(allocator.release(key));
      return;
    }

    warn(
      "ExternalIPRefused",
      "ExternalIPRefused",
      "Announce",
      refusalNote(externalIpRefusals(svc).map((r) => r.message)),
    );
    const result = allocator.allocate(svc);
    if (!result.ok) {
      this.#failed.add(key);
      this.#observer.allocationFailed(result.failure.reason);
      warn(
        "AllocationFailed",
        "AllocationFailed",
        "Allocate",
        `${result.failure.reason}: ${result.failure.message}`,
      );
      // What its status still shows stays out of reach until the write takes it out.
      allocator.drain(key, result.released.filter((a) => svc.ingressIPs.includes(a)));
      if (svc.ingressIPs.length > 0 && await this.#writes.write(key, svc, [], queuedAt, signal)) {
        allocator.undrain(key);
        for (const e of releaseEvents(svc.ingressIPs, [], result.released)) normal(e);
      }
      this.#released(result.released);
      return;
    }
    this.#failed.delete(key);
    const partial = result.partial ? `${result.partial.reason}: ${result.partial.message}` : "";
    warn("AllocationFailed", "AllocationFailed", "Allocate", partial);
    for (const a of result.outsidePools) this.#outsideWarning(svc, a);
    if (!statusShows(svc, result.addresses)) {
      allocator.drain(key, result.released.filter((a) => svc.ingressIPs.includes(a)));
      if (!await this.#writes.write(key, svc, result.addresses, queuedAt, signal)) return;
      allocator.undrain(key);
      for (const e of releaseEvents(svc.ingressIPs, result.addresses, result.released)) normal(e);
      const fresh = result.addresses.filter((a) => !svc.ingressIPs.includes(a));
      if (fresh.length > 0) {
        const where = fresh.map((a) => `${a} (pool ${allocator.poolOf(a) ?? "none"})`).join(", ");
        normal({ reason: "IPAllocated", action: "Allocate", note: `allocated ${where}` });
      }
    }
    this.#released(result.released);
  }
}
