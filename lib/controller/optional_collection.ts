/**
 * A collection that may not exist: the AddressPools of a cluster where their
 * CustomResourceDefinition is not installed (yet). A LIST answered 404 is an
 * empty list, so the controller is ready and runs from `--pool` and the
 * pools ConfigMap; the watch then waits {@linkcode MISSING_RECHECK_MS} and
 * ends with 410 Gone, so the engine lists again and finds the pools once the
 * CRD is installed. Any other error goes through. Pure (time through the
 * injected clock).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ListWatchApi, Query, WatchEvent } from "../kube/ports.ts";
import { ApiError } from "../kube/errors.ts";
import { type Clock, sleep } from "../base/clock.ts";

const log = getLogger(["kube-gw", "controller"]);

/** How often a missing collection is listed again. */
export const MISSING_RECHECK_MS = 60_000;

/** `api` with a 404 on LIST taken for an empty list of `kind` (logged once per absence). */
export function missingAsEmpty(
  api: ListWatchApi,
  kind: string,
  clock: Clock,
): ListWatchApi {
  const missing = new Set<string>();
  return {
    async list(path: string, query: Query, signal: AbortSignal) {
      try {
        const page = await api.list(path, query, signal);
        if (missing.delete(path)) log.info("{path} is served now: reading {kind}s", { path, kind });
        return page;
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 404) throw err;
        if (!missing.has(path)) {
          log.warn(
            "{path} is not served (is the {kind} CustomResourceDefinition installed?): no {kind}s; checking again every {s}s",
            { path, kind, s: MISSING_RECHECK_MS / 1000 },
          );
        }
        missing.add(path);
        return { kind: `${kind}List`, metadata: { resourceVersion: "0" }, items: [] };
      }
    },
    watch(path, query, signal, onData, onCurrent): AsyncIterable<WatchEvent> {
      if (!missing.has(path)) return api.watch(path, query, signal, onData, onCurrent);
      const next = async (): Promise<IteratorResult<WatchEvent>> => {
        await sleep(clock, MISSING_RECHECK_MS, signal);
        throw new ApiError(`${path} is not served: listing it again`, 410);
      };
      return { [Symbol.asyncIterator]: () => ({ next }) };
    },
    reset: api.reset ? (why) => api.reset!(why) : undefined,
  };
}
