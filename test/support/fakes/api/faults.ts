/**
 * Faults the tests inject, each a small piece of state the request handler
 * consults: failures for the next requests, 429 with `Retry-After` (for the
 * next N requests or on a path until cleared), malformed 200 LIST bodies,
 * requests that are never answered, and connections that wedge.
 *
 * @module
 */

/** A malformed LIST body: the client must keep what it had. */
export type MalformedList =
  /** A `Status` object with code 200. */
  | "status"
  /** `items` is a string. */
  | "items-string"
  /** `items` is an object. */
  | "items-object"
  /** `items: [1,2,3]`. */
  | "items-numbers"
  /** A list of another kind (`PodList`). */
  | "wrong-kind"
  /** Not JSON at all. */
  | "not-json";

/** Which requests a fault applies to: every one, a path prefix, or a pattern on the path. */
export type PathMatch = string | RegExp | undefined;

function hit(match: PathMatch, path: string): boolean {
  if (match === undefined) return true;
  return typeof match === "string" ? path.startsWith(match) : match.test(path);
}

interface Throttle {
  readonly path: PathMatch;
  readonly retryAfterSeconds: number;
  remaining: number;
}

/** Injected faults. */
export class Faults {
  readonly #failures: number[] = [];
  #throttles: Throttle[] = [];
  readonly #malformed: { shape: MalformedList; path: PathMatch; remaining: number }[] = [];
  /** Paths whose requests get no answer until {@linkcode release}. */
  hang: PathMatch[] = [];
  /** Connections that no longer answer anything. */
  readonly wedged = new Set<string>();

  /** The next `n` requests get `code`. */
  failNext(n: number, code: number): void {
    for (let i = 0; i < n; i++) this.#failures.push(code);
  }

  /** The injected failure code for this request, if any. */
  takeFailure(): number | undefined {
    return this.#failures.shift();
  }

  /** Adds a 429 rule; `requests` Infinity lasts until {@linkcode clearThrottle}. */
  throttle(path: PathMatch, retryAfterSeconds: number, requests: number): void {
    this.#throttles.push({ path, retryAfterSeconds, remaining: requests });
  }

  clearThrottle(): void {
    this.#throttles = [];
  }

  /** The Retry-After seconds if this request is throttled. */
  takeThrottle(path: string): number | undefined {
    const t = this.#throttles.find((t) => t.remaining > 0 && hit(t.path, path));
    if (!t) return undefined;
    t.remaining--;
    return t.retryAfterSeconds;
  }

  /** The next `count` LISTs matching `path` get `shape`. */
  malformList(shape: MalformedList, path: PathMatch, count: number): void {
    this.#malformed.push({ shape, path, remaining: count });
  }

  /** The malformed shape for this LIST, if any. */
  takeMalformed(path: string): MalformedList | undefined {
    const m = this.#malformed.find((m) => m.remaining > 0 && hit(m.path, path));
    if (!m) return undefined;
    m.remaining--;
    return m.shape;
  }

  /** Whether a request on `path` should hang. */
  hangs(path: string): boolean {
    return this.hang.some((m) => hit(m, path));
  }
}

/** The body of a malformed LIST answer. */
export function malformedBody(
  shape: MalformedList,
  listKind: string,
  apiVersion: string,
  rv: string,
): string {
  const meta = { resourceVersion: rv };
  switch (shape) {
    case "status":
      return JSON.stringify({
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message: "the server is currently unable to handle the request",
        reason: "ServiceUnavailable",
        code: 503,
      });
    case "items-string":
      return JSON.stringify({ kind: listKind, apiVersion, metadata: meta, items: "none" });
    case "items-object":
      return JSON.stringify({ kind: listKind, apiVersion, metadata: meta, items: {} });
    case "items-numbers":
      return JSON.stringify({ kind: listKind, apiVersion, metadata: meta, items: [1, 2, 3] });
    case "wrong-kind":
      return JSON.stringify({ kind: "PodList", apiVersion, metadata: meta, items: [] });
    case "not-json":
      return "<html><body>502 Bad Gateway</body></html>";
  }
}
