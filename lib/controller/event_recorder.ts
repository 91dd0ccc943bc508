/**
 * Kubernetes Events (`events.k8s.io/v1`) about the objects the controller
 * serves: built here, filtered by {@linkcode EventFilter} (only on change,
 * rate-limited per object) and posted one at a time in the background, so a
 * slow API server never holds up an allocation.
 *
 * - All objects together, at most {@linkcode DEFAULT_EVENTS_PER_SECOND}
 *   Events are posted a second: each post starts at least 1/10 s after the
 *   one before, so a thousand failing Services cannot flood the API server.
 * - Warnings go before Normal Events when both wait.
 * - At most {@linkcode MAX_PENDING_EVENTS} wait; beyond that an Event is
 *   dropped and counted.
 * - {@linkcode EventRecorder.record} resolves with the Event's fate: `emit`
 *   only once the API server accepted it, so the caller may count a Warning
 *   as told then, and send it again later when it was dropped, failed or
 *   rate-limited (`warnings.ts` does).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { EventFilter } from "./event_dedupe.ts";
import type { JsonApi } from "../kube/ports.ts";
import { microTime } from "./leader/decision.ts";
import { boundText } from "../base/text.ts";
import type { ControllerEvent, EventOutcome, EventRegarding } from "./ports.ts";
import { type Clock, sleep } from "../base/clock.ts";

const log = getLogger(["kube-gw", "events"]);

/** The reporting controller of every Event kube-gw records. */
export const REPORTING_CONTROLLER = "kube-gw.io/controller";
/** Longest note (the API refuses more than 1 kB). */
export const MAX_NOTE = 1024;
/** Events waiting to be posted at most; more are dropped. */
export const MAX_PENDING_EVENTS = 1000;
/** Events posted a second at most, all objects together. */
export const DEFAULT_EVENTS_PER_SECOND = 10;

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
  /** Events posted a second at most, all objects together. @default DEFAULT_EVENTS_PER_SECOND (10) */
  readonly perSecond?: number;
}

interface Waiting {
  readonly ev: ControllerEvent;
  readonly key: string;
  readonly signal: AbortSignal;
  /** Wall-clock ms when recorded: the Event's time. */
  readonly wall: number;
  readonly seq: number;
  readonly done: (outcome: EventOutcome) => void;
}

/** Filters and posts Events. */
export class EventRecorder {
  readonly #o: EventRecorderOptions;
  readonly #filter: EventFilter;
  readonly #gapMs: number;
  /** Waiting Warnings, then waiting Normal Events, oldest first. */
  readonly #warnings: Waiting[] = [];
  readonly #normal: Waiting[] = [];
  /** Events waiting or being posted. */
  #pending = 0;
  /** Clock time before which the next post may not start. */
  #nextAt = -Infinity;
  #posting: Promise<void> | undefined;
  #seq = 0;

  constructor(options: EventRecorderOptions) {
    this.#o = options;
    this.#filter = options.filter ?? new EventFilter();
    this.#gapMs = 1000 / (options.perSecond ?? DEFAULT_EVENTS_PER_SECOND);
  }

  /** Events waiting or being posted. */
  get pending(): number {
    return this.#pending;
  }

  /**
   * Records `ev` unless the filter suppresses it or too many wait; posts it
   * in the background while `signal` (the leader's term) is live. Resolves
   * with its fate: `emit` once the API server accepted it, `duplicate` when
   * the last Event accepted for the object says the same, else `rate_limited`,
   * `dropped` (too many waiting, or the term ended first) or `failed`.
   */
  record(ev: ControllerEvent, signal: AbortSignal): Promise<EventOutcome> {
    const r = ev.regarding;
    const key = `${r.kind}/${r.namespace}/${r.name}/${r.uid}`;
    // A full queue drops the Event before the filter records it, so the same Event is not
    // taken for a duplicate later.
    if (this.#pending >= MAX_PENDING_EVENTS || signal.aborted) {
      return Promise.resolve(this.#outcome(ev, "dropped"));
    }
    const verdict = this.#filter.decide(key, ev.reason, ev.note, this.#o.clock.now());
    if (verdict !== "emit") return Promise.resolve(this.#outcome(ev, verdict));
    this.#pending++;
    // Up to MAX_PENDING_EVENTS wait here, long enough to outlive V8's young
    // generation: each keeps only `ev` and a few numbers; the body is built when posted.
    return new Promise((done) => {
      const waiting: Waiting = {
        ev,
        key,
        signal,
        wall: (this.#o.wallNow ?? Date.now)(),
        seq: this.#seq++ % 1000,
        done,
      };
      (ev.type === "Warning" ? this.#warnings : this.#normal).push(waiting);
      this.#posting ??= this.#postAll();
    });
  }

  #outcome(ev: ControllerEvent, outcome: EventOutcome): EventOutcome {
    this.#o.onOutcome?.(ev.reason, outcome);
    return outcome;
  }

  /** Posts what waits, Warnings first, one at a time and paced, until nothing waits. */
  async #postAll(): Promise<void> {
    try {
      for (;;) {
        const w = this.#warnings.shift() ?? this.#normal.shift();
        if (!w) return;
        try {
          w.done(await this.#post(w));
        } finally {
          this.#pending--;
        }
      }
    } finally {
      this.#posting = undefined;
    }
  }

  async #post(w: Waiting): Promise<EventOutcome> {
    const { ev, signal } = w;
    const r = ev.regarding;
    try {
      const clock = this.#o.clock;
      const wait = this.#nextAt - clock.now();
      if (wait > 0) await sleep(clock, wait, signal);
      if (signal.aborted) throw signal.reason;
      this.#nextAt = clock.now() + this.#gapMs;
      const suffix = (w.wall * 1000 + w.seq).toString(16);
      // A cluster-scoped object's Events go to `default`.
      const ns = encodeURIComponent(r.namespace || "default");
      const path = `/apis/events.k8s.io/v1/namespaces/${ns}/events`;
      await this.#o.api.json("POST", path, eventBody(ev, this.#o.instance, w.wall, suffix), signal);
      return this.#outcome(ev, "emit");
    } catch (err) {
      this.#filter.unrecord(w.key, ev.reason, ev.note);
      if (signal.aborted) return this.#outcome(ev, "dropped");
      log.warn("cannot record Event {reason} on {kind} {namespace}/{name}: {error}", {
        reason: ev.reason,
        kind: r.kind,
        namespace: r.namespace,
        name: r.name,
        error: (err as Error).message,
      });
      return this.#outcome(ev, "failed");
    }
  }

  /** Forgets a deleted object, so a new one of the same name starts afresh. */
  forget(regarding: EventRegarding): void {
    const r = regarding;
    this.#filter.forget(`${r.kind}/${r.namespace}/${r.name}/${r.uid}`);
  }

  /** Resolves when every Event recorded so far is posted, failed or dropped. */
  async settled(): Promise<void> {
    while (this.#posting) await this.#posting;
  }
}
