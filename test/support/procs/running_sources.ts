/**
 * Runs list-watch sources against a fake API server (optionally behind a TCP
 * proxy) until disposed, then stops them and closes the client, the proxy and
 * the server in that order: the teardown every API-fault rig shares.
 *
 * @module
 */

/** Starts each source's `run` now; disposing aborts them, waits for them, and closes the rest. */
export function runSources(
  sources: readonly { run(signal: AbortSignal): Promise<void> }[],
  close: {
    api: { close(): void };
    proxy?: { close(): Promise<void> };
    server: { close(): Promise<void> };
  },
): AsyncDisposable {
  const controller = new AbortController();
  const running = sources.map((s) => s.run(controller.signal));
  return {
    async [Symbol.asyncDispose]() {
      controller.abort();
      await Promise.all(running);
      close.api.close();
      await close.proxy?.close();
      await close.server.close();
    },
  };
}
