/**
 * A stand-in for kube-proxy's health endpoint (`/healthz` on port 10256): 200
 * with kube-proxy's JSON body while "healthy", 503 while "unhealthy", 503 with
 * `"nodeEligible": false` while "ineligible". It listens on 127.0.0.1 in the
 * test process, where the agents run (they reach their gateway's namespace
 * only through `ip -n`), so each gateway gets its own port and the agent its
 * URL with `--kube-proxy-health`. It counts the polls by the answer given, so
 * a test waits for the agent's polls instead of sleeping.
 *
 * @module
 */

/** What the endpoint answers. */
export type ProxyHealthState = "healthy" | "unhealthy" | "ineligible";

/** One kube-proxy health endpoint. */
export class FakeKubeProxyHealth implements AsyncDisposable {
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #waiters = new Set<() => void>();
  #state: ProxyHealthState = "healthy";
  /** Polls answered so far, by the state they were answered in. */
  readonly polls: Record<ProxyHealthState, number> = { healthy: 0, unhealthy: 0, ineligible: 0 };

  private constructor() {
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req) => this.#answer(req),
    );
  }

  /** Starts an endpoint answering 200. */
  static start(): FakeKubeProxyHealth {
    return new FakeKubeProxyHealth();
  }

  /** The URL to give `--kube-proxy-health`. */
  get url(): string {
    return `http://127.0.0.1:${this.#server.addr.port}/healthz`;
  }

  get state(): ProxyHealthState {
    return this.#state;
  }

  /** Changes what the next polls get. */
  set(state: ProxyHealthState): void {
    this.#state = state;
  }

  #answer(req: Request): Response {
    if (new URL(req.url).pathname !== "/healthz") return new Response("404\n", { status: 404 });
    const state = this.#state;
    this.polls[state]++;
    for (const w of [...this.#waiters]) w();
    const now = new Date().toISOString();
    const body = JSON.stringify({
      lastUpdated: now,
      currentTime: now,
      nodeEligible: state !== "ineligible",
    });
    return new Response(body, {
      status: state === "healthy" ? 200 : 503,
      headers: { "content-type": "application/json", "x-content-type-options": "nosniff" },
    });
  }

  /** Resolves once `n` more polls have been answered in `state`; rejects after `timeoutMs`. */
  waitPolls(state: ProxyHealthState, n: number, timeoutMs: number): Promise<void> {
    const target = this.polls[state] + n;
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.polls[state] < target) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(
          new Error(
            `${this.url}: ${this.polls[state]} of ${target} ${state} polls within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.#waiters.add(check);
    });
  }

  /** Stops listening. */
  async close(): Promise<void> {
    await this.#server.shutdown();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
