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
 * - A 409 on a status write is retried from the newest cached version (the
 *   watch delivers it and queues the key again); other write errors are
 *   retried after a backoff.
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
import { ApiError } from "../kube/errors.ts";
import type { Clock } from "../base/clock.ts";
import { WorkQueue } from "./work_queue.ts";
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
}

function regardingService(svc: LbServiceRecord): EventRegarding {
  return { kind: "Service", namespace: svc.namespace, name: svc.name, uid: svc.uid };
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
  /** Per Service, the Warnings it was last told, by reason (see #changed). */
  readonly #reported = new Map<string, Map<string, string>>();
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
    if (prev && prev.uid !== svc.uid) this.#o.events.forget(regardingService(prev));
    this.#cache.set(key, svc);
    this.#queue.add(key);
  }

  #delete(key: string): void {
    const prev = this.#cache.get(key);
    if (!prev) return;
    this.#cache.delete(key);
    this.#o.events.forget(regardingService(prev));
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
      if (cm && this.#leading && this.#term) {
        this.#o.events.record({
          regarding: { kind: "ConfigMap", namespace: cm.namespace, name: cm.name, uid: cm.uid },
          type: "Warning",
          reason: "InvalidPools",
          action: "LoadPools",
          note: `${err.message}; the last good pools stay in force`,
        }, this.#term.signal);
      }
      return;
    }
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
        if (svc) this.#outsideWarning(svc, held.address, this.#term.signal);
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
    this.#failed.clear();
  }

  #maybeBegin(): void {
    if (!this.#leading || this.#term || !this.synced) return;
    this.#term = new AbortController();
    this.#queue.start(this.#term.signal);
    const allocator = new Allocator(this.#pools);
    const ours = [...this.#cache.values()].filter((s) => isOurs(s, this.#o.classes));
    const report = allocator.rebuild(ours);
    this.#allocator = allocator;
    log.info("rebuilt from status: {restored} addresses of {services} Services", {
      restored: report.restored,
      services: ours.length,
    });
    for (const c of report.conflicts) {
      log.warn("{key} claims {address} in its status, held by {holder}: not taken back", { ...c });
    }
    for (const i of report.invalid) {
      log.warn("{key} has {address} in its status: not an address kube-gw can hold", { ...i });
    }
    for (const o of report.outsidePools) {
      const svc = this.#cache.get(o.key);
      if (svc) this.#outsideWarning(svc, o.address, this.#term.signal);
    }
    for (const key of this.#cache.keys()) this.#queue.add(key);
  }

  #outsideWarning(svc: LbServiceRecord, address: string, signal: AbortSignal): void {
    if (svc.externalIPs.includes(address)) return;
    const note = `${address} lies in no pool; it stays until the Service lets it go`;
    if (!this.#changed(serviceKey(svc), `AddressOutsidePools/${address}`, note)) return;
    this.#o.events.record({
      regarding: regardingService(svc),
      type: "Warning",
      reason: "AddressOutsidePools",
      action: "Allocate",
      note,
    }, signal);
  }

  /** Resolves once nothing is queued or being decided (for tests and benchmarks). */
  idle(): Promise<void> {
    return this.#queue.idle();
  }

  /**
   * Whether what a Service should be told under `reason` differs from what it
   * was last told (so Warnings are recorded on change only, whatever other
   * Events come between); records `what` as told. Empty `what`: nothing to tell.
   */
  #changed(key: string, reason: string, what: string): boolean {
    let told = this.#reported.get(key);
    if ((told?.get(reason) ?? "") === what) return false;
    if (!told) this.#reported.set(key, told = new Map());
    if (what === "") told.delete(reason);
    else told.set(reason, what);
    return what !== "";
  }

  #released(released: readonly string[]): void {
    if (released.length === 0) return;
    for (const key of this.#failed) this.#queue.add(key);
  }

  async #process(key: string, queuedAt: number, signal: AbortSignal): Promise<void> {
    const allocator = this.#allocator!;
    const svc = this.#cache.get(key);
    if (!svc) {
      this.#reported.delete(key);
      this.#failed.delete(key);
      this.#released(allocator.release(key));
      return;
    }
    const ev = (type: "Normal" | "Warning", reason: string, action: string, note: string) =>
      this.#o.events.record(
        { regarding: regardingService(svc), type, reason, action, note },
        signal,
      );

    if (!isOurs(svc, this.#o.classes)) {
      this.#reported.delete(key);
      this.#failed.delete(key);
      const released = allocator.release(key);
      if (svc.ingressIPs.length > 0) {
        if (!await this.#write(key, svc, [], queuedAt, signal)) return;
        ev(
          "Normal",
          "IPReleased",
          "Release",
          `released ${
            svc.ingressIPs.join(", ")
          }: the Service is no longer of class ${this.#o.classes.class}`,
        );
      }
      this.#cache.delete(key);
      this.#released(released);
      return;
    }

    const refusals = externalIpRefusals(svc).map((r) => r.message);
    if (this.#changed(key, "ExternalIPRefused", refusals.join("\n"))) {
      for (const note of refusals) ev("Warning", "ExternalIPRefused", "Announce", note);
    }
    const result = allocator.allocate(svc);
    if (!result.ok) {
      this.#failed.add(key);
      this.#observer.allocationFailed(result.failure.reason);
      const note = `${result.failure.reason}: ${result.failure.message}`;
      if (this.#changed(key, "AllocationFailed", note)) {
        ev("Warning", "AllocationFailed", "Allocate", note);
      }
      if (svc.ingressIPs.length > 0) {
        if (await this.#write(key, svc, [], queuedAt, signal)) {
          ev("Normal", "IPReleased", "Release", `released ${svc.ingressIPs.join(", ")}`);
        }
      }
      this.#released(result.released);
      return;
    }
    this.#failed.delete(key);
    const partial = result.partial ? `${result.partial.reason}: ${result.partial.message}` : "";
    if (this.#changed(key, "AllocationFailed", partial)) {
      ev("Warning", "AllocationFailed", "Allocate", partial);
    }
    for (const a of result.outsidePools) this.#outsideWarning(svc, a, signal);
    if (!statusShows(svc, result.addresses)) {
      if (!await this.#write(key, svc, result.addresses, queuedAt, signal)) return;
      const gone = svc.ingressIPs.filter((a) => !result.addresses.includes(a));
      if (gone.length > 0) ev("Normal", "IPReleased", "Release", `released ${gone.join(", ")}`);
      const fresh = result.addresses.filter((a) => !svc.ingressIPs.includes(a));
      if (fresh.length > 0) {
        const where = fresh.map((a) => `${a} (pool ${allocator.poolOf(a) ?? "none"})`).join(", ");
        ev("Normal", "IPAllocated", "Allocate", `allocated ${where}`);
      }
    }
    this.#released(result.released);
  }

  /** Writes the status; false when it did not happen (retried later, or the term ended). */
  async #write(
    key: string,
    svc: LbServiceRecord,
    addresses: readonly string[],
    queuedAt: number,
    signal: AbortSignal,
  ): Promise<boolean> {
    try {
      const rv = await this.#o.status.write(svc, addresses, signal);
      this.#observer.statusWritten(
        addresses.length > 0 ? "allocated" : "cleared",
        (this.#o.clock.now() - queuedAt) / 1000,
      );
      this.#queue.succeeded(key);
      // The watch brings this version too; until then, the cache knows what was written.
      if (this.#cache.get(key) === svc && rv) {
        // `addresses` is never changed (the allocator makes a new list for each change).
        this.#cache.set(key, { ...svc, resourceVersion: rv, ingressIPs: addresses });
      }
      return true;
    } catch (err) {
      if (signal.aborted) return false;
      if (err instanceof ApiError && err.status === 409) {
        this.#observer.writeFailed("conflict");
        log.debug("{key} changed since resourceVersion {rv}; deciding again from the watch", {
          key,
          rv: svc.resourceVersion,
        });
        // The newer version is in the cache already, or the watch brings it and queues the key.
        if (this.#cache.get(key) !== svc) this.#queue.add(key);
        return false;
      }
      if (err instanceof ApiError && err.status === 404) return false; // Deleted; the watch says so.
      this.#observer.writeFailed("error");
      const delay = this.#queue.retryLater(key);
      log.warn("cannot write the status of {key}: {error}; retrying in {delay}ms", {
        key,
        error: (err as Error).message,
        delay,
      });
      return false;
    }
  }
}
