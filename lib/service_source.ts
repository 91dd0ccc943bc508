/**
 * The Service source: LIST then WATCH Services, forever. The agent, not a
 * library informer, owns the watch's life: restart with backoff after any
 * error, relist on 410 Gone, bookmarks and a server timeout on every watch,
 * and a deadline that restarts a watch that went silent.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { Backoff, type BackoffOptions, sleep } from "./backoff.ts";
import { ApiError, type Query, type WatchEvent } from "./kube_api.ts";
import { projectService, type ServiceRecord } from "./service.ts";
import { ShapeError } from "./shape.ts";

const log = getLogger(["kube-gw", "source"]);

/** The part of {@linkcode KubeApi} the source needs. */
export interface ListWatchApi {
  list(path: string, query: Query, signal: AbortSignal): Promise<Record<string, unknown>>;
  watch(
    path: string,
    query: Query,
    signal: AbortSignal,
    onData?: () => void,
  ): AsyncIterable<WatchEvent>;
}

/** Receives what the source learns. */
export interface ServiceSink {
  /** A complete list of the Services in scope (one namespace, or all). */
  replace(services: ServiceRecord[], namespace: string | undefined): void;
  upsert(service: ServiceRecord): void;
  remove(namespace: string, name: string): void;
}

/** Why a watch was restarted, for metrics. */
export type RestartReason = "closed" | "error" | "gone" | "stalled";

/** Options for {@linkcode ServiceSource}. */
export interface ServiceSourceOptions {
  readonly api: ListWatchApi;
  readonly sink: ServiceSink;
  /** One namespace, or all when undefined. */
  readonly namespace?: string;
  readonly labelSelector?: string;
  /** Items per LIST page. */
  readonly pageSize?: number;
  /** The `timeoutSeconds` for each watch; random in [300, 600) by default. */
  readonly watchTimeoutSeconds?: () => number;
  /**
   * Restart a watch that sent nothing, not even a bookmark, for this long. By
   * default 150 s (API servers send a bookmark about once a minute), or the
   * watch timeout plus 30 s if that is shorter.
   */
  readonly silenceMs?: (timeoutSeconds: number) => number;
  readonly backoff?: BackoffOptions;
  /** Called on every watch restart. */
  readonly onRestart?: (reason: RestartReason) => void;
}

class WatchStalled extends Error {
  constructor(ms: number) {
    super(`watch sent nothing for ${Math.round(ms / 1000)}s`);
    this.name = "WatchStalled";
  }
}

function resourceVersionOf(obj: Record<string, unknown>): string | undefined {
  const md = obj.metadata as { resourceVersion?: unknown } | undefined;
  return typeof md?.resourceVersion === "string" ? md.resourceVersion : undefined;
}

/** Lists and watches the Services of one scope and feeds a sink. */
export class ServiceSource {
  readonly #o: ServiceSourceOptions;
  readonly #path: string;
  readonly #backoff: Backoff;
  #resourceVersion: string | undefined;
  #synced = false;
  #syncedWaiters: (() => void)[] = [];

  constructor(options: ServiceSourceOptions) {
    this.#o = options;
    this.#path = options.namespace === undefined
      ? "/api/v1/services"
      : `/api/v1/namespaces/${encodeURIComponent(options.namespace)}/services`;
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

  get #scope(): string {
    return this.#o.namespace === undefined ? "all namespaces" : `namespace ${this.#o.namespace}`;
  }

  /** Runs until `signal` aborts; never throws for API trouble. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        if (this.#resourceVersion === undefined) await this.#list(signal);
        const started = performance.now();
        const events = await this.#watch(signal);
        if (events > 0 || performance.now() - started > 10_000) this.#backoff.reset();
        this.#o.onRestart?.("closed");
        log.debug("watch of {scope} ended after {events} events; resuming", {
          scope: this.#scope,
          events,
        });
        // A server that closes watches at once would make this a hot loop.
        if (events === 0 && performance.now() - started < 1000) {
          await sleep(this.#backoff.next(), signal);
        }
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof ApiError && err.gone) {
          log.info("resource version of {scope} expired (410 Gone); listing again", {
            scope: this.#scope,
          });
          this.#resourceVersion = undefined;
          this.#o.onRestart?.("gone");
          continue;
        }
        const delay = this.#backoff.next();
        this.#o.onRestart?.(err instanceof WatchStalled ? "stalled" : "error");
        log.warn("Kubernetes API ({scope}): {error}; retrying in {delay}ms", {
          scope: this.#scope,
          error: (err as Error).message,
          delay,
        });
        try {
          await sleep(delay, signal);
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

  async #list(signal: AbortSignal): Promise<void> {
    const services: ServiceRecord[] = [];
    let cont: string | undefined;
    let rv: string | undefined;
    do {
      const page = await this.#o.api.list(this.#path, {
        limit: this.#o.pageSize ?? 500,
        continue: cont,
        labelSelector: this.#o.labelSelector,
      }, signal);
      const items = Array.isArray(page.items) ? page.items : [];
      for (const item of items) {
        const svc = this.#project(item);
        if (svc) services.push(svc);
      }
      const md = (page.metadata ?? {}) as { continue?: unknown; resourceVersion?: unknown };
      cont = typeof md.continue === "string" && md.continue ? md.continue : undefined;
      if (rv === undefined && typeof md.resourceVersion === "string") rv = md.resourceVersion;
    } while (cont);
    if (!rv) throw new ApiError(`GET ${this.#path}: the list carries no resourceVersion`);
    this.#o.sink.replace(services, this.#o.namespace);
    this.#resourceVersion = rv;
    this.#backoff.reset();
    log.debug("listed {count} Services in {scope} at resourceVersion {rv}", {
      count: services.length,
      scope: this.#scope,
      rv,
    });
    if (!this.#synced) {
      this.#synced = true;
      for (const w of this.#syncedWaiters.splice(0)) w();
    }
  }

  #project(obj: unknown): ServiceRecord | undefined {
    try {
      return projectService(obj);
    } catch (err) {
      if (!(err instanceof ShapeError)) throw err;
      log.warn("skipping an object in {scope}: {error}", {
        scope: this.#scope,
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
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => local.abort(new WatchStalled(silenceMs)), silenceMs);
    };
    arm();
    let events = 0;
    try {
      const stream = this.#o.api.watch(
        this.#path,
        {
          resourceVersion: this.#resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds,
          labelSelector: this.#o.labelSelector,
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
      clearTimeout(timer);
      local.abort();
    }
  }

  #apply(ev: WatchEvent): void {
    const rv = resourceVersionOf(ev.object);
    switch (ev.type) {
      case "ADDED":
      case "MODIFIED": {
        const svc = this.#project(ev.object);
        if (svc) this.#o.sink.upsert(svc);
        break;
      }
      case "DELETED": {
        const svc = this.#project(ev.object);
        if (svc) this.#o.sink.remove(svc.namespace, svc.name);
        break;
      }
      case "BOOKMARK":
        break;
      case "ERROR": {
        const status = ev.object as { code?: unknown; message?: unknown };
        const code = typeof status.code === "number" ? status.code : undefined;
        const message = typeof status.message === "string" ? status.message : "watch error";
        throw new ApiError(`watch ${this.#path}: ${code ?? ""} ${message}`.trim(), code);
      }
      default:
        log.debug("ignoring watch event of type {type}", { type: ev.type });
    }
    if (rv !== undefined) this.#resourceVersion = rv;
  }
}
