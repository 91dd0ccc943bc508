import assert from "node:assert/strict";
import { parseCidr } from "../../../lib/base/cidr.ts";
import { Allocator } from "../../../lib/controller/allocator.ts";
import { decodeLbService } from "../../../lib/controller/lb_service.ts";
import { setup, svc } from "./loop_world.ts";

const lb = (name: string, ips?: string) =>
  decodeLbService({
    metadata: {
      namespace: "web",
      name,
      resourceVersion: "1",
      annotations: ips ? { "kube-gw.io/load-balancer-ips": ips } : {},
    },
    spec: { type: "LoadBalancer", ports: [{ port: 80 }] },
  });

Deno.test("an address let go drains: nobody else gets it until undrain, its holder may take it back", () => {
  const a = new Allocator([{ name: "p", cidrs: [parseCidr("10.0.0.7/32")], autoAssign: true }]);
  const first = a.allocate(lb("a"));
  assert.ok(first.ok && first.addresses[0] === "10.0.0.7");
  const gone = a.allocate(lb("a", "010.0.0.1"));
  assert.ok(!gone.ok);
  a.drain("web/a", gone.released);
  const other = a.allocate(lb("b"));
  assert.ok(!other.ok && other.failure.reason === "pool_exhausted", "b does not get it");
  const asked = a.allocate(lb("c", "10.0.0.7"));
  assert.ok(!asked.ok && asked.failure.reason === "taken");
  assert.match(asked.failure.message, /held by Service web\/a/);
  // a asks for it again: it is a's once more, nothing to undrain.
  const back = a.allocate(lb("a", "10.0.0.7"));
  assert.ok(back.ok && back.addresses[0] === "10.0.0.7");
  assert.deepEqual(a.undrain("web/a"), []);
  // Let go again and written: free.
  const again = a.allocate(lb("a", "010.0.0.1"));
  assert.ok(!again.ok);
  a.drain("web/a", again.released);
  assert.deepEqual(a.undrain("web/a"), ["10.0.0.7"]);
  const now = a.allocate(lb("b"));
  assert.ok(now.ok && now.addresses[0] === "10.0.0.7");
});

Deno.test("an address a Service lets go goes to another only after the write that takes it out of the first's status", async () => {
  const t = setup({ pool: ["198.51.100.7/32"] });
  t.controller.services.replace([svc("a", "web")]);
  t.controller.startLeading();
  await t.settle();
  assert.deepEqual(t.status.last.get("web/a"), ["198.51.100.7"]);
  // a asks for something it cannot have; the write that clears its status hangs.
  t.status.hold = true;
  t.controller.services.upsert(
    svc("a", "web", {
      rv: "2",
      ingress: ["198.51.100.7"],
      annotations: { "kube-gw.io/load-balancer-ips": "010.1.1.1" },
    }),
  );
  t.controller.services.upsert(svc("b", "web"));
  for (let i = 0; i < 20; i++) await t.clock.tick(0);
  assert.equal(t.status.started, 2, "a's clearing write started, nothing for b");
  assert.equal(t.status.last.has("web/b"), false);
  assert.deepEqual(t.counts.failures, ["bad_annotation", "pool_exhausted"]);
  t.status.hold = false;
  t.status.release();
  await t.settle();
  assert.deepEqual(t.status.writes.slice(1).map((w) => [w.key, w.addresses]), [
    ["web/a", []],
    ["web/b", ["198.51.100.7"]],
  ]);
});
