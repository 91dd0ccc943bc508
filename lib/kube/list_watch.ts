/**
 * The list-watch engine: LIST then WATCH one collection of any resource kind,
 * forever, and feed what it learns to a sink. kube-gw, not a library
 * informer, owns the watch's life: a paged LIST, a WATCH from the list's
 * resourceVersion with bookmarks and a server timeout, a deadline that
 * restarts a watch that went silent (the watch's own timeout plus a margin:
 * bookmarks are not guaranteed), a relist on 410 Gone (as a watch event or an
 * HTTP status) and on 504 "Too large resource version" (an etcd restore), one
 * full unpaged list when a continue token expires mid-list, and a restart
 * with backoff and jitter after any other error, honouring `Retry-After`.
 * The backoff starts over after a healthy watch (one that delivered events or
 * bookmarks, or stayed open 10 s), so a proxy that cuts long-lived
 * connections costs a reconnect within about a second.
 *
 * A LIST answer that is not a list of the expected kind is an error, never
 * "no objects": what the sink holds stays. The engine keeps the time it was
 * last known current (a complete list, an event, a bookmark, or the client's
 * word that the watch's connection is alive), for readiness.
 *
 * Each object is decoded at once into the small record its consumer keeps;
 * whole API objects are never kept. An object the decoder refuses is skipped
 * with one warning per object, not one per event; a list in which items
 * were present and none could be read is refused whole.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { Backoff, type BackoffOptions } from "../base/backoff.ts";
import { type ListWatchObserver, quietListWatchObserver, type RestartReason } from "./observer.ts";
import { looseName, readListPage, resourceVersionOf } from "./collection.ts";
import { ShapeError } from "../base/shape.ts";
import { ApiError, statusReasons } from "./errors.ts";
import { type Clock, sleep, type TimerId } from "../base/clock.ts";
import { type ListWatchApi, type WatchEvent } from "./ports.ts";
import { UnreadableWatchEvent } from "./watch_stream.ts";

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
  /** The collection, e.g. from `collectionPath` (`collection.ts`). */
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
   * The API server ends each watch after its `timeoutSeconds`; bookmarks come
   * only when the watch cache's resourceVersion moved, so a quiet cluster may
   * send nothing until then. A dead connection is the client's to find
   * (`KubeApi`'s liveness probe), well before this.
   * @default (timeoutSeconds + 30) seconds
   */
  readonly silenceMs?: (timeoutSeconds: number) => number;
  /** Delays between attempts after an error. @default 500 ms doubling to 30 s */
  readonly backoff?: BackoffOptions;
  /** The longest `Retry-After` honoured. @default 60_000 ms */
  readonly maxRetryAfterMs?: number;
  /** Silence deadlines and backoff run on it (`systemClock` in the programs). */
  readonly clock: Clock;
  /** Told of every watch restart. @default quietListWatchObserver */
  readonly observer?: ListWatchObserver;
}

class WatchStalled extends Error {
  constructor(ms: number) {
    super(`watch sent nothing for ${Math.round(ms / 1000)}s`);
    this.name = "WatchStalled";
  }
}

/** A watch that stayed open this long without an error was healthy: the backoff starts over. */
export const HEALTHY_WATCH_MS = 10_000;

/** The margin after a watch's `timeoutSeconds` before its silence counts as a stall. */
export const SILENCE_MARGIN_SECONDS = 30;

/** How many undecodable objects are remembered so each is warned about once. */
const WARNED_LIMIT = 1024;

/** The state of the watch being run, for the backoff rule. */
interface WatchRun {
  readonly started: number;
  /** Events delivered, bookmarks included, errors not. */
  events: number;
}

/** Lists and watches one collection and feeds a sink. */
export class ListWatch<T> {
  readonly #o: ListWatchOptions<T>;
  readonly #clock: Clock;
  readonly #observer: ListWatchObserver;
  readonly #backoff: Backoff;
  /** Objects warned about (by `namespace/name`, or the error for a nameless one). */
  readonly #warned = new Set<string>();
  #resourceVersion: string | undefined;
  #synced = false;
  #syncedWaiters: (() => void)[] = [];
  #lastCurrent: number | undefined;
  #lastError: string | undefined;
  /** Relists (410, 504 too large) since the last healthy watch. */
  #relists = 0;
  /** The last error was a refusal of the credentials, already warned about. */
  #authWarned = false;

  constructor(options: ListWatchOptions<T>) {
    this.#o = options;
    this.#clock = options.clock;
    this.#observer = options.observer ?? quietListWatchObserver;
    this.#backoff = new Backoff(options.backoff);
  }

  /** The collection watched. */
  get path(): string {
    return this.#o.path;
  }

  /** The kind watched, e.g. `Service`. */
  get kind(): string {
    return this.#o.kind;
  }

  /** Whether a complete list has arrived at least once. */
  get synced(): boolean {
    return this.#synced;
  }

  /**
   * When (on the clock) the engine was last known current: a complete list,
   * an event or bookmark, or the client's word that the open watch's
   * connection is alive. Undefined before the first list.
   */
  get lastCurrent(): number | undefined {
    return this.#lastCurrent;
  }

  /** The last error met since the engine was last current, for readiness; undefined if none. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** Resolves once the first complete list has reached the sink. */
  whenSynced(): Promise<void> {
    if (this.#synced) return Promise.resolve();
    return new Promise((r) => this.#syncedWaiters.push(r));
  }

  /** Runs until `signal` aborts; never throws for API trouble. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let run: WatchRun | undefined;
      try {
        if (this.#resourceVersion === undefined) await this.#list(signal);
        run = { started: this.#clock.now(), events: 0 };
        await this.#watch(run, signal);
        const healthy = this.#healthy(run);
        this.#restarted("closed");
        log.debug("watch of {path} ended after {events} events; resuming", {
          path: this.#o.path,
          events: run.events,
        });
        // The server's timeout: resume at once. A server that closes watches at
        // once with nothing would make that a hot loop: back off.
        if (!healthy) await sleep(this.#clock, this.#backoff.next(), signal);
      } catch (err) {
        if (signal.aborted) return;
        if (run) this.#healthy(run);
        this.#lastError = (err as Error).message;
        // 410 Gone, 504 too large: the resource version is no good. An unreadable event: the
        // same resource version would meet it again; a list reads the object whole (or skips
        // it) and resumes past it. Relist at once, but not in a loop: a second in a row backs off.
        const unreadable = err instanceof UnreadableWatchEvent;
        if (unreadable || (err instanceof ApiError && (err.gone || err.tooLarge))) {
          const why = unreadable
            ? err.message
            : (err as ApiError).gone
            ? "resource version expired (410 Gone)"
            : "resource version is newer than the server's (504)";
          const line = "Kubernetes API ({path}): {why}; listing again";
          if (unreadable) log.warn(line, { path: this.#o.path, why });
          else log.info(line, { path: this.#o.path, why });
          this.#resourceVersion = undefined;
          this.#restarted(unreadable ? "error" : "gone");
          if (++this.#relists > 1) {
            if (!await this.#pause(this.#delay(err), signal)) return;
          }
          continue;
        }
        if (err instanceof WatchStalled) {
          // Silence past the server's own timeout: the connection is suspect.
          // A new one, at once; the backoff does not grow.
          this.#restarted("stalled");
          this.#o.api.reset?.(err.message);
          log.warn("Kubernetes API ({path}): {error}; restarting the watch", {
            path: this.#o.path,
            error: err.message,
          });
          continue;
        }
        const delay = this.#delay(err);
        this.#restarted("error");
        // Refused credentials are warned about once until they work again (by the
        // client, for every request); each retry here is a debug line.
        const auth = err instanceof ApiError && err.auth;
        const fields = { path: this.#o.path, error: (err as Error).message, delay };
        const line = "Kubernetes API ({path}): {error}; retrying in {delay}ms";
        if (auth && this.#authWarned) log.debug(line, fields);
        else log.warn(line, fields);
        this.#authWarned = auth;
        if (!await this.#pause(delay, signal)) return;
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

  /** The next backoff delay, or the server's `Retry-After` (capped) when longer. */
  #delay(err: unknown): number {
    const delay = this.#backoff.next();
    const asked = err instanceof ApiError ? err.retryAfterMs : undefined;
    if (asked === undefined) return delay;
    return Math.max(delay, Math.min(asked, this.#o.maxRetryAfterMs ?? 60_000));
  }

  /** Sleeps; false when the signal aborted meanwhile. */
  async #pause(ms: number, signal: AbortSignal): Promise<boolean> {
    try {
      await sleep(this.#clock, ms, signal);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * The one place that decides when the backoff starts over: after a watch
   * that delivered events or bookmarks, or stayed open 10 s, however it ended.
   * A complete list alone does not: a watch that fails at once after each
   * list must not turn into a hot loop.
   */
  #healthy(run: WatchRun): boolean {
    const healthy = run.events > 0 || this.#clock.now() - run.started >= HEALTHY_WATCH_MS;
    if (healthy) {
      this.#backoff.reset();
      this.#relists = 0;
    }
    return healthy;
  }

  #current(): void {
    this.#lastCurrent = this.#clock.now();
    this.#lastError = undefined;
  }

  async #list(signal: AbortSignal): Promise<void> {
    const items: T[] = [];
    let cont: string | undefined;
    let rv: string | undefined;
    let raw = 0;
    let paged = true;
    do {
      const request = `GET ${this.#o.path}${cont ? " (continued)" : ""}`;
      let body: unknown;
      try {
        body = await this.#o.api.list(this.#o.path, {
          limit: paged ? this.#o.pageSize ?? 500 : undefined,
          continue: cont,
          labelSelector: this.#o.labelSelector,
          fieldSelector: this.#o.fieldSelector,
        }, signal);
      } catch (err) {
        if (!(cont && err instanceof ApiError && err.gone)) throw err;
        // The continue token expired mid-list: one full unpaged list, as
        // client-go's pager does; a 410 on that goes to the caller.
        log.info("continue token of {path} expired; listing it whole, unpaged", {
          path: this.#o.path,
        });
        items.length = 0;
        raw = 0;
        cont = undefined;
        rv = undefined;
        paged = false;
        continue;
      }
      const page = readListPage(body, this.#o.kind, request);
      raw += page.items.length;
      for (const item of page.items) {
        const record = this.#decode(item);
        if (record !== undefined) items.push(record);
      }
      cont = paged ? page.continue : undefined;
      rv ??= page.resourceVersion;
    } while (cont || (!paged && rv === undefined));
    if (raw > 0 && items.length === 0) {
      throw new ApiError(
        `GET ${this.#o.path}: none of the ${raw} items of the list could be read; kept what was known`,
      );
    }
    this.#o.sink.replace(items);
    this.#resourceVersion = rv;
    this.#current();
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
      this.#skipped(obj, err.message);
      return undefined;
    }
  }

  /** Warns, once per object (as far as its name can be read), that it was skipped. */
  #skipped(obj: unknown, why: string): void {
    const key = looseName(obj) ?? why;
    if (this.#warned.has(key)) return;
    if (this.#warned.size >= WARNED_LIMIT) {
      this.#warned.delete(this.#warned.values().next().value!);
    }
    this.#warned.add(key);
    log.warn("skipping a {kind} at {path}: {error}", {
      kind: this.#o.kind,
      path: this.#o.path,
      error: why,
    });
  }

  /** Watches from the current resource version, counting events in `run`. */
  async #watch(run: WatchRun, outer: AbortSignal): Promise<void> {
    const timeoutSeconds = this.#o.watchTimeoutSeconds?.() ?? 300 + Math.floor(Math.random() * 300);
    const silenceMs = this.#o.silenceMs?.(timeoutSeconds) ??
      (timeoutSeconds + SILENCE_MARGIN_SECONDS) * 1000;
    const local = new AbortController();
    const signal = AbortSignal.any([outer, local.signal]);
    let timer: TimerId | undefined;
    const arm = () => {
      this.#clock.clearTimeout(timer);
      timer = this.#clock.setTimeout(() => local.abort(new WatchStalled(silenceMs)), silenceMs);
    };
    arm();
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
        () => {
          if (!signal.aborted) this.#current();
        },
      );
      for await (const ev of stream) {
        this.#apply(ev);
        run.events++;
        this.#current();
      }
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
        try {
          if (ev.type === "DELETED") this.#o.sink.delete(item);
          else this.#o.sink.upsert(item);
        } catch (err) {
          // A sink that cannot take one object in must not wedge the watch on it: resuming
          // from the same resource version would meet the same event again.
          this.#skipped(ev.object, `the sink refused it: ${(err as Error).message}`);
        }
        break;
      }
      case "BOOKMARK":
        break;
      case "ERROR": {
        const status = ev.object as { code?: unknown; message?: unknown };
        const code = typeof status.code === "number" ? status.code : undefined;
        const message = typeof status.message === "string"
          ? status.message.slice(0, 300)
          : "watch error";
        throw new ApiError(
          `watch ${this.#o.path}: ${code ?? ""} ${message}`.trim(),
          code,
          statusReasons(ev.object),
        );
      }
      default:
        log.debug("ignoring watch event of type {type}", { type: ev.type });
    }
    if (rv !== undefined) this.#resourceVersion = rv;
  }
}
