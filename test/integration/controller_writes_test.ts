import assert from "node:assert/strict";
import { KubeApi } from "../../lib/kube/client.ts";
import { ApiError } from "../../lib/kube/errors.ts";
import { decodeLbService } from "../../lib/controller/lb_service.ts";
import { statusWriter } from "../../lib/controller/status_writer.ts";
import { leaseClient } from "../../lib/controller/leader/lease_api.ts";
import { INITIAL_ELECTION, nextLeaseAction } from "../../lib/controller/leader/decision.ts";
import { EventRecorder } from "../../lib/controller/event_recorder.ts";
import { systemClock } from "../../lib/base/system_clock.ts";
import { FakeApiServer } from "../support/fakes/apiserver.ts";

const signal = () => new AbortController().signal;

async function world() {
  const server = await FakeApiServer.start();
  const api = new KubeApi({ server: server.url, source: "test" });
  return {
    server,
    api,
    async [Symbol.asyncDispose]() {
      api.close();
      await server.close();
    },
  };
}

Deno.test("the status writer merge-patches only status, with the resourceVersion as precondition: a stale one gets 409", async () => {
  await using w = await world();
  const created = w.server.create({
    name: "a",
    namespace: "web",
    type: "LoadBalancer",
    loadBalancerClass: "kube-gw.io/anycast",
  });
  const svc = decodeLbService(created);
  const writer = statusWriter(w.api);
  const rv = await writer.write(svc, ["198.51.100.7"], signal());
  const stored = w.server.get("services", "a", "web")!;
  assert.equal((stored.metadata as { resourceVersion: string }).resourceVersion, rv);
  assert.deepEqual(stored.status, {
    loadBalancer: { ingress: [{ ip: "198.51.100.7", ipMode: "VIP" }] },
  });
  assert.equal((stored.spec as { type: string }).type, "LoadBalancer");
  // The same (now stale) version again: refused, nothing changes.
  await assert.rejects(
    writer.write(svc, [], signal()),
    (e: unknown) => e instanceof ApiError && e.status === 409,
  );
  assert.deepEqual(decodeLbService(w.server.get("services", "a", "web")).ingressIPs, [
    "198.51.100.7",
  ]);
  // From the current version, clearing works.
  await writer.write({ ...svc, resourceVersion: rv }, [], signal());
  assert.deepEqual(decodeLbService(w.server.get("services", "a", "web")).ingressIPs, []);
});

Deno.test("the Lease client: absent reads as undefined, create, update with precondition, 409 on a stale one", async () => {
  await using w = await world();
  const leases = leaseClient(w.api, "kube-system");
  const target = { namespace: "kube-system", name: "kube-gw-controller", identity: "me-1" };
  assert.equal(await leases.get(signal()), undefined);
  const first = nextLeaseAction(undefined, INITIAL_ELECTION, 0, target);
  assert.equal(first.action.kind, "create");
  if (first.action.kind !== "create") return;
  await leases.write("create", first.action.body, signal());
  const read = await leases.get(signal());
  assert.equal(read?.holderIdentity, "me-1");
  const renew = nextLeaseAction(read, { ...first.state, leading: true }, 2000, target);
  assert.equal(renew.action.kind, "renew");
  if (renew.action.kind !== "renew") return;
  await leases.write("update", renew.action.body, signal());
  await assert.rejects(
    leases.write("update", renew.action.body, signal()),
    (e: unknown) => e instanceof ApiError && e.status === 409,
  );
  await assert.rejects(
    leases.write("create", first.action.body, signal()),
    (e: unknown) => e instanceof ApiError && e.status === 409,
  );
});

Deno.test("an Event is posted as events.k8s.io/v1 with kube-gw's reporting controller, regarding the Service", async () => {
  await using w = await world();
  const rec = new EventRecorder({ api: w.api, clock: systemClock, instance: "me-1" });
  const regarding = { kind: "Service" as const, namespace: "web", name: "a", uid: "u-1" };
  const ev = {
    regarding,
    type: "Warning" as const,
    reason: "AllocationFailed",
    action: "Allocate",
  };
  assert.equal(await rec.record({ ...ev, note: "taken: x".repeat(300) }, signal()), "emit");
  assert.equal(await rec.record({ ...ev, note: "taken: x".repeat(300) }, signal()), "duplicate");
  await rec.settled();
  const events = w.server.objects("events", "web");
  assert.equal(events.length, 1);
  const e = events[0] as Record<string, unknown>;
  assert.equal(e.reportingController, "kube-gw.io/controller");
  assert.equal(e.reportingInstance, "me-1");
  assert.equal(e.reason, "AllocationFailed");
  assert.equal(e.type, "Warning");
  assert.ok((e.note as string).length <= 1024);
  assert.deepEqual(e.regarding, {
    apiVersion: "v1",
    kind: "Service",
    namespace: "web",
    name: "a",
    uid: "u-1",
  });
});
