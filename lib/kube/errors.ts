/**
 * The errors of the Kubernetes API client: {@linkcode ApiError} with what the
 * server said (status, reason, causes, Retry-After), and how to read a Status object.
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
