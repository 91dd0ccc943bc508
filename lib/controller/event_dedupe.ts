/**
 * Whether to emit a Kubernetes Event, decided without I/O: only on change
 * (the same reason and message as the last Event emitted for the object is
 * suppressed), and rate-limited per object as client-go's
 * EventSourceObjectSpamFilter does (a token bucket of 25, refilled at one
 * token per 5 minutes), so a hostile or broken Service cannot flood the API.
 * Memory is bounded: the state of at most `maxObjects` objects is kept, the
 * least recently used forgotten first (as client-go's LRU cache of 4096).
 *
 * @module
 */

/** Limits of the filter. */
export interface EventFilterOptions {
  /** Events an object may emit at once. @default 25 */
  readonly burst: number;
  /** Time to earn back one token, in ms. @default 300000 (5 minutes) */
  readonly refillMs: number;
  /** Objects remembered; the least recently used is forgotten beyond this. @default 4096 */
  readonly maxObjects: number;
}

/** client-go's defaults. */
export const DEFAULT_EVENT_FILTER: EventFilterOptions = {
  burst: 25,
  refillMs: 300_000,
  maxObjects: 4096,
};

/** The verdict on one Event. */
export type EventVerdict = "emit" | "duplicate" | "rate_limited";

interface ObjectState {
  /** `reason\0message` of the last Event emitted. */
  last?: string;
  tokens: number;
  at: number;
}

/** Per-object de-duplication and rate limit of Events. */
export class EventFilter {
  readonly #options: EventFilterOptions;
  /** Insertion order is recency order: the first key is the least recently used. */
  readonly #objects = new Map<string, ObjectState>();

  /** @default options {@linkcode DEFAULT_EVENT_FILTER} */
  constructor(options: Partial<EventFilterOptions> = {}) {
    this.#options = { ...DEFAULT_EVENT_FILTER, ...options };
  }

  /** Number of objects remembered (at most `maxObjects`). */
  get size(): number {
    return this.#objects.size;
  }

  /**
   * Decides whether to emit an Event with `reason` and `message` about the
   * object `key` (e.g. `Service/ns/name/uid`) at time `now` (ms), and records
   * it when the answer is `emit`.
   */
  decide(key: string, reason: string, message: string, now: number): EventVerdict {
    const { burst, refillMs, maxObjects } = this.#options;
    let s = this.#objects.get(key);
    if (s) {
      this.#objects.delete(key);
    } else {
      s = { tokens: burst, at: now };
    }
    this.#objects.set(key, s);
    if (this.#objects.size > maxObjects) {
      this.#objects.delete(this.#objects.keys().next().value!);
    }
    const id = `${reason}\0${message}`;
    if (s.last === id) return "duplicate";
    if (now > s.at) {
      s.tokens = Math.min(burst, s.tokens + (now - s.at) / refillMs);
      s.at = now;
    }
    if (s.tokens < 1) return "rate_limited";
    s.tokens -= 1;
    s.last = id;
    return "emit";
  }

  /**
   * Takes back an `emit` that never reached the API server (dropped or failed):
   * the same Event is not a duplicate next time, and its token is returned.
   */
  unrecord(key: string, reason: string, message: string): void {
    const s = this.#objects.get(key);
    if (!s || s.last !== `${reason}\0${message}`) return;
    s.last = undefined;
    s.tokens = Math.min(this.#options.burst, s.tokens + 1);
  }

  /** Forgets an object (deleted), so a new object of the same name starts afresh. */
  forget(key: string): void {
    this.#objects.delete(key);
  }
}
