/**
 * An API that lists no object at once and opens watches that stay silent
 * until aborted: for readiness tests, where only time (a fake clock) and the
 * client's word that a connection is alive (`current`) move anything.
 *
 * @module
 */

import type { JsonApi, ListWatchApi, Query, WatchEvent } from "../../../lib/kube/ports.ts";

/** See the module doc. Writes are refused: none is expected. */
export class QuietApi implements ListWatchApi, JsonApi {
  readonly #onCurrent = new Map<string, () => void>();
  /** The liveness probe was answered: every open watch (they share a connection) is current. */
  current(): void {
    for (const f of this.#onCurrent.values()) f();
  }
  list(_p: string, _q: Query): Promise<Record<string, unknown>> {
    return Promise.resolve({ metadata: { resourceVersion: "5" }, items: [] });
  }
  // deno-lint-ignore require-yield -- a watch that never sends an event is the point
  async *watch(
    path: string,
    _q: Query,
    signal: AbortSignal,
    _onData?: () => void,
    onCurrent?: () => void,
  ): AsyncIterable<WatchEvent> {
    if (onCurrent) this.#onCurrent.set(path, onCurrent);
    await new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
  }
  json(): Promise<unknown> {
    return Promise.reject(new Error("no writes expected"));
  }
}
