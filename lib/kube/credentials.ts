/**
 * The credentials of the API client's requests: the `Authorization` header,
 * with the token looked up per request (its source re-reads token files at
 * most every minute) and re-read at once on 401; and whether the server
 * refuses them. Repeated 401/403 are logged once until a request succeeds,
 * reported to the observer each, and kept for `/readyz`.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ApiConnection } from "./kubeconfig.ts";
import type { ApiObserver } from "./observer.ts";
import { ApiError } from "./errors.ts";

const log = getLogger(["kube-gw", "api"]);

/** The credentials of one API connection and the server's word on them. */
export class Credentials {
  readonly #conn: ApiConnection;
  readonly #observer?: ApiObserver;
  #refusals = 0;
  #refusal: string | undefined;

  constructor(conn: ApiConnection, observer?: ApiObserver) {
    this.#conn = conn;
    this.#observer = observer;
  }

  /**
   * Why the API server refuses kube-gw, while its last answers were 401 or
   * 403 (and none succeeded since); undefined otherwise.
   */
  get problem(): string | undefined {
    return this.#refusals > 0 ? this.#refusal : undefined;
  }

  /**
   * The headers of a request: JSON accepted, the credentials, and the
   * content type if given.
   *
   * @throws {ApiError} when the credentials cannot be put in a header (not shown).
   */
  headers(contentType?: string): Headers {
    let h: Headers;
    try {
      h = this.#headers();
    } catch {
      // The TypeError quotes the header value, the secret itself: not kept as the cause.
      throw new ApiError("the credentials cannot be sent in an HTTP header (not shown)");
    }
    if (contentType) h.set("content-type", contentType);
    return h;
  }

  /**
   * After a 401: re-reads the token (it may have been rotated), and tells
   * whether it differs from the one `sent`, so that a retry may succeed.
   */
  renewed(sent: Headers): boolean {
    if (!this.#conn.refreshToken) return false;
    this.#conn.refreshToken();
    let fresh: string | null = null;
    try {
      fresh = this.#headers().get("authorization");
    } catch { /* unusable: no retry */ }
    return fresh !== null && fresh !== "" && fresh !== sent.get("authorization");
  }

  /** The server answered 401 or 403 to `what`. */
  refused(status: number, what: string): void {
    this.#observer?.authFailed(status);
    this.#refusals++;
    this.#refusal = `the API server refuses kube-gw's credentials: ${what}`;
    if (this.#refusals === 1) {
      log.warn(
        "{server} answers {status}: {what} (logged once until a request succeeds; see /readyz and kubegw_api_auth_failures_total)",
        { server: this.#conn.server, status, what },
      );
    }
  }

  /** The server answered with something else than 401 or 403. */
  accepted(): void {
    if (this.#refusals > 0) {
      log.info("{server} accepts kube-gw's credentials again", { server: this.#conn.server });
    }
    this.#refusals = 0;
    this.#refusal = undefined;
  }

  #headers(): Headers {
    const h = new Headers({ accept: "application/json" });
    const token = this.#conn.token?.();
    if (token) h.set("authorization", `Bearer ${token}`);
    else if (this.#conn.basic) h.set("authorization", `Basic ${btoa(this.#conn.basic)}`);
    return h;
  }
}
