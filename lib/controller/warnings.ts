/**
 * The Warnings the controller owes each object, and which of them the API
 * server accepted. Pure but for the injected {@linkcode Clock} and the
 * {@linkcode EventSink} port.
 *
 * - A Warning is owed under a topic (`AllocationFailed`,
 *   `AddressOutsidePools/198.51.100.7`, ...): a newer note replaces the one
 *   owed, an empty one takes it back.
 * - It counts as told only once the API server accepted its Event (or the
 *   last Event accepted for the object says the same). One that was dropped,
 *   failed or rate-limited is sent again after a backoff of its object's
 *   (5 s doubling to 60 s), for as long as it is owed, so every Service left
 *   without an address learns why, however many there are; the recorder's
 *   limits (per object and overall) pace the sending.
 * - Warnings are sent only during a term ({@linkcode WarningLedger.start});
 *   what was owed and not told is sent when the next term starts.
 *
 * Memory: one entry per object that is owed a Warning, each holding its
 * notes; the caller forgets deleted objects.
 *
 * @module
 */

import { Backoff } from "../base/backoff.ts";
import type { Clock, TimerId } from "../base/clock.ts";
import type { EventRegarding, EventSink } from "./ports.ts";

/** Options of {@linkcode WarningLedger}. */
export interface WarningLedgerOptions {
  readonly events: EventSink;
  readonly clock: Clock;
  /** Delay before a Warning that was not told is sent again. @default 5 s doubling to 60 s */
  readonly retry?: { readonly initialMs: number; readonly maxMs: number };
}

/** One Warning owed under a topic. */
interface Owed {
  readonly reason: string;
  readonly action: string;
  /** What is owed now. */
  note: string;
  /** The note the API server accepted last, if any. */
  told?: string;
  /** The id of the send in flight, 0 when none. */
  sending: number;
}

interface Entry {
  regarding: EventRegarding;
  readonly topics: Map<string, Owed>;
  timer?: TimerId;
  backoff?: Backoff;
}

/** What each object is owed, sent until told. */
export class WarningLedger {
  readonly #o: WarningLedgerOptions;
  readonly #entries = new Map<string, Entry>();
  #signal: AbortSignal | undefined;
  #seq = 0;

  constructor(options: WarningLedgerOptions) {
    this.#o = options;
  }

  /** Objects owed a Warning (told or not). */
  get size(): number {
    return this.#entries.size;
  }

  /** Whether every Warning owed to `key` was told (true when none is owed). */
  told(key: string): boolean {
    const e = this.#entries.get(key);
    return !e || [...e.topics.values()].every((t) => t.told === t.note);
  }

  /** Starts a term: sends, with `signal`, every Warning owed and not told. */
  start(signal: AbortSignal): void {
    this.#signal = signal;
    for (const [key, e] of this.#entries) this.#sendOwed(key, e);
  }

  /** Ends the term: nothing is sent until the next; what was in flight is sent again then. */
  stop(): void {
    this.#signal = undefined;
    for (const e of this.#entries.values()) {
      this.#o.clock.clearTimeout(e.timer);
      e.timer = undefined;
      e.backoff = undefined;
      for (const t of e.topics.values()) t.sending = 0;
    }
  }

  /**
   * Owes `note` (a Warning with `reason` and `action`) to the object `key`
   * under `topic`, and sends it unless that very note was told or is being
   * sent. An empty note takes back what was owed under `topic`.
   */
  set(
    key: string,
    regarding: EventRegarding,
    topic: string,
    warning: { readonly reason: string; readonly action: string; readonly note: string },
  ): void {
    let e = this.#entries.get(key);
    if (warning.note === "") {
      if (!e?.topics.delete(topic)) return;
      if (e.topics.size === 0) this.forget(key);
      return;
    }
    if (!e) this.#entries.set(key, e = { regarding, topics: new Map() });
    e.regarding = regarding;
    let t = e.topics.get(topic);
    if (t && t.note === warning.note && (t.told === t.note || t.sending !== 0)) return;
    if (!t) {
      t = { reason: warning.reason, action: warning.action, note: warning.note, sending: 0 };
      e.topics.set(topic, t);
    }
    t.note = warning.note;
    this.#send(key, e, t);
  }

  /** Forgets an object (deleted, or replaced by one of another uid). */
  forget(key: string): void {
    const e = this.#entries.get(key);
    if (!e) return;
    this.#o.clock.clearTimeout(e.timer);
    this.#entries.delete(key);
  }

  #sendOwed(key: string, e: Entry): void {
    for (const t of e.topics.values()) {
      if (t.told !== t.note && t.sending === 0) this.#send(key, e, t);
    }
  }

  #send(key: string, e: Entry, t: Owed): void {
    const signal = this.#signal;
    if (!signal) return;
    const id = ++this.#seq;
    const note = t.note;
    t.sending = id;
    const ev = {
      regarding: e.regarding,
      type: "Warning" as const,
      reason: t.reason,
      action: t.action,
      note,
    };
    void this.#o.events.record(ev, signal).then((outcome) => {
      // Superseded by a newer note, taken back, forgotten, or the term ended.
      if (t.sending !== id) return;
      t.sending = 0;
      if (outcome === "emit" || outcome === "duplicate") {
        t.told = note;
        if (this.told(key)) e.backoff = undefined;
      } else if (this.#signal === signal && this.#entries.get(key) === e) {
        this.#retryLater(key, e);
      }
    });
  }

  #retryLater(key: string, e: Entry): void {
    if (e.timer !== undefined) return;
    e.backoff ??= new Backoff(this.#o.retry ?? { initialMs: 5000, maxMs: 60_000 });
    e.timer = this.#o.clock.setTimeout(() => {
      e.timer = undefined;
      if (this.#entries.get(key) === e) this.#sendOwed(key, e);
    }, e.backoff.next());
  }
}
