import assert from "node:assert/strict";
import { handleStatus, type StatusSource } from "../../../lib/http/status_server.ts";

function source(over: Partial<StatusSource> = {}): StatusSource {
  return {
    metrics: () =>
      Promise.resolve({ body: "kubegw_addresses 2\n", contentType: "text/plain; version=0.0.4" }),
    notReady: () => undefined,
    sinceTick: () => 100,
    ...over,
  };
}

const get = (path: string, src: StatusSource, method = "GET") =>
  handleStatus(new Request(`http://127.0.0.1${path}`, { method }), src);

Deno.test("/metrics serves the exposition text with its content type", async () => {
  const res = await get("/metrics", source());
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4");
  assert.equal(await res.text(), "kubegw_addresses 2\n");
});

Deno.test("/readyz is 503 with the reason until ready", async () => {
  const waiting = await get(
    "/readyz",
    source({ notReady: () => "waiting for the first complete list of Services" }),
  );
  assert.equal(waiting.status, 503);
  assert.match(await waiting.text(), /first complete list/);
  assert.equal((await get("/readyz", source())).status, 200);
});

Deno.test("/healthz fails when the loop has stalled", async () => {
  assert.equal((await get("/healthz", source())).status, 200);
  const stalled = await get("/healthz", source({ sinceTick: () => 15_000 }));
  assert.equal(stalled.status, 503);
  await stalled.body?.cancel();
});

Deno.test("other paths and methods are refused", async () => {
  const nf = await get("/", source());
  assert.equal(nf.status, 404);
  await nf.body?.cancel();
  const post = await get("/metrics", source(), "POST");
  assert.equal(post.status, 405);
  await post.body?.cancel();
});

Deno.test("/status serves the agent's report as JSON, and is 404 where there is none", async () => {
  const report = { health: { open: true }, counts: { announced: 1 }, addresses: [] };
  const res = await get("/status", source({ status: () => report }));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/json");
  assert.deepEqual(await res.json(), report);
  assert.equal((await get("/status", source())).status, 404);
});

Deno.test("a ready /readyz says why the gate is open when kube-proxy's health is unknown", async () => {
  const res = await get("/readyz", source({ readyNote: () => "kube-proxy health unknown" }));
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "ok: kube-proxy health unknown\n");
  assert.equal(await (await get("/readyz", source({ readyNote: () => undefined }))).text(), "ok\n");
});
