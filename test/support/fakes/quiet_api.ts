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
  /** The open watch's `onCurrent`: call it to say its connection answered the probe. */
  current: (() => void) | undefined;
  list(_p: string, _q: Query): Promise<Record<string, unknown>> {
    return Promise.resolve({ metadata: { resourceVersion: "5" }, items: [] });
  }
  // deno-lint-ignore require-yield -- a watch that never sends an event is the point
  async *watch(
    _p: string,
    _q: Query,
    signal: AbortSignal,
    _onData?: () => void,
    onCurrent?: () => void,
  ): AsyncIterable<WatchEvent> {
    this.current = onCurrent;
    await new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
  }
  json(): Promise<unknown> {
    return Promise.reject(new Error("no writes expected"));
  }
}
