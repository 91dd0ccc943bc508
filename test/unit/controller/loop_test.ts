import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeLbService } from "../../../lib/controller/lb_service.ts";
import { ApiError } from "../../../lib/kube/errors.ts";
import { CLASS, configMap, setup, svc } from "./loop_world.ts";

Deno.test("a leader gives a new LoadBalancer Service the first free address and records IPAllocated", async () => {
  const t = setup();
  t.controller.services.replace([svc("a", "web")]);
  t.controller.startLeading();
  await t.settle();
  assert.deepEqual(t.status.writes, [{ key: "web/a", rv: "1", addresses: ["198.51.100.0"] }]);
  assert.deepEqual(t.eventApi.about("a"), ["IPAllocated: allocated 198.51.100.0 (pool default)"]);
});

Deno.test("nothing is allocated before the first complete list, nor by a standby", async () => {
  const t = setup();
  t.controller.startLeading();
  t.controller.services.upsert(svc("a", "web"));
  await t.settle();
  assert.deepEqual(t.status.writes, []);
  t.controller.stopLeading();
  t.controller.services.replace([svc("a", "web")]);
  await t.settle();
  assert.deepEqual(t.status.writes, [], "a standby writes nothing");
  assert.equal(t.controller.notReady(), undefined, "a synced standby is ready");
  t.controller.startLeading();
  await t.settle();
  assert.deepEqual(t.status.last.get("web/a"), ["198.51.100.0"]);
});

Deno.test("a Service that stops being kube-gw's has its status cleared and its address freed", async () => {
  const t = setup();
  t.controller.services.replace([svc("a", "web")]);
  t.controller.startLeading();
  await t.settle();
  t.controller.services.upsert(
    svc("a", "web", { rv: "5", cls: "other.io/lb", ingress: ["198.51.100.0"] }),
  );
  await t.settle();
  assert.deepEqual(t.status.writes.at(-1), { key: "web/a", rv: "5", addresses: [] });
  assert.ok(t.eventApi.about("a").some((e) => e.startsWith("IPReleased: released 198.51.100.0")));
  t.controller.services.upsert(svc("b", "web"));
  await t.settle();
  assert.deepEqual(t.status.last.get("web/b"), ["198.51.100.0"], "the freed address is reused");
});

Deno.test("a deleted Service frees its address, and a Service waiting for one gets it", async () => {
  const t = setup({ pool: ["198.51.100.0/31"] });
  t.controller.services.replace([svc("a", "web"), svc("b", "web"), svc("c", "web")]);
  t.controller.startLeading();
  await t.settle();
  assert.deepEqual(t.counts.failures, ["pool_exhausted"]);
  assert.ok(t.eventApi.about("c").some((e) => e.startsWith("AllocationFailed: pool_exhausted")));
  const held = t.status.last.get("web/a")!;
  t.controller.services.delete(svc("a", "web", { ingress: [...held] }));
  await t.settle();
  assert.deepEqual(t.status.last.get("web/c"), held);
});

Deno.test("a new term rebuilds from status: no Service's address ever moves (property)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(fc.integer({ min: 0, max: 15 }), { maxLength: 12 }),
      fc.integer({ min: 0, max: 3 }),
      async (held, fresh) => {
        const t = setup({ pool: ["198.51.100.0/28"] });
        const existing = held.map((n, i) =>
          svc(`s${i}`, "web", { ingress: [`198.51.100.${n}`], rv: "7" })
        );
        const added = Array.from({ length: fresh }, (_, i) => svc(`new${i}`, "web"));
        t.controller.services.replace([...existing, ...added]);
        t.controller.startLeading();
        await t.settle();
        // Nothing already held is written again; new Services get addresses nobody holds.
        const written = t.status.last;
        for (const s of existing) assert.equal(written.has(`web/${s.name}`), false);
        const taken = new Set(held.map((n) => `198.51.100.${n}`));
        for (const s of added) {
          const ips = written.get(`web/${s.name}`) ?? [];
          if (held.length + fresh <= 16) assert.equal(ips.length, 1);
          for (const ip of ips) {
            assert.equal(taken.has(ip), false, `${ip} given twice`);
            taken.add(ip);
          }
        }
      },
    ),
    { numRuns: 50 },
  );
});

Deno.test("a 409 on a status write is decided again from the newer cached version", async () => {
  const t = setup();
  t.status.failNext.push(new ApiError("conflict", 409));
  t.controller.services.replace([svc("a", "web", { rv: "1" })]);
  t.controller.startLeading();
  await t.settle();
  assert.deepEqual(t.status.writes, []);
  assert.equal(t.counts.conflicts, 1);
  // The watch brings the newer version: the write is retried on it, with the same address.
  t.controller.services.upsert(svc("a", "web", { rv: "2" }));
  await t.settle();
  assert.deepEqual(t.status.writes, [{ key: "web/a", rv: "2", addresses: ["198.51.100.0"] }]);
  assert.deepEqual(t.eventApi.about("a"), ["IPAllocated: allocated 198.51.100.0 (pool default)"]);
});

Deno.test("a failed write that is not a conflict is retried after a backoff on the clock", async () => {
  const t = setup();
  t.status.failNext.push(new ApiError("boom", 500));
  t.controller.services.replace([svc("a", "web")]);
  t.controller.startLeading();
  await t.settle();
  assert.equal(t.counts.errors, 1);
  assert.deepEqual(t.status.writes, []);
  await t.clock.runUntil("the retry", () => t.status.writes.length > 0);
  await t.settle();
  assert.deepEqual(t.status.last.get("web/a"), ["198.51.100.0"]);
});

Deno.test("pools edits: a valid one applies live, an invalid one keeps the last good pools and warns on the ConfigMap, an address left outside stays", async () => {
  const t = setup({ pool: [], config: true });
  t.controller.services.replace([svc("a", "web")]);
  t.controller.startLeading();
  await t.settle();
  assert.deepEqual(t.status.writes, [], "nothing before the ConfigMap's first list");
  assert.match(t.controller.notReady() ?? "", /ConfigMap/);
  t.controller.config.replace([
    configMap("pools: [{name: p1, cidrs: [198.51.100.0/30], allowReserved: true}]"),
  ]);
  await t.settle();
  assert.deepEqual(t.status.last.get("web/a"), ["198.51.100.0"]);

  t.controller.config.upsert(configMap("pools: [{name: p1, cidrs: [198.51.100.1/30]}]"));
  await t.settle();
  assert.equal(t.counts.configErrors, 1);
  assert.equal(t.controller.pools[0].cidrs[0].text, "198.51.100.0/30", "the last good pools stay");
  assert.ok(t.eventApi.about("kube-gw-pools").some((e) => e.startsWith("InvalidPools: ")));

  t.controller.config.upsert(
    configMap("pools: [{name: p2, cidrs: [203.0.113.0/30], allowReserved: true}]"),
  );
  t.controller.services.upsert(svc("a", "web", { rv: "3", ingress: ["198.51.100.0"] }));
  t.controller.services.upsert(svc("b", "web"));
  await t.settle();
  assert.deepEqual(t.status.last.get("web/a"), ["198.51.100.0"], "a held address stays");
  assert.deepEqual(t.status.last.get("web/b"), ["203.0.113.0"]);
  assert.ok(t.eventApi.about("a").some((e) => e.startsWith("AddressOutsidePools: 198.51.100.0")));
});

Deno.test("Events are de-duplicated: a Service that keeps failing the same way gets one Warning", async () => {
  const t = setup({ pool: ["198.51.100.0/32"] });
  t.controller.services.replace([svc("a", "web"), svc("b", "web")]);
  t.controller.startLeading();
  await t.settle();
  for (let rv = 2; rv < 30; rv++) {
    t.controller.services.upsert(svc("b", "web", { rv: String(rv) }));
    await t.settle();
  }
  await t.settle();
  assert.equal(t.counts.failures.length, 29);
  assert.deepEqual(t.eventApi.about("b").length, 1);
});

Deno.test("stopLeading aborts the term: writes in flight are abandoned, queued Services are not written", async () => {
  const t = setup({ pool: ["198.51.100.0/24"] });
  t.status.hold = true;
  t.controller.startLeading();
  t.controller.services.replace(Array.from({ length: 50 }, (_, i) => svc(`s${i}`, "web")));
  assert.ok(t.status.started > 0 && t.status.started < 50, `${t.status.started} writes started`);
  t.controller.stopLeading();
  t.status.release();
  await t.settle();
  assert.deepEqual(t.status.writes, []);
  assert.ok(t.status.started < 50);
  assert.deepEqual(t.eventApi.posted, []);
});

Deno.test("an externalIP the agents refuse is reported once as ExternalIPRefused; Services of another class are not even kept", async () => {
  const t = setup();
  const withBad = decodeLbService({
    metadata: { name: "x", namespace: "web", uid: "u-x", resourceVersion: "1" },
    spec: {
      type: "LoadBalancer",
      loadBalancerClass: CLASS,
      externalIPs: ["127.0.0.1"],
      ports: [{ port: 80 }],
    },
  });
  t.controller.services.replace([withBad, svc("other", "web", { cls: "example.com/lb" })]);
  t.controller.startLeading();
  await t.settle();
  t.controller.services.upsert({ ...withBad, resourceVersion: "2" });
  await t.settle();
  const refused = t.eventApi.about("x").filter((e) => e.startsWith("ExternalIPRefused: "));
  assert.equal(refused.length, 1);
  assert.match(refused[0], /127\.0\.0\.1/);
  assert.deepEqual([...t.status.last.keys()], ["web/x"]);
  assert.deepEqual(t.eventApi.about("other"), []);
});
