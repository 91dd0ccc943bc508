/**
 * The controller's metrics as the observer of its watches and of its API
 * client: watch restarts by kind, refused credentials and replaced
 * connections under the agent's names.
 */
import assert from "node:assert/strict";
import { ControllerMetrics } from "../../../lib/controller/metrics.ts";
import { KubeApi } from "../../../lib/kube/client.ts";

Deno.test("the controller counts watch restarts by kind, and 401/403 answers of its API client", async () => {
  const m = new ControllerMetrics("0.1.0", "abc123");
  m.watchRestarted("ConfigMap", "stalled");
  const api = new KubeApi({ server: "https://api.test:6443", source: "test" }, {
    observer: m,
    probeIntervalMs: 0,
    fetch: (() =>
      Promise.resolve(new Response('{"message":"Forbidden"}', { status: 403 }))) as typeof fetch,
    createHttpClient: () =>
      ({ close() {} }) as unknown as Deno.HttpClient,
  });
  await assert.rejects(
    api.json("GET", "/api/v1/services", undefined, new AbortController().signal),
  );
  api.close();
  assert.match(
    api.authProblem ?? "",
    /refuses kube-gw's credentials: GET \/api\/v1\/services: 403/,
  );
  m.connectionReplaced("probe");
  const text = await m.render();
  for (
    const line of [
      'kubegw_watch_restarts_total{kind="ConfigMap",reason="stalled"} 1',
      'kubegw_api_auth_failures_total{code="403"} 1',
      'kubegw_api_auth_failures_total{code="401"} 0',
      'kubegw_api_connections_replaced_total{reason="probe"} 1',
      'kubegw_api_connections_replaced_total{reason="error"} 0',
    ]
  ) assert.ok(text.includes(line), `missing: ${line}\n${text}`);
});
