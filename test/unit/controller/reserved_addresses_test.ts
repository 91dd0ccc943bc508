import assert from "node:assert/strict";
import { parseCidr } from "../../../lib/base/cidr.ts";
import { Allocator } from "../../../lib/controller/allocator.ts";
import type { LbServiceRecord } from "../../../lib/controller/lb_service.ts";
import { flagPool, parsePoolsYaml, type Pool } from "../../../lib/controller/pools.ts";
import { reservedAt } from "../../../lib/controller/pool_space.ts";

function pool(cidrs: string[], allowReserved?: boolean): Pool {
  return { name: "p", cidrs: cidrs.map(parseCidr), autoAssign: true, allowReserved };
}

function svc(name: string, more: Partial<LbServiceRecord> = {}): LbServiceRecord {
  return {
    namespace: "web",
    name,
    uid: `uid-${name}`,
    resourceVersion: "1",
    type: "LoadBalancer",
    clusterIP: "10.96.0.10",
    ipFamilies: [4],
    ipFamilyPolicy: "SingleStack",
    ports: [{ protocol: "TCP", port: 80 }],
    externalIPs: [],
    ingressIPs: [],
    truncated: [],
    ...more,
  };
}

/** Allocates until the pool is full; the addresses handed out, in order. */
function drain(a: Allocator, family: 4 | 6 = 4, max = 1000): string[] {
  const out: string[] = [];
  for (let i = 0; i < max; i++) {
    const r = a.allocate(svc(`s${family}-${i}`, { ipFamilies: [family] }));
    if (!r.ok) {
      assert.equal(r.failure.reason, "pool_exhausted");
      return out;
    }
    out.push(...r.addresses);
  }
  return out;
}

Deno.test("an IPv4 pool skips its network and broadcast addresses by default", () => {
  const got = drain(new Allocator([pool(["198.51.100.0/24"])]));
  assert.equal(got.length, 254);
  assert.equal(got[0], "198.51.100.1");
  assert.equal(got.at(-1), "198.51.100.254");
  assert.ok(!got.includes("198.51.100.0") && !got.includes("198.51.100.255"));
  // A /30 has two addresses to hand out.
  assert.deepEqual(drain(new Allocator([pool(["203.0.113.0/30"])])), [
    "203.0.113.1",
    "203.0.113.2",
  ]);
});

Deno.test("a /31 and a /32, a /127 and a /128 have nothing to skip", () => {
  assert.deepEqual(drain(new Allocator([pool(["203.0.113.0/31", "203.0.113.9/32"])])), [
    "203.0.113.0",
    "203.0.113.1",
    "203.0.113.9",
  ]);
  assert.deepEqual(
    drain(new Allocator([pool(["2001:db8::/127", "2001:db8:1::5/128"])]), 6),
    ["2001:db8::", "2001:db8::1", "2001:db8:1::5"],
  );
  assert.equal(reservedAt(parseCidr("203.0.113.0/31"), 0n), undefined);
  assert.equal(reservedAt(parseCidr("203.0.113.0/30"), 3n), "broadcast");
  assert.equal(reservedAt(parseCidr("2001:db8::/126"), 0n), "subnet-router anycast");
  assert.equal(reservedAt(parseCidr("2001:db8::/126"), 3n), undefined);
});

Deno.test("an IPv6 pool skips its all-zeros address and hands out the last one", () => {
  const got = drain(new Allocator([pool(["2001:db8:100::/124"])]), 6);
  assert.equal(got.length, 15);
  assert.equal(got[0], "2001:db8:100::1");
  assert.equal(got.at(-1), "2001:db8:100::f");
});

Deno.test("allowReserved: true hands out every address", () => {
  assert.deepEqual(drain(new Allocator([pool(["203.0.113.0/30"], true)])), [
    "203.0.113.0",
    "203.0.113.1",
    "203.0.113.2",
    "203.0.113.3",
  ]);
  assert.equal(drain(new Allocator([pool(["2001:db8::/126"], true)]), 6)[0], "2001:db8::");
});

Deno.test("a request for a reserved address is refused; one held from before stays, and once freed is not handed out", () => {
  const a = new Allocator([pool(["203.0.113.0/29"])]);
  const asked = a.allocate(svc("asks", { requestedIPs: "203.0.113.7" }));
  assert.equal(asked.ok, false);
  if (!asked.ok) {
    assert.equal(asked.failure.reason, "not_allowed");
    assert.match(
      asked.failure.message,
      /203\.0\.113\.7 is the broadcast address of 203\.0\.113\.0\/29/,
    );
  }
  // Held in a status written before (by an older kube-gw): kept, asked for or not.
  a.rebuild([
    svc("old", { ingressIPs: ["203.0.113.0"] }),
    svc("old-asks", { ingressIPs: ["203.0.113.7"], requestedIPs: "203.0.113.7" }),
  ]);
  assert.deepEqual(a.allocate(svc("old", { ingressIPs: ["203.0.113.0"] })).ok, true);
  assert.deepEqual(a.assignments.get("web/old"), ["203.0.113.0"]);
  const kept = a.allocate(svc("old-asks", { requestedIPs: "203.0.113.7" }));
  assert.ok(kept.ok && kept.addresses[0] === "203.0.113.7");
  assert.deepEqual(a.release("web/old"), ["203.0.113.0"]);
  const next = drain(a);
  assert.deepEqual(next, [
    "203.0.113.1",
    "203.0.113.2",
    "203.0.113.3",
    "203.0.113.4",
    "203.0.113.5",
    "203.0.113.6",
  ]);
});

Deno.test("pools.yaml takes allowReserved per pool; the --pool pool keeps the default", () => {
  const [strict, open] = parsePoolsYaml(
    "pools:\n  - {name: a, cidrs: [198.51.100.0/24]}\n  - {name: b, cidrs: [203.0.113.0/24], allowReserved: true}\n",
  );
  assert.equal(strict.allowReserved ?? false, false);
  assert.equal(open.allowReserved, true);
  assert.throws(
    () => parsePoolsYaml("pools:\n  - {name: a, cidrs: [198.51.100.0/24], allowReserved: yes}\n"),
    /pool "a" \(pools\[0\]\) field allowReserved: "yes" is not true or false/,
  );
  const flags = flagPool(["198.51.100.0/24"])!;
  assert.equal(flags.allowReserved ?? false, false);
  assert.deepEqual(drain(new Allocator([flags]), 4, 1), ["198.51.100.1"]);
});
