/**
 * Kubernetes Events (`events.k8s.io/v1`) about the objects the controller
 * serves: built here, filtered by {@linkcode EventFilter} (only on change,
 * rate-limited per object) and posted one at a time in the background, so a
 * slow API server never holds up an allocation. At most
 * {@linkcode MAX_PENDING_EVENTS} wait; beyond that an Event is dropped and
 * counted.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { EventFilter } from "./event_dedupe.ts";
import type { JsonApi } from "../kube/ports.ts";
import { microTime } from "./leader/decision.ts";
import { boundText } from "../base/text.ts";
import type { ControllerEvent, EventOutcome, EventRegarding } from "./ports.ts";
import type { Clock } from "../base/clock.ts";

const log = getLogger(["kube-gw", "events"]);

/** The reporting controller of every Event kube-gw records. */
export const REPORTING_CONTROLLER = "kube-gw.io/controller";
/** Longest note (the API refuses more than 1 kB). */
export const MAX_NOTE = 1024;
/** Events waiting to be posted at most; more are dropped. */
export const MAX_PENDING_EVENTS = 1000;

/**
 * The `events.k8s.io/v1` Event object for `ev`, named as client-go names
 * them (`NAME.HEX`), with `wallMs` (wall-clock ms) as its time.
 */
export function eventBody(
  ev: ControllerEvent,
  instance: string,
  wallMs: number,
  suffix: string,
): Record<string, unknown> {
  const r = ev.regarding;
  return {
    apiVersion: "events.k8s.io/v1",
    kind: "Event",
    metadata: { name: `${r.name}.${suffix}`.slice(0, 253), namespace: r.namespace || "default" },
    eventTime: microTime(wallMs),
    reportingController: REPORTING_CONTROLLER,
    reportingInstance: instance.slice(0, 128),
    action: ev.action,
    reason: ev.reason,
    type: ev.type,
    note: boundText(ev.note, MAX_NOTE - 32),
    regarding: {
      apiVersion: r.apiVersion ?? "v1",
      kind: r.kind,
      ...(r.namespace ? { namespace: r.namespace } : {}),
      name: r.name,
      ...(r.uid ? { uid: r.uid } : {}),
    },
  };
}

/** Options of {@linkcode EventRecorder}. */
export interface EventRecorderOptions {
  readonly api: JsonApi;
  readonly clock: Clock;
  /** `reportingInstance`: the holder identity. */
  readonly instance: string;
  /** @default new EventFilter() (client-go's limits) */
  readonly filter?: EventFilter;
  /** Wall-clock ms for `eventTime`. @default Date.now */
  readonly wallNow?: () => number;
  /** Told of each Event's fate. */
  readonly onOutcome?: (reason: string, outcome: EventOutcome) => void;
}

/** Filters and posts Events. */
export class EventRecorder {
  readonly #o: EventRecorderOptions;
  readonly #filter: EventFilter;
  #pending = 0;
  #tail: Promise<void> = Promise.resolve();
  #seq = 0;

  constructor(options: EventRecorderOptions) {
    this.#o = options;
    this.#filter = options.filter ?? new EventFilter();
  }

  /**
   * Records `ev` unless the filter suppresses it; posts in the background
   * while `signal` (the leader's term) is live. Returns the verdict.
   */
  record(ev: ControllerEvent, signal: AbortSignal): EventOutcome {
    const r = ev.regarding;
    const key = `${r.kind}/${r.namespace}/${r.name}/${r.uid}`;
    // A full queue drops the Event before the filter records it, so the same Event is not
    // taken for a duplicate later.
    if (this.#pending >= MAX_PENDING_EVENTS) {
      this.#o.onOutcome?.(ev.reason, "dropped");
      return "dropped";
    }
    const verdict = this.#filter.decide(key, ev.reason, ev.note, this.#o.clock.now());
    if (verdict !== "emit") {
      this.#o.onOutcome?.(ev.reason, verdict);
      return verdict;
    }
    this.#pending++;
    const wall = (this.#o.wallNow ?? Date.now)();
    const seq = this.#seq++ % 1000;
    // Up to MAX_PENDING_EVENTS wait here, long enough to outlive V8's young
    // generation: each keeps only `ev` and two numbers; the body is built when posted.
    this.#tail = this.#tail.then(async () => {
      try {
        if (signal.aborted) return;
        const suffix = (wall * 1000 + seq).toString(16);
        const ns = encodeURIComponent(r.namespace || "default");
        const path = `/apis/events.k8s.io/v1/namespaces/${ns}/events`;
        await this.#o.api.json(
          "POST",
          path,
          eventBody(ev, this.#o.instance, wall, suffix),
          signal,
        );
        this.#o.onOutcome?.(ev.reason, "emit");
      } catch (err) {
        this.#filter.unrecord(key, ev.reason, ev.note);
        this.#o.onOutcome?.(ev.reason, "failed");
        if (!signal.aborted) {
          log.warn("cannot record Event {reason} on {kind} {namespace}/{name}: {error}", {
            reason: ev.reason,
            kind: r.kind,
            namespace: r.namespace,
            name: r.name,
            error: (err as Error).message,
          });
        }
      } finally {
        this.#pending--;
      }
    });
    return "emit";
  }

  /** Forgets a deleted object, so a new one of the same name starts afresh. */
  forget(regarding: EventRegarding): void {
    const r = regarding;
    this.#filter.forget(`${r.kind}/${r.namespace}/${r.name}/${r.uid}`);
  }

  /** Resolves when every Event queued so far is posted or failed. */
  settled(): Promise<void> {
    return this.#tail;
  }
}
