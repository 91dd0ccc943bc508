/**
 * The list-watch engine: LIST then WATCH one collection of any resource kind,
 * forever, and feed what it learns to a sink. The agent, not a library
 * informer, owns the watch's life: a paged LIST, a WATCH from the list's
 * resourceVersion with bookmarks and a server timeout, a deadline that
 * restarts a watch that went silent, a relist on 410 Gone (as a watch event,
 * an HTTP status or an expired continue token), and a restart with backoff
 * and jitter after any other error.
 *
 * Each object is decoded at once into the small record its consumer keeps;
 * whole API objects are never kept. An object the decoder refuses is skipped
 * with one warning per object, not one per event.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { Backoff, type BackoffOptions } from "./backoff.ts";
import { type AgentObserver, quietObserver, type RestartReason } from "./observer.ts";
import {
  ApiError,
  type Clock,
  type ListWatchApi,
  sleep,
  type TimerId,
  type WatchEvent,
} from "./ports.ts";
import { ShapeError } from "./shape.ts";

const log = getLogger(["kube-gw", "source"]);

/** Receives what the engine learns, for the one scope the sink belongs to. */
export interface ListWatchSink<T> {
  /** A complete list of the objects in scope: anything not in it is gone. */
  replace(items: T[]): void;
  /** An object was added or changed. */
  upsert(item: T): void;
  /** An object was deleted (its last state). */
  delete(item: T): void;
}

/** Options for {@linkcode ListWatch}. */
export interface ListWatchOptions<T> {
  readonly api: ListWatchApi;
  /** The collection, e.g. from {@linkcode collectionPath}. */
  readonly path: string;
  /** The kind, for logs and the watch-restart metric, e.g. `Service`. */
  readonly kind: string;
  /** Reads one raw object into a record; throws {@linkcode ShapeError} for one it cannot read. */
  readonly decode: (obj: unknown) => T;
  readonly sink: ListWatchSink<T>;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  /** Items per LIST page. @default 500 */
  readonly pageSize?: number;
  /** The `timeoutSeconds` of each watch. @default random in [300, 600) */
  readonly watchTimeoutSeconds?: () => number;
  /**
   * Restart a watch that sent nothing, not even a bookmark, for this long.
   * API servers send a bookmark about once a minute.
   * @default min(timeoutSeconds + 30, 150) seconds
   */
  readonly silenceMs?: (timeoutSeconds: number) => number;
  /** Delays between attempts after an error. @default 500 ms doubling to 30 s */
  readonly backoff?: BackoffOptions;
  /** Silence deadlines and backoff run on it (`systemClock` in the agent). */
  readonly clock: Clock;
  /** Told of every watch restart. @default quietObserver */
  readonly observer?: AgentObserver;
}

/** The parts of an API path to a collection. */
export interface CollectionRef {
  /** The API group; `""` or undefined for the core group (`/api/v1`). */
  readonly group?: string;
  readonly version: string;
  /** The plural resource name, e.g. `services`, `endpointslices`. */
  readonly resource: string;
}

/**
 * The API path of a collection in one namespace, or in all when `namespace`
 * is undefined: `/api/v1/namespaces/web/services`,
 * `/apis/discovery.k8s.io/v1/endpointslices`.
 */
export function collectionPath(ref: CollectionRef, namespace?: string): string {
  const base = ref.group ? `/apis/${ref.group}/${ref.version}` : `/api/${ref.version}`;
  const ns = namespace === undefined ? "" : `/namespaces/${encodeURIComponent(namespace)}`;
  return `${base}${ns}/${ref.resource}`;
}

class WatchStalled extends Error {
  constructor(ms: number) {
    super(`watch sent nothing for ${Math.round(ms / 1000)}s`);
    this.name = "WatchStalled";
  }
}

/** How many undecodable objects are remembered so each is warned about once. */
const WARNED_LIMIT = 1024;

function resourceVersionOf(obj: Record<string, unknown>): string | undefined {
  const md = obj.metadata as { resourceVersion?: unknown } | undefined;
  return typeof md?.resourceVersion === "string" ? md.resourceVersion : undefined;
}

/** `namespace/name` of a raw object as far as it can be read, for the warned set. */
function looseName(obj: unknown): string | undefined {
  const md = (obj as { metadata?: { namespace?: unknown; name?: unknown } } | null)?.metadata;
  if (typeof md !== "object" || md === null) return undefined;
  return `${String(md.namespace ?? "")}/${String(md.name ?? "")}`.slice(0, 320);
}

/** Lists and watches one collection and feeds a sink. */
export class ListWatch<T> {
  readonly #o: ListWatchOptions<T>;
  readonly #clock: Clock;
  readonly #observer: AgentObserver;
  readonly #backoff: Backoff;
  /** Objects warned about (by `namespace/name`, or the error for a nameless one). */
  readonly #warned = new Set<string>();
  #resourceVersion: string | undefined;
  #synced = false;
  #syncedWaiters: (() => void)[] = [];

  constructor(options: ListWatchOptions<T>) {
    this.#o = options;
    this.#clock = options.clock;
    this.#observer = options.observer ?? quietObserver;
    this.#backoff = new Backoff(options.backoff);
  }

  /** Whether a complete list has arrived at least once. */
  get synced(): boolean {
    return this.#synced;
  }

  /** Resolves once the first complete list has reached the sink. */
  whenSynced(): Promise<void> {
    if (this.#synced) return Promise.resolve();
    return new Promise((r) => this.#syncedWaiters.push(r));
  }

  /** Runs until `signal` aborts; never throws for API trouble. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        if (this.#resourceVersion === undefined) await this.#list(signal);
        const started = this.#clock.now();
        const events = await this.#watch(signal);
        const lasted = this.#clock.now() - started;
        this.#succeeded({ events, lasted });
        this.#restarted("closed");
        log.debug("watch of {path} ended after {events} events; resuming", {
          path: this.#o.path,
          events,
        });
        // A server that closes watches at once would make this a hot loop.
        if (events === 0 && lasted < 1000) {
          await sleep(this.#clock, this.#backoff.next(), signal);
        }
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof ApiError && err.gone) {
          log.info("resource version of {path} expired (410 Gone); listing again", {
            path: this.#o.path,
          });
          this.#resourceVersion = undefined;
          this.#restarted("gone");
          continue;
        }
        const delay = this.#backoff.next();
        this.#restarted(err instanceof WatchStalled ? "stalled" : "error");
        log.warn("Kubernetes API ({path}): {error}; retrying in {delay}ms", {
          path: this.#o.path,
          error: (err as Error).message,
          delay,
        });
        try {
          await sleep(this.#clock, delay, signal);
        } catch {
          return;
        }
      }
    }
  }

  /** Lists once and feeds the sink, without watching (for `once` and `plan`). */
  listOnce(signal: AbortSignal): Promise<void> {
    return this.#list(signal);
  }

  #restarted(reason: RestartReason): void {
    this.#observer.watchRestarted(this.#o.kind, reason);
  }

  /**
   * The one place that decides when the backoff starts over: after a complete
   * list, and after a watch that delivered events or lasted 10 s.
   */
  #succeeded(step: "listed" | { events: number; lasted: number }): void {
    if (step === "listed" || step.events > 0 || step.lasted > 10_000) this.#backoff.reset();
  }

  async #list(signal: AbortSignal): Promise<void> {
    const items: T[] = [];
    let cont: string | undefined;
    let rv: string | undefined;
    do {
      const page = await this.#o.api.list(this.#o.path, {
        limit: this.#o.pageSize ?? 500,
        continue: cont,
        labelSelector: this.#o.labelSelector,
        fieldSelector: this.#o.fieldSelector,
      }, signal);
      for (const raw of Array.isArray(page.items) ? page.items : []) {
        const item = this.#decode(raw);
        if (item !== undefined) items.push(item);
      }
      const md = (page.metadata ?? {}) as { continue?: unknown; resourceVersion?: unknown };
      cont = typeof md.continue === "string" && md.continue ? md.continue : undefined;
      if (rv === undefined && typeof md.resourceVersion === "string") rv = md.resourceVersion;
    } while (cont);
    if (!rv) throw new ApiError(`GET ${this.#o.path}: the list carries no resourceVersion`);
    this.#o.sink.replace(items);
    this.#resourceVersion = rv;
    this.#succeeded("listed");
    log.debug("listed {count} {kind} objects at {path}, resourceVersion {rv}", {
      count: items.length,
      kind: this.#o.kind,
      path: this.#o.path,
      rv,
    });
    if (!this.#synced) {
      this.#synced = true;
      for (const w of this.#syncedWaiters.splice(0)) w();
    }
  }

  #decode(obj: unknown): T | undefined {
    try {
      return this.#o.decode(obj);
    } catch (err) {
      if (!(err instanceof ShapeError)) throw err;
      const key = looseName(obj) ?? err.message;
      if (this.#warned.has(key)) return undefined;
      if (this.#warned.size >= WARNED_LIMIT) {
        this.#warned.delete(this.#warned.values().next().value!);
      }
      this.#warned.add(key);
      log.warn("skipping a {kind} at {path}: {error}", {
        kind: this.#o.kind,
        path: this.#o.path,
        error: err.message,
      });
      return undefined;
    }
  }

  /** Watches from the current resource version; returns the number of events. */
  async #watch(outer: AbortSignal): Promise<number> {
    const timeoutSeconds = this.#o.watchTimeoutSeconds?.() ?? 300 + Math.floor(Math.random() * 300);
    const silenceMs = this.#o.silenceMs?.(timeoutSeconds) ??
      Math.min(timeoutSeconds + 30, 150) * 1000;
    const local = new AbortController();
    const signal = AbortSignal.any([outer, local.signal]);
    let timer: TimerId | undefined;
    const arm = () => {
      this.#clock.clearTimeout(timer);
      timer = this.#clock.setTimeout(() => local.abort(new WatchStalled(silenceMs)), silenceMs);
    };
    arm();
    let events = 0;
    try {
      const stream = this.#o.api.watch(
        this.#o.path,
        {
          resourceVersion: this.#resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds,
          labelSelector: this.#o.labelSelector,
          fieldSelector: this.#o.fieldSelector,
        },
        signal,
        arm,
      );
      for await (const ev of stream) {
        events++;
        this.#apply(ev);
      }
      return events;
    } catch (err) {
      if (local.signal.aborted && !outer.aborted) throw local.signal.reason;
      throw err;
    } finally {
      this.#clock.clearTimeout(timer);
      local.abort();
    }
  }

  #apply(ev: WatchEvent): void {
    const rv = resourceVersionOf(ev.object);
    switch (ev.type) {
      case "ADDED":
      case "MODIFIED":
      case "DELETED": {
        const item = this.#decode(ev.object);
        if (item === undefined) break;
        if (ev.type === "DELETED") this.#o.sink.delete(item);
        else this.#o.sink.upsert(item);
        break;
      }
      case "BOOKMARK":
        break;
      case "ERROR": {
        const status = ev.object as { code?: unknown; message?: unknown };
        const code = typeof status.code === "number" ? status.code : undefined;
        const message = typeof status.message === "string" ? status.message : "watch error";
        throw new ApiError(`watch ${this.#o.path}: ${code ?? ""} ${message}`.trim(), code);
      }
      default:
        log.debug("ignoring watch event of type {type}", { type: ev.type });
    }
    if (rv !== undefined) this.#resourceVersion = rv;
  }
}
