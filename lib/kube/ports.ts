/**
 * The ports of the Kubernetes API that the core uses: LIST and WATCH of one
 * collection ({@linkcode ListWatchApi}, for the list-watch engine) and one JSON
 * request ({@linkcode JsonApi}, for the controller's writes). `KubeApi`
 * (`client.ts`) implements both; unit tests fake them. Nothing here does I/O.
 *
 * @module
 */

/** The methods the controller uses (PATCH is a JSON merge patch). */
export type JsonMethod = "GET" | "POST" | "PUT" | "PATCH";

/** One JSON request; throws `ApiError` (with the HTTP status when there was one). */
export interface JsonApi {
  json(method: JsonMethod, path: string, body: unknown, signal: AbortSignal): Promise<unknown>;
}

/** One event of a watch stream, as the API server sent it. */
export interface WatchEvent {
  readonly type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  readonly object: Record<string, unknown>;
}

/** Query parameters; undefined values are left out. */
export type Query = Record<string, string | number | boolean | undefined>;

/**
 * LIST and WATCH of one collection. Both throw {@linkcode ApiError} for API
 * trouble, and the signal's reason once it aborts.
 */
export interface ListWatchApi {
  /** One page of a LIST: the parsed JSON of the whole response. */
  list(path: string, query: Query, signal: AbortSignal): Promise<Record<string, unknown>>;
  /**
   * The events of one WATCH; `onData` runs on every chunk, bookmarks included;
   * `onCurrent` runs when the client proved the watch's connection alive
   * another way (a liveness probe over the same connection).
   */
  watch(
    path: string,
    query: Query,
    signal: AbortSignal,
    onData?: () => void,
    onCurrent?: () => void,
  ): AsyncIterable<WatchEvent>;
  /**
   * The connection looks dead (a watch went silent): new requests should go
   * over a new connection. Optional; a no-op for fakes.
   */
  reset?(why: string): void;
}
