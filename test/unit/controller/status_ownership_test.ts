import assert from "node:assert/strict";
import { ApiError } from "../../../lib/kube/errors.ts";
import { setup, svc } from "./loop_world.ts";

const OTHER = "other.example/lb";

Deno.test("a Service that left the class while kube-gw's clearing write waited for its retry, and whose status another implementation wrote, is not written and not told it was released", async () => {
  const t = setup();
  t.controller.services.replace([svc("a", "web")]);
  t.controller.startLeading();
  await t.settle();
  assert.deepEqual(t.status.last.get("web/a"), ["198.51.100.0"]);
  const before = t.status.writes.length;
  // LoadBalancer -> ClusterIP: kube-gw clears its address, but that write fails and waits for
  // its retry; meanwhile the Service becomes a LoadBalancer of another class, whose controller
  // writes its own address.
  t.status.failNext.push(new ApiError("boom", 500));
  t.controller.services.upsert(
    svc("a", "web", { rv: "5", type: "ClusterIP", cls: null, ingress: ["198.51.100.0"] }),
  );
  await t.settle();
  assert.equal(t.counts.errors, 1);
  t.controller.services.upsert(svc("a", "web", { rv: "6", cls: OTHER, ingress: ["203.0.113.9"] }));
  await t.settle();
  await t.clock.tick(60_000);
  await t.settle();
  assert.equal(t.status.writes.length, before, "nothing written over the other's status");
  assert.deepEqual(
    t.eventApi.about("a").filter((e) => !e.startsWith("IPAllocated")),
    [],
    "no IPReleased for an address kube-gw never had",
  );
  // kube-gw's own address is free again.
  t.controller.services.upsert(svc("b", "web"));
  await t.settle();
  assert.deepEqual(t.status.last.get("web/b"), ["198.51.100.0"]);
});

Deno.test("the retry of a failed status write decides again from the newest version: a Service no longer ours is left alone", async () => {
  const t = setup();
  t.status.failNext.push(new ApiError("boom", 500));
  t.controller.services.replace([svc("a", "web", { rv: "1" })]);
  t.controller.startLeading();
  await t.settle();
  assert.equal(t.counts.errors, 1);
  // Meanwhile the Service changed class and the other implementation wrote its status.
  t.controller.services.upsert(svc("a", "web", { rv: "2", cls: OTHER, ingress: ["203.0.113.9"] }));
  await t.settle();
  await t.clock.tick(60_000);
  await t.settle();
  assert.deepEqual(t.status.writes, [], "neither the retry nor the new version wrote anything");
  assert.deepEqual(t.eventApi.about("a"), []);
});

Deno.test("a 409 is decided again from the newest version: when that is another class's, nothing is written", async () => {
  const t = setup();
  t.status.failNext.push(new ApiError("conflict", 409));
  t.controller.services.replace([svc("a", "web", { rv: "1" })]);
  t.controller.startLeading();
  await t.settle();
  assert.equal(t.counts.conflicts, 1);
  t.controller.services.upsert(svc("a", "web", { rv: "2", cls: OTHER, ingress: ["203.0.113.9"] }));
  await t.settle();
  assert.deepEqual(t.status.writes, []);
  assert.deepEqual(t.eventApi.about("a"), []);
});

Deno.test("a status kube-gw did write is cleared when the Service leaves the class, on the version decided on", async () => {
  const t = setup();
  t.controller.services.replace([svc("a", "web")]);
  t.controller.startLeading();
  await t.settle();
  t.controller.services.upsert(svc("a", "web", { rv: "7", cls: OTHER, ingress: ["198.51.100.0"] }));
  await t.settle();
  assert.deepEqual(t.status.writes.at(-1), { key: "web/a", rv: "7", addresses: [] });
  assert.deepEqual(
    t.eventApi.about("a").at(-1),
    `IPReleased: released 198.51.100.0: the Service is no longer of class kube-gw.io/anycast`,
  );
});

Deno.test("IPReleased names only addresses kube-gw held; a status value it never gave is reported as removed", async () => {
  const t = setup();
  t.controller.services.replace([svc("a", "web", { ingress: ["010.1.1.1"] })]);
  t.controller.startLeading();
  await t.settle();
  assert.deepEqual(t.status.last.get("web/a"), ["198.51.100.0"]);
  assert.deepEqual(t.eventApi.about("a"), [
    'StatusCorrected: removed "010.1.1.1" from the status: kube-gw did not give it to this Service',
    "IPAllocated: allocated 198.51.100.0 (pool default)",
  ]);
});
