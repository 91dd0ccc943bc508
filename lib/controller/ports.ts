/**
 * The ports of the LoadBalancer controller's loop (lib/controller/loop.ts): the
 * status writer, the Events it records and what it reports, as types, so that
 * the loop imports no adapter. `status_writer.ts`, `event_recorder.ts` and
 * `metrics.ts` implement them.
 *
 * @module
 */

import type { EventVerdict } from "./event_dedupe.ts";
import type { LbServiceRecord } from "./lb_service.ts";
import type { Pool } from "./pools.ts";

/** The object an Event is about. */
export interface EventRegarding {
  readonly kind: "Service" | "ConfigMap" | "AddressPool";
  /** `v1` when absent; `kube-gw.io/v1alpha1` for an AddressPool. */
  readonly apiVersion?: string;
  /** `""` for a cluster-scoped object (its Events go to `default`). */
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

/** One Event to record. */
export interface ControllerEvent {
  readonly regarding: EventRegarding;
  readonly type: "Normal" | "Warning";
  /** E.g. `IPAllocated`, `AllocationFailed`. */
  readonly reason: string;
  /** E.g. `Allocate`, `Release`. */
  readonly action: string;
  readonly note: string;
}

/**
 * What happened to one Event: `emit` (the API server accepted it), `duplicate`
 * (the last Event accepted for the object says the same), `rate_limited` (the
 * object's limit), `dropped` (too many waiting, or the term ended), `failed`
 * (the API server refused it or could not be reached).
 */
export type EventOutcome = EventVerdict | "dropped" | "failed";

/** Writes a Service's ingress addresses; lib/controller/status_writer.ts has the one on the API server. */
export interface StatusWriter {
  /**
   * @returns the resourceVersion the API server gave the Service.
   * @throws {ApiError} 409 when `svc.resourceVersion` is no longer current, 404 when it is gone.
   */
  write(svc: LbServiceRecord, addresses: readonly string[], signal: AbortSignal): Promise<string>;
}

/** Where Events go (an `EventRecorder`). */
export interface EventSink {
  /** Posts `ev` in the background while `signal` is live; resolves with its fate. */
  record(ev: ControllerEvent, signal: AbortSignal): Promise<EventOutcome>;
  /** Forgets a deleted object, so a new one of the same name starts afresh. */
  forget(regarding: EventRegarding): void;
}

/** What the controller reports (metrics implement it). */
export interface ControllerObserver {
  /** A Service's addresses were written (`seconds`: from the event that queued it). */
  statusWritten(kind: "allocated" | "cleared", seconds: number): void;
  /** A request could not be met. */
  allocationFailed(reason: string): void;
  /** A status write failed (`conflict`: 409, retried from the cache). */
  writeFailed(kind: "conflict" | "error"): void;
  /** A pools edit was refused; the last good pools stay. */
  configError(): void;
  /** The pools in force changed. */
  poolsChanged(pools: readonly Pool[]): void;
  /** This process started (`leader`) or stopped (`standby`) leading. */
  leadership(role: "leader" | "standby"): void;
}

/** An observer that ignores everything. */
export const quietControllerObserver: ControllerObserver = {
  statusWritten() {},
  allocationFailed() {},
  writeFailed() {},
  configError() {},
  poolsChanged() {},
  leadership() {},
};
