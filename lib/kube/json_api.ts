/**
 * The port through which the LoadBalancer controller writes: one JSON request
 * to a path of the API server. `KubeApi.json` implements it; unit tests
 * fake it.
 *
 * @module
 */

/** The methods the controller uses (PATCH is a JSON merge patch). */
export type JsonMethod = "GET" | "POST" | "PUT" | "PATCH";

/** One JSON request; throws `ApiError` (with the HTTP status when there was one). */
export interface JsonApi {
  json(method: JsonMethod, path: string, body: unknown, signal: AbortSignal): Promise<unknown>;
}
