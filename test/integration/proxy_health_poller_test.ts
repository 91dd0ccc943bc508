/**
 * The kube-proxy health poller on the real wire: a tiny health server on
 * 127.0.0.1 that answers as kube-proxy does (200 with its JSON body, 503,
 * `nodeEligible: false`), hangs, or is gone (connection refused). The poll
 * interval is shortened; the timing rules are the unit tests' (fake clock).
 */
import assert from "node:assert/strict";
import type { HealthState } from "../../lib/agent/kube_proxy_health.ts";
import { KubeProxyHealthPoller } from "../../lib/agent/kube_proxy_poller.ts";
import { systemClock } from "../../lib/base/system_clock.ts";
import { waitFor } from "../support/wait.ts";

type Mode = "ok" | "stale" | "ineligible" | "hang";

/** kube-proxy's /healthz as it answers (pkg/proxy/healthcheck/proxy_health.go). */
function body(mode: Mode): { status: number; text: string } {
  const now = new Date().toISOString();
  switch (mode) {
    case "ok":
      return { status: 200, text: JSON.stringify({ lastUpdated: now, currentTime: now }) };
    case "stale":
      return { status: 503, text: JSON.stringify({ lastUpdated: now, currentTime: now }) };
    default:
      return {
        status: 503,
        text: JSON.stringify({ lastUpdated: now, currentTime: now, nodeEligible: false }),
      };
  }
}

Deno.test("the poller reads kube-proxy's answers over HTTP: 200, nodeEligible false, 503, no answer, refused", async () => {
  let mode: Mode = "ok";
  const release = Promise.withResolvers<void>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async () => {
    if (mode === "hang") await release.promise;
    const b = body(mode);
    return new Response(b.text, {
      status: b.status,
      headers: { "content-type": "application/json" },
    });
  });
  const url = `http://127.0.0.1:${server.addr.port}/healthz`;
  const changes: HealthState[] = [];
  const poller = new KubeProxyHealthPoller({
    url,
    clock: systemClock,
    startedWithAddresses: false,
    onChange: (s) => changes.push(s),
    pollMs: 20,
    // Long enough that a loaded machine never makes a good poll time out; "hang" still takes
    // three of them, a few seconds.
    timeoutMs: 1000,
  });
  const ac = new AbortController();
  const running = poller.run(ac.signal);
  try {
    const phase = (p: string) =>
      waitFor(`phase ${p} (now ${poller.state.reason})`, () => poller.state.phase === p, 15_000);
    await phase("healthy");
    assert.equal(poller.state.open, true);

    mode = "ineligible";
    await phase("ineligible");
    assert.equal(poller.state.open, false);

    mode = "ok";
    await phase("healthy");
    mode = "stale";
    await phase("unhealthy");
    assert.match(poller.state.reason, /answered 503/);

    mode = "ok";
    await phase("healthy");
    mode = "hang";
    await phase("unhealthy");
    assert.match(poller.state.lastFailure ?? "", /did not answer/);
    mode = "ok";
    release.resolve();
    await phase("healthy");

    await server.shutdown();
    await phase("unhealthy");
    assert.equal(poller.state.lastFailure, "refused the connection");
    assert.deepEqual(
      changes.map((s) => s.phase),
      [
        "healthy",
        "ineligible",
        "healthy",
        "unhealthy",
        "healthy",
        "unhealthy",
        "healthy",
        "unhealthy",
      ],
    );
  } finally {
    ac.abort();
    await running;
    release.resolve();
    await server.shutdown().catch(() => {});
  }
});
