/**
 * kube-proxy's health wired into the announce gate through the HealthSource
 * seam (lib/ports.ts), against a fake source driven by the pure state machine
 * of lib/agent/kube_proxy_health.ts, on the fake clock and the fake interface.
 */
import assert from "node:assert/strict";
import { makeHealth, makeReconciler } from "../../../lib/agent/run.ts";
import { parseConfig } from "../../../lib/agent/config.ts";
import type { EndpointSliceRecord } from "../../../lib/agent/endpoint_slice.ts";
import {
  type HealthSource,
  type HealthSourceOptions,
  type HealthState,
  initialHealth,
  type PollOutcome,
  stepHealth,
} from "../../../lib/agent/kube_proxy_health.ts";
import type { ServiceRecord } from "../../../lib/service/record.ts";
import { FakeAddressStore } from "../../support/fakes/address_store.ts";
import { FakeClock } from "../../support/fakes/clock.ts";

/** A health source whose polls the test hands in. */
class FakeHealth implements HealthSource {
  state: HealthState;
  constructor(readonly options: HealthSourceOptions) {
    this.state = initialHealth({ startedWithAddresses: options.startedWithAddresses });
  }
  poll(outcome: PollOutcome): void {
    const next = stepHealth(this.state, outcome);
    if (next === this.state) return;
    this.state = next;
    this.options.onChange(next);
  }
  run(): Promise<void> {
    return Promise.resolve();
  }
}

const OK: PollOutcome = { kind: "ok", nodeEligible: true };
const REFUSED: PollOutcome = { kind: "refused" };
const UNHEALTHY: PollOutcome = { kind: "unhealthy", status: 503, nodeEligible: true };
const INELIGIBLE: PollOutcome = { kind: "unhealthy", status: 503, nodeEligible: false };

const SVC: ServiceRecord = {
  namespace: "default",
  name: "web",
  type: "ClusterIP",
  clusterIP: "10.96.0.1",
  externalIPs: ["10.0.100.30"],
};
const SLICE: EndpointSliceRecord = {
  namespace: "default",
  name: "web-1",
  service: "web",
  family: 4,
  endpoints: [{ address: "10.244.1.1", ready: true, serving: true, terminating: false }],
};

async function agent(initial: string[], health = "http://127.0.0.1:10256/healthz") {
  const config = parseConfig({ network: ["10.0.100.0/24"], kubeProxyHealth: health });
  const clock = new FakeClock();
  const store = new FakeAddressStore(initial);
  let fake: FakeHealth | undefined;
  const deps = {
    store,
    api: {} as never,
    clock,
    healthSource: (o: HealthSourceOptions) => fake = new FakeHealth(o),
  };
  const r = makeReconciler(config, deps);
  const held = await r.readManaged();
  const source = makeHealth(config, deps, r, { startedWithAddresses: held.size > 0 });
  r.replace([SVC], undefined);
  r.replaceSlices([SLICE], undefined);
  r.markSynced();
  await clock.tick(10);
  return { clock, store, r, source, fake: () => fake! };
}

Deno.test("after a boot nothing is announced until kube-proxy answers 200 once", async () => {
  const { clock, store, r, fake } = await agent([]);
  assert.equal(fake().options.startedWithAddresses, false);
  assert.deepEqual(store.hosts(), []);
  assert.equal(r.status().addresses[0].state, "kube_proxy_unhealthy");
  fake().poll(REFUSED);
  await clock.tick(10);
  assert.deepEqual(store.hosts(), []);
  fake().poll(OK);
  await clock.tick(2);
  assert.deepEqual(store.hosts(), ["10.0.100.30"], "a new address goes out at once");
  await r.stop();
});

Deno.test("three failed polls withdraw everything; 200 again re-announces after the hold-down", async () => {
  const { clock, store, r, fake } = await agent([]);
  fake().poll(OK);
  await clock.tick(10);
  fake().poll(UNHEALTHY);
  fake().poll(REFUSED);
  await clock.tick(10);
  assert.deepEqual(store.hosts(), ["10.0.100.30"], "two failures keep it");
  fake().poll(UNHEALTHY);
  await clock.tick(2);
  assert.deepEqual(store.hosts(), []);
  fake().poll(OK);
  await clock.tick(1990);
  assert.deepEqual(store.hosts(), [], "hold-down");
  await clock.tick(20);
  assert.deepEqual(store.hosts(), ["10.0.100.30"]);
  await r.stop();
  store.assertNoViolations();
});

Deno.test("nodeEligible: false withdraws at once", async () => {
  const { clock, store, r, fake } = await agent([]);
  fake().poll(OK);
  await clock.tick(10);
  fake().poll(INELIGIBLE);
  await clock.tick(2);
  assert.deepEqual(store.hosts(), []);
  assert.match(r.status().addresses[0].line, /nodeEligible: false/);
  await r.stop();
});

Deno.test("a restart with addresses keeps them while kube-proxy's health is unknown", async () => {
  const { clock, store, r, fake } = await agent(["10.0.100.30"]);
  assert.equal(fake().options.startedWithAddresses, true);
  for (let i = 0; i < 10; i++) fake().poll(REFUSED);
  await clock.tick(10);
  assert.deepEqual(store.hosts(), ["10.0.100.30"]);
  assert.deepEqual(store.plans, []);
  assert.match(r.status().health.reason ?? "", /health unknown/);
  await r.stop();
});

Deno.test("--kube-proxy-health off builds no poller and leaves the gate open", async () => {
  const { store, r, source, fake } = await agent([], "off");
  assert.equal(source, undefined);
  assert.equal(fake(), undefined);
  assert.deepEqual(store.hosts(), ["10.0.100.30"]);
  await r.stop();
});
