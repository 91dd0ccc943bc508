/**
 * The ports of the LoadBalancer controller's loop (lib/controller/loop.ts): the
 * status writer and the Events it records, as types, so that the loop imports
 * no adapter. `lib/controller/status_writer.ts` and `lib/controller/event_recorder.ts` implement them.
 *
 * @module
 */

import type { EventVerdict } from "./event_dedupe.ts";
import type { LbServiceRecord } from "./lb_service.ts";

/** The object an Event is about. */
export interface EventRegarding {
  readonly kind: "Service" | "ConfigMap";
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

/** What happened to one Event, for metrics. */
export type EventOutcome = EventVerdict | "dropped" | "failed";

/** Writes a Service's ingress addresses; lib/controller/status_writer.ts has the one on the API server. */
export interface StatusWriter {
  /**
   * @returns the resourceVersion the API server gave the Service.
   * @throws {ApiError} 409 when `svc.resourceVersion` is no longer current, 404 when it is gone.
   */
  write(svc: LbServiceRecord, addresses: readonly string[], signal: AbortSignal): Promise<string>;
}
