/**
 * What the Kubernetes side reports as it works: the API client
 * ({@linkcode ApiObserver}: refused credentials, replaced connections) and
 * the list-watch engine ({@linkcode ListWatchObserver}: watch restarts).
 * Each program's metrics implement them; plain string unions only.
 *
 * @module
 */

/** Why a watch was restarted: the server ended it, an error, 410 Gone (relist), silence. */
export type RestartReason = "closed" | "error" | "gone" | "stalled";

/** What the list-watch engine (`list_watch.ts`) reports. */
export interface ListWatchObserver {
  /** The watch of `kind` (e.g. `Service`) was restarted. */
  watchRestarted(kind: string, reason: RestartReason): void;
}

/** A list-watch observer that ignores everything: the engine's default. */
export const quietListWatchObserver: ListWatchObserver = {
  watchRestarted() {},
};

/** What the API client (`client.ts`) reports. */
export interface ApiObserver {
  /** A request got 401 or 403. */
  authFailed(status: number): void;
  /** New requests go over a new connection, for `reason` (`error`, `timeout`, `probe`, `stall`). */
  connectionReplaced(reason: string): void;
}
