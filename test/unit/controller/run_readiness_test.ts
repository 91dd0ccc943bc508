/**
 * The controller's `/readyz` reasons, as the agent's: besides its own (a
 * first list missing), a watch not known current for the staleness limit
 * (45 s by default, as the agent's `--api-stale-after`), and refused
 * credentials. On a fake clock: no real time passes.
 */
import assert from "node:assert/strict";
import { controllerNotReady, makeController } from "../../../lib/controller/run.ts";
import { parseControllerConfig } from "../../../lib/controller/config.ts";
import { DEFAULT_API_STALE_AFTER_MS } from "../../../lib/kube/staleness.ts";
import { FakeClock } from "../../support/fakes/clock.ts";
import { QuietApi } from "../../support/fakes/quiet_api.ts";

Deno.test("the controller's readiness fails when its Service watch goes stale past 45 s, and on refused credentials; it recovers", async () => {
  const clock = new FakeClock();
  const api = new QuietApi();
  const config = parseControllerConfig({ pool: ["10.0.100.0/24"], leaderElect: "false" });
  let auth: string | undefined = undefined;
  const deps = { api, identity: "test", clock, apiProblem: () => auth };
  const { controller, services, addressPools } = makeController(config, deps);
  // --api-stale-after's default, as the command line gives it.
  assert.equal(config.apiStaleAfterMs, DEFAULT_API_STALE_AFTER_MS);
  const why = () => controllerNotReady(config, deps, controller, [services]);
  assert.equal(why(), "waiting for the first list of Services");
  const stop = new AbortController();
  const running = services.run(stop.signal);
  const pools = addressPools.run(stop.signal);
  await services.whenSynced();
  await addressPools.whenSynced();
  assert.equal(why(), undefined);
  assert.equal(DEFAULT_API_STALE_AFTER_MS, 45_000);
  await clock.tick(45_000);
  assert.equal(why(), undefined, "45 s is still current");
  await clock.tick(1);
  assert.match(
    why() ?? "",
    /^the Kubernetes API was last known current 45s ago \(Service watch of \/api\/v1\/services\)$/,
  );
  api.current();
  assert.equal(why(), undefined, "an answered probe makes the open watch current");
  auth = "the API server refuses kube-gw's credentials: GET /api/v1/services: 403 Forbidden";
  assert.equal(why(), auth);
  auth = undefined;
  await clock.tick(10_000);
  assert.equal(
    controllerNotReady({ apiStaleAfterMs: 5_000 }, deps, controller, [services]),
    "the Kubernetes API was last known current 10s ago (Service watch of /api/v1/services)",
    "a limit given in the settings wins over the default",
  );
  stop.abort();
  await running;
  await pools;
});
