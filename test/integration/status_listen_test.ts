import assert from "node:assert/strict";
import { ListenError, serveStatus } from "../../lib/http/status_server.ts";
import { parseListen } from "../../lib/base/flags.ts";

const source = {
  metrics: () => Promise.resolve({ body: "", contentType: "text/plain" }),
  notReady: () => undefined,
  sinceTick: () => 0,
};

Deno.test("a metrics port in use is reported under the setting that gave it, with the value", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  const ac = new AbortController();
  for (const name of ["--metrics-address", "KUBEGW_METRICS_ADDRESS"]) {
    const at = parseListen(`127.0.0.1:${port}`, name);
    assert.ok(at);
    await assert.rejects(
      serveStatus(at, source, ac.signal),
      (e: unknown) =>
        e instanceof ListenError &&
        e.message ===
          `${name}: cannot listen on 127.0.0.1:${port}: the port is already in use by another process: choose another port, or off` &&
        e.cause instanceof Deno.errors.AddrInUse,
    );
  }
  ac.abort();
});
