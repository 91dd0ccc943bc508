import assert from "node:assert/strict";
import { setup, svc } from "./loop_world.ts";

Deno.test("two Services claiming one address at start: the older keeps it, the other is told why and by whom", async () => {
  const t = setup({ pool: ["198.51.100.0/29"] });
  t.controller.services.replace([
    // Sorted by name, the younger comes first.
    svc("a-young", "web", { ingress: ["198.51.100.3"], created: "2024-03-01T10:00:00Z" }),
    svc("b-old", "web", { ingress: ["198.51.100.3"], created: "2024-01-15T08:30:00Z" }),
  ]);
  t.controller.startLeading();
  await t.settle();
  assert.equal(t.status.last.has("web/b-old"), false, "the older keeps its status as it is");
  const moved = t.status.last.get("web/a-young")!;
  assert.equal(moved.length, 1);
  assert.notEqual(moved[0], "198.51.100.3");
  assert.deepEqual(t.eventApi.about("a-young"), [
    "AddressConflict: 198.51.100.3 is also in the status of Service web/b-old, which keeps it: " +
    "it is older (created 2024-01-15T08:30:00.000Z; this Service 2024-03-01T10:00:00.000Z)",
    'StatusCorrected: removed "198.51.100.3" from the status: kube-gw did not give it to this Service',
    `IPAllocated: allocated ${moved[0]} (pool default)`,
  ]);
  assert.deepEqual(t.eventApi.about("b-old"), []);
  const warning = t.eventApi.posted.find((e) => e.reason === "AddressConflict")!;
  assert.equal(warning.type, "Warning");
});

Deno.test("created at the same second, namespace/name decides; another namespace's winner is not named", async () => {
  const t = setup({ pool: ["198.51.100.0/29"] });
  const at = "2024-01-15T08:30:00Z";
  t.controller.services.replace([
    svc("z", "a-ns", { ingress: ["198.51.100.5"], created: at }),
    svc("a", "b-ns", { ingress: ["198.51.100.5"], created: at }),
  ]);
  t.controller.startLeading();
  await t.settle();
  assert.equal(t.status.last.has("a-ns/z"), false);
  assert.deepEqual(
    t.eventApi.about("a")[0],
    "AddressConflict: 198.51.100.5 is also in the status of a Service of another namespace, " +
      "which keeps it: both were created 2024-01-15T08:30:00.000Z, and its namespace/name sorts first",
  );
});

Deno.test("a sharing key longer than the API allows is refused with an Event", async () => {
  const t = setup();
  t.controller.services.replace([
    svc("a", "web", { annotations: { "kube-gw.io/allow-shared-ip": "k".repeat(300) } }),
  ]);
  t.controller.startLeading();
  await t.settle();
  assert.deepEqual(t.status.writes, []);
  assert.match(
    t.eventApi.about("a")[0],
    /^AllocationFailed: bad_annotation: Service web\/a: kube-gw\.io\/allow-shared-ip: "k{64}…" is longer than 253 characters$/,
  );
});
