/**
 * One status write of the controller's loop and what its outcome means: on
 * success the cache learns the new version (the watch brings it too); a 409
 * means the Service changed since the version decided on, so it is decided
 * again from the newest cached version; a 404 means it is gone (the watch
 * says so); any other error is retried after the key's backoff, and the retry
 * decides again from the newest version.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ControllerObserver, StatusWriter } from "./ports.ts";
import type { LbServiceRecord } from "./lb_service.ts";
import { ApiError } from "../kube/errors.ts";
import type { Clock } from "../base/clock.ts";
import type { WorkQueue } from "./work_queue.ts";

const log = getLogger(["kube-gw", "controller"]);

/** What {@linkcode StatusWrites} works with: the loop's writer, cache and queue. */
export interface StatusWritesOptions {
  readonly status: StatusWriter;
  readonly observer: ControllerObserver;
  readonly clock: Clock;
  readonly queue: WorkQueue;
  /** The loop's cache of Services, by key. */
  readonly cache: Map<string, LbServiceRecord>;
}

/** Writes decided statuses for the loop. */
export class StatusWrites {
  readonly #o: StatusWritesOptions;

  constructor(options: StatusWritesOptions) {
    this.#o = options;
  }

  /**
   * Writes `addresses` as the status of `svc`, on the resourceVersion it was
   * decided on; false when it did not happen (decided again later, or the
   * term ended). `queuedAt`: when the key was queued, for the latency metric.
   */
  async write(
    key: string,
    svc: LbServiceRecord,
    addresses: readonly string[],
    queuedAt: number,
    signal: AbortSignal,
  ): Promise<boolean> {
    const { observer, queue, cache } = this.#o;
    try {
      const rv = await this.#o.status.write(svc, addresses, signal);
      observer.statusWritten(
        addresses.length > 0 ? "allocated" : "cleared",
        (this.#o.clock.now() - queuedAt) / 1000,
      );
      queue.succeeded(key);
      // The watch brings this version too; until then, the cache knows what was written.
      if (cache.get(key) === svc && rv) {
        // `addresses` is never changed (the allocator makes a new list for each change).
        cache.set(key, { ...svc, resourceVersion: rv, ingressIPs: addresses });
      }
      return true;
    } catch (err) {
      if (signal.aborted) return false;
      if (err instanceof ApiError && err.status === 409) {
        observer.writeFailed("conflict");
        log.debug("{key} changed since resourceVersion {rv}; deciding again from the watch", {
          key,
          rv: svc.resourceVersion,
        });
        // The newer version is in the cache already, or the watch brings it and queues the key.
        if (cache.get(key) !== svc) queue.add(key);
        return false;
      }
      if (err instanceof ApiError && err.status === 404) return false; // Deleted; the watch says so.
      observer.writeFailed("error");
      const delay = queue.retryLater(key);
      log.warn("cannot write the status of {key}: {error}; retrying in {delay}ms", {
        key,
        error: (err as Error).message,
        delay,
      });
      return false;
    }
  }
}
