/**
 * Watch streams: one JSON line per event, replayed from a resourceVersion or
 * started with the current objects; objects that start or stop matching a
 * selector arrive as ADDED or DELETED; bookmarks only when the resource's watch
 * cache moved past what the watch last saw (at most every `bookmarkIntervalMs`,
 * and once before the timeout, as kube-apiserver's cacher does); the stream
 * ends after `timeoutSeconds` (or a random 1–2× `minRequestTimeoutSeconds`
 * when none was asked). Streams can be stalled (events dropped, nothing sent,
 * connection kept), ended cleanly or cut.
 *
 * @module
 */

import { apiVersion, type ResourceName, RESOURCES } from "./resources.ts";
import type { Matcher } from "./selectors.ts";
import { type Change, itemText, type K8sObject, type Store } from "./store.ts";

/** Where a stream's bytes go; the transport implements it. */
export interface StreamSink {
  write(text: string): void;
  /** Ends the response cleanly. */
  end(): void;
  /** Breaks the response mid-stream (connection reset or stream reset). */
  cut(): void;
}

/** One open watch. */
export interface Watch {
  readonly resource: ResourceName;
  readonly namespace?: string;
  readonly match: Matcher;
  readonly bookmarks: boolean;
  readonly connection: string;
  readonly sink: StreamSink;
  /** The newest resourceVersion this watch has been sent (event or bookmark) or started at. */
  lastRv: number;
  readonly deadline: number;
  /** Nothing more is written; the connection stays open. */
  stalled: boolean;
  timer?: ReturnType<typeof setTimeout>;
  bookmarkTimer?: ReturnType<typeof setTimeout>;
}

/** How watches behave. */
export interface WatchOptions {
  /** @default 60_000 */
  bookmarkIntervalMs: number;
  /** @default 1800 */
  minRequestTimeoutSeconds: number;
}

/** Parameters of a new watch. */
export interface WatchRequest {
  readonly resource: ResourceName;
  readonly namespace?: string;
  readonly match: Matcher;
  readonly bookmarks: boolean;
  readonly connection: string;
  /** Replay after this resourceVersion; undefined sends the current objects as ADDED. */
  readonly from?: number;
  readonly timeoutSeconds?: number;
}

/** The set of open watches, fed by the store. */
export class Watches {
  readonly #store: Store;
  readonly #opts: WatchOptions;
  readonly #open = new Set<Watch>();
  /** Called right after each event (not bookmarks or errors) is written. */
  onEventWritten?: (type: string, object: K8sObject, at: number) => void;

  constructor(store: Store, opts: WatchOptions) {
    this.#store = store;
    this.#opts = opts;
    store.subscribe((c) => {
      for (const w of this.#open) if (w.resource === c.resource) this.#send(w, c);
    });
  }

  /** Open watches. */
  get size(): number {
    return this.#open.size;
  }

  /** Open watches, for faults that act on some of them. */
  all(): Watch[] {
    return [...this.#open];
  }

  /** Starts a watch on `sink`. */
  open(req: WatchRequest, sink: StreamSink): Watch {
    const timeout = req.timeoutSeconds && req.timeoutSeconds > 0
      ? req.timeoutSeconds * 1000
      : this.#opts.minRequestTimeoutSeconds * 1000 * (1 + Math.random());
    const w: Watch = {
      resource: req.resource,
      namespace: req.namespace,
      match: req.match,
      bookmarks: req.bookmarks,
      connection: req.connection,
      sink,
      lastRv: req.from ?? this.#store.rv,
      deadline: Date.now() + timeout,
      stalled: false,
    };
    this.#open.add(w);
    if (req.from === undefined) {
      for (const key of this.#store.sortedKeys(req.resource)) {
        const obj = this.#store.byKey(req.resource, key)!;
        if (this.#inScope(w, obj)) this.#event(w, "ADDED", obj);
      }
      w.lastRv = this.#store.rv;
    } else {
      for (const c of this.#store.since(req.from)) if (c.resource === w.resource) this.#send(w, c);
    }
    w.timer = setTimeout(() => this.end(w), timeout);
    this.#scheduleBookmark(w);
    return w;
  }

  #inScope(w: Watch, obj: K8sObject | undefined): obj is K8sObject {
    return !!obj && (!w.namespace || obj.metadata.namespace === w.namespace) && w.match(obj);
  }

  #send(w: Watch, c: Change): void {
    if (c.type === "DELETED") {
      if (this.#inScope(w, c.after)) this.#event(w, "DELETED", c.after);
      return;
    }
    const was = c.type === "MODIFIED" && this.#inScope(w, c.before);
    const is = this.#inScope(w, c.after);
    if (was && is) this.#event(w, "MODIFIED", c.after);
    else if (!was && is) this.#event(w, "ADDED", c.after);
    else if (was && !is) this.#event(w, "DELETED", c.after);
  }

  #event(w: Watch, type: string, obj: K8sObject): void {
    if (w.stalled) return;
    const t = RESOURCES[w.resource];
    w.sink.write(
      `{"type":"${type}","object":{"kind":"${t.kind}","apiVersion":"${apiVersion(t)}",${
        itemText(obj).slice(1)
      }}\n`,
    );
    w.lastRv = Math.max(w.lastRv, Number(obj.metadata.resourceVersion));
    this.onEventWritten?.(type, obj, performance.now());
  }

  /** Writes one raw event line, e.g. an ERROR; not counted as an event. */
  writeRaw(w: Watch, ev: unknown): void {
    if (!w.stalled) w.sink.write(JSON.stringify(ev) + "\n");
  }

  #scheduleBookmark(w: Watch): void {
    if (!w.bookmarks) return;
    const every = this.#opts.bookmarkIntervalMs;
    const now = Date.now();
    let at = every > 0 ? now + every : Infinity;
    const pretimeout = w.deadline - 2000;
    if (pretimeout < at) at = pretimeout;
    if (at < now || at === Infinity) return;
    w.bookmarkTimer = setTimeout(() => {
      this.bookmark(w);
      this.#scheduleBookmark(w);
    }, at - now);
  }

  /** Sends a BOOKMARK if the watch cache moved past what `w` last saw; returns whether it did. */
  bookmark(w: Watch): boolean {
    const rv = this.#store.cacheRv(w.resource);
    if (!w.bookmarks || w.stalled || rv <= w.lastRv) return false;
    const t = RESOURCES[w.resource];
    w.sink.write(
      JSON.stringify({
        type: "BOOKMARK",
        object: {
          kind: t.kind,
          apiVersion: apiVersion(t),
          metadata: { resourceVersion: String(rv) },
        },
      }) + "\n",
    );
    w.lastRv = rv;
    return true;
  }

  /** Ends `w` cleanly (a bookmark first when one is due), as the server timeout does. */
  end(w: Watch): void {
    this.bookmark(w);
    this.drop(w);
    w.sink.end();
  }

  /** Breaks `w` mid-stream. */
  cut(w: Watch): void {
    this.drop(w);
    w.sink.cut();
  }

  /** Forgets `w` (its client went away); the stream is not touched. */
  drop(w: Watch): void {
    clearTimeout(w.timer);
    clearTimeout(w.bookmarkTimer);
    this.#open.delete(w);
  }
}
