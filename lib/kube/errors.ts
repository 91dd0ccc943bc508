/**
 * The errors of the Kubernetes API client and how they are made from what
 * went wrong: {@linkcode ApiError} with what the server said (status, reason,
 * causes, Retry-After), read from an error answer ({@linkcode answerError});
 * {@linkcode ApiTlsError} and the connection failures a fetch throws
 * ({@linkcode connectError}). Pure: nothing here does I/O.
 *
 * @module
 */

/** What an {@linkcode ApiError} may carry beyond its message and status. */
export interface ApiErrorOptions extends ErrorOptions {
  /** How long the server asked the client to wait (`Retry-After`), in milliseconds. */
  readonly retryAfterMs?: number;
  /** The `Status` object's `reason`, e.g. `Expired`, `Timeout`. */
  readonly reason?: string;
  /** The `reason`s of the `Status` object's `details.causes`. */
  readonly causes?: readonly string[];
  /** The connection itself failed (refused, reset, timed out), not the request. */
  readonly connection?: boolean;
}

/** An HTTP or API-level failure, with the status code when there was one. */
export class ApiError extends Error {
  readonly retryAfterMs?: number;
  readonly reason?: string;
  readonly causes: readonly string[];
  readonly connection: boolean;

  constructor(message: string, readonly status?: number, options?: ApiErrorOptions) {
    super(message, options);
    this.name = "ApiError";
    this.retryAfterMs = options?.retryAfterMs;
    this.reason = options?.reason;
    this.causes = options?.causes ?? [];
    this.connection = options?.connection ?? false;
  }

  /** The resource version asked for is gone (410): relist. */
  get gone(): boolean {
    return this.status === 410;
  }

  /**
   * The resource version asked for is newer than the server's (504
   * `ResourceVersionTooLarge`, as after an etcd restore): relist, as
   * client-go's reflector does.
   */
  get tooLarge(): boolean {
    return this.status === 504 &&
      (this.causes.includes("ResourceVersionTooLarge") ||
        /too large resource version/i.test(this.message));
  }

  /** The server refused the credentials (401) or the permission (403). */
  get auth(): boolean {
    return this.status === 401 || this.status === 403;
  }
}

/** The `reason` and the `details.causes[].reason`s of a Status object, read defensively. */
export function statusReasons(body: unknown): { reason?: string; causes: string[] } {
  const s = (typeof body === "object" && body !== null ? body : {}) as {
    reason?: unknown;
    details?: { causes?: unknown };
  };
  const causes = Array.isArray(s.details?.causes) ? s.details.causes : [];
  return {
    reason: typeof s.reason === "string" ? s.reason.slice(0, 100) : undefined,
    causes: causes.flatMap((c) =>
      typeof c === "object" && c !== null && typeof (c as { reason?: unknown }).reason === "string"
        ? [String((c as { reason: string }).reason).slice(0, 100)]
        : []
    ).slice(0, 8),
  };
}

/** The message of a Status body, its reason and causes, or the start of the text. */
function statusOf(status: number, body: string): {
  message: string;
  reason?: string;
  causes: string[];
} {
  try {
    const s = JSON.parse(body) as { message?: unknown };
    const why = statusReasons(s);
    if (typeof s.message === "string") return { message: s.message.slice(0, 300), ...why };
    return { message: `HTTP ${status}`, ...why };
  } catch {
    // Not a Status object.
  }
  return { message: body.trim().slice(0, 200) || `HTTP ${status}`, causes: [] };
}

/** The longest `Retry-After` kept: 10 minutes (the engine caps what it honours lower). */
const MAX_RETRY_AFTER_MS = 600_000;

/**
 * A `Retry-After` header in milliseconds: delay-seconds or an HTTP date;
 * undefined when absent or unreadable.
 *
 * @param nowMs the wall-clock time an HTTP date is measured from. @default Date.now()
 */
export function parseRetryAfter(value: string | null, nowMs = Date.now()): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d{1,9}$/.test(v)) return Math.min(Number(v) * 1000, MAX_RETRY_AFTER_MS);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.min(Math.max(0, at - nowMs), MAX_RETRY_AFTER_MS);
}

/**
 * The error for an answer that is not 2xx: the Status object's message,
 * reason and causes (or the start of the body), and for 429 and 503 the
 * `Retry-After` the server asked for.
 *
 * @param what the request, e.g. `GET /api/v1/services`, that the message starts with.
 */
export function answerError(what: string, res: Response, body: string): ApiError {
  const st = statusOf(res.status, body);
  const retryAfterMs = res.status === 429 || res.status === 503
    ? parseRetryAfter(res.headers.get("retry-after"))
    : undefined;
  return new ApiError(`${what}: ${res.status} ${st.message}`, res.status, {
    reason: st.reason,
    causes: st.causes,
    retryAfterMs,
  });
}

/** TLS verification of the API server failed: a CA or name problem, not a dead server. */
export class ApiTlsError extends ApiError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, undefined, options);
    this.name = "ApiTlsError";
  }
}

/** The innermost message of an error chain, without the request URL fetch puts in front. */
export function innermost(err: unknown): string {
  let e = err as { message?: unknown; cause?: unknown } | undefined;
  let text = "";
  for (let depth = 0; e && depth < 8; depth++) {
    if (typeof e.message === "string" && e.message) text = e.message;
    e = e.cause as typeof e;
  }
  return text.replace(/^error sending request for url \([^)]*\): /, "");
}

const TLS_PROBLEM = /certificate|UnknownIssuer|NotValidForName|handshake|\btls\b/i;

/**
 * What a failed fetch means: a TLS verification failure (an
 * {@linkcode ApiTlsError} naming the CA source, `ApiConnection.caSource`),
 * or a connection failure.
 */
export function connectError(
  conn: { readonly server: string; readonly caSource?: string },
  cause: unknown,
): ApiError {
  const detail = innermost(cause);
  if (TLS_PROBLEM.test(detail)) {
    const ca = conn.caSource ?? "the system's CA store";
    return new ApiTlsError(
      `TLS verification of ${conn.server} failed (${detail}): the server's certificate is not signed by a CA in ${ca}, or is not issued for this host name`,
      { cause },
    );
  }
  return new ApiError(`Cannot reach ${conn.server}: ${detail}`, undefined, { cause });
}
