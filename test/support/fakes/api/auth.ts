/**
 * Bearer tokens as the API server's authenticator sees them: each accepted
 * until its deadline or until revoked, several at once during a rotation.
 * Authentication happens when a request starts: an open watch outlives its
 * token, as on the real server.
 *
 * @module
 */

/** The accepted tokens. */
export class Tokens {
  readonly #deadlines = new Map<string, number>();
  #required = false;

  /** Accepts `token` (and from now on requires one), until `expiresInMs` from now if given. */
  accept(token: string, expiresInMs?: number): void {
    this.#required = true;
    this.#deadlines.set(token, expiresInMs === undefined ? Infinity : Date.now() + expiresInMs);
  }

  /** Refuses `token` from now on. */
  revoke(token: string): void {
    this.#deadlines.delete(token);
  }

  /** Accepts `next`; every other token stops working after `oldValidForMs` (default at once). */
  rotate(next: string, oldValidForMs = 0): void {
    const until = Date.now() + oldValidForMs;
    for (const [t, d] of this.#deadlines) this.#deadlines.set(t, Math.min(d, until));
    this.accept(next);
  }

  /** Whether an `Authorization` header value passes. */
  check(header: string | null): boolean {
    if (!this.#required) return true;
    const m = /^Bearer (.+)$/.exec(header ?? "");
    if (!m) return false;
    const deadline = this.#deadlines.get(m[1]);
    return deadline !== undefined && Date.now() < deadline;
  }
}
