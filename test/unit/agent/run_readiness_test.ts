import assert from "node:assert/strict";
import { agentNotReady } from "../../../lib/agent/run.ts";
import { ListWatch } from "../../../lib/kube/list_watch.ts";
import { FakeClock } from "../../support/fakes/clock.ts";
import { QuietApi } from "../../support/fakes/quiet_api.ts";

Deno.test("readiness fails on the API side after --api-stale-after, apart from the interface side, and recovers", async () => {
  const clock = new FakeClock();
  const api = new QuietApi();
  const source = new ListWatch<string>({
    api,
    path: "/api/v1/services",
    kind: "Service",
    decode: () => "x",
    sink: { replace() {}, upsert() {}, delete() {} },
    clock,
  });
  const controller = new AbortController();
  const running = source.run(controller.signal);
  await source.whenSynced();
  let interfaceSide: string | undefined = undefined;
  let auth: string | undefined = undefined;
  const why = () =>
    agentNotReady(
      { apiStaleAfterMs: 45_000 },
      { clock, apiProblem: () => auth },
      { notReady: () => interfaceSide },
      [source],
    );
  assert.equal(why(), undefined);
  await clock.tick(45_000);
  assert.equal(why(), undefined, "45 s is still current");
  await clock.tick(1);
  assert.match(
    why() ?? "",
    /^the Kubernetes API was last known current 45s ago \(Service watch of \/api\/v1\/services\)$/,
  );
  api.current();
  assert.equal(why(), undefined, "an answered probe makes the open watch current");
  interfaceSide = "the last reconcile failed: ip: no such device";
  auth = "the API server refuses kube-gw's credentials: GET /version: 401 Unauthorized";
  assert.equal(why(), `${interfaceSide}; ${auth}`);
  controller.abort();
  await running;
});
