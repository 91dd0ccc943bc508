import assert from "node:assert/strict";
import fc from "fast-check";
import { parseCidr } from "../../../lib/base/cidr.ts";
import { type AllocationResult, Allocator } from "../../../lib/controller/allocator.ts";
import { wantedFamilies } from "../../../lib/controller/request.ts";
import type { LbPort, LbServiceRecord } from "../../../lib/controller/lb_service.ts";
import type { Pool } from "../../../lib/controller/pools.ts";

/**
 * A pool that hands out every address of its blocks (`allowReserved`), so the
 * tests of other rules count addresses simply; the reserved addresses have tests of their own.
 */
function pool(name: string, cidrs: string[], more: Partial<Pool> = {}): Pool {
  return { name, cidrs: cidrs.map(parseCidr), autoAssign: true, allowReserved: true, ...more };
}

function svc(
  namespace: string,
  name: string,
  more: Partial<LbServiceRecord> = {},
): LbServiceRecord {
  return {
    namespace,
    name,
    uid: `${namespace}-${name}`,
    resourceVersion: "1",
    type: "LoadBalancer",
    clusterIP: "10.96.0.10",
    loadBalancerClass: "kube-gw.io/anycast",
    ipFamilies: [4],
    ipFamilyPolicy: "SingleStack",
    ports: [{ protocol: "TCP", port: 80 }],
    externalIPs: [],
    ingressIPs: [],
    truncated: [],
    ...more,
  };
}

function ok(r: AllocationResult): readonly string[] {
  if (!r.ok) assert.fail(`expected an allocation, got ${r.failure.reason}: ${r.failure.message}`);
  return r.addresses;
}

function failure(r: AllocationResult): { reason: string; message: string } {
  if (r.ok) assert.fail(`expected a failure, got ${r.addresses.join(",")}`);
  return r.failure;
}

const POOLS = [
  pool("web-only", ["10.0.1.0/30"], { namespaces: ["web"] }),
  pool("public", ["10.0.2.0/30", "2001:db8:2::/126"]),
  pool("reserved", ["10.0.3.0/30"], { autoAssign: false }),
];

Deno.test("a Service gets the first free address of the first auto-assigned pool its namespace may use", () => {
  const a = new Allocator(POOLS);
  assert.deepEqual(ok(a.allocate(svc("web", "one"))), ["10.0.1.0"]);
  assert.deepEqual(ok(a.allocate(svc("web", "two"))), ["10.0.1.1"]);
  assert.deepEqual(ok(a.allocate(svc("shop", "one"))), ["10.0.2.0"]);
});

Deno.test("a full pool passes on to the next auto-assigned pool, then fails as exhausted", () => {
  const a = new Allocator(POOLS);
  const got = Array.from({ length: 8 }, (_, i) => ok(a.allocate(svc("web", `s${i}`)))[0]);
  assert.deepEqual(got, [
    "10.0.1.0",
    "10.0.1.1",
    "10.0.1.2",
    "10.0.1.3",
    "10.0.2.0",
    "10.0.2.1",
    "10.0.2.2",
    "10.0.2.3",
  ]);
  const f = failure(a.allocate(svc("web", "s8")));
  assert.equal(f.reason, "pool_exhausted");
  assert.match(f.message, /^Service web\/s8: no free IPv4 address/);
});

Deno.test("a released address is the first one handed out again", () => {
  const a = new Allocator(POOLS);
  for (let i = 0; i < 4; i++) a.allocate(svc("shop", `s${i}`));
  assert.deepEqual(a.release("shop/s1"), ["10.0.2.1"]);
  assert.deepEqual(a.release("shop/s0"), ["10.0.2.0"]);
  assert.deepEqual(ok(a.allocate(svc("shop", "n1"))), ["10.0.2.0"]);
  assert.deepEqual(ok(a.allocate(svc("shop", "n2"))), ["10.0.2.1"]);
  assert.equal(failure(a.allocate(svc("shop", "n3"))).reason, "pool_exhausted");
});

Deno.test("allocating again for an unchanged Service changes nothing", () => {
  const a = new Allocator(POOLS);
  const first = a.allocate(svc("shop", "s"));
  const again = a.allocate(svc("shop", "s", { resourceVersion: "2" }));
  assert.deepEqual(ok(again), ok(first));
  assert.equal(again.ok && again.changed, false);
});

Deno.test("the annotation asks for addresses, falling back to spec.loadBalancerIP", () => {
  const a = new Allocator(POOLS);
  assert.deepEqual(ok(a.allocate(svc("shop", "ann", { requestedIPs: " 10.0.2.2 " }))), [
    "10.0.2.2",
  ]);
  assert.deepEqual(ok(a.allocate(svc("shop", "lbip", { loadBalancerIP: "10.0.2.3" }))), [
    "10.0.2.3",
  ]);
  // The annotation wins over spec.loadBalancerIP.
  assert.deepEqual(
    ok(a.allocate(svc("shop", "both", { requestedIPs: "10.0.3.1", loadBalancerIP: "10.0.3.2" }))),
    ["10.0.3.1"],
  );
  // A request for an address in a pool without autoAssign is met.
  assert.equal(a.poolOf("10.0.3.1"), "reserved");
});

Deno.test("a changed request moves the Service and frees its old address", () => {
  const a = new Allocator(POOLS);
  ok(a.allocate(svc("shop", "s")));
  const r = a.allocate(svc("shop", "s", { requestedIPs: "10.0.2.3" }));
  assert.deepEqual(ok(r), ["10.0.2.3"]);
  assert.deepEqual(r.released, ["10.0.2.0"]);
  assert.deepEqual(a.holders("10.0.2.0"), []);
});

Deno.test("a bad annotation is refused with the field and a hint, and leaves the Service without an address", () => {
  const a = new Allocator(POOLS);
  ok(a.allocate(svc("shop", "s")));
  const cases: [string, RegExp][] = [
    [
      "010.0.2.1",
      /kube-gw.io\/load-balancer-ips: "010.0.2.1" is not a canonical IP address \(did you mean "10.0.2.1"\?\)/,
    ],
    ["10.0.2.1,10.0.2.2", /more than one IPv4 address/],
    ["127.0.0.1", /loopback range/],
    ["x; rm -rf /", /is not a canonical IP address/],
    ["2001:db8:2::1", /is IPv6 but spec.ipFamilies is \[IPv4\]/],
  ];
  for (const [requestedIPs, message] of cases) {
    const r = a.allocate(svc("shop", "s", { requestedIPs }));
    const f = failure(r);
    assert.equal(f.reason, "bad_annotation", requestedIPs);
    assert.match(f.message, message);
    assert.match(f.message, /^Service shop\/s: /);
    assert.equal(a.assignments.get("shop/s"), undefined);
  }
  assert.deepEqual(
    failure(a.allocate(svc("shop", "t", { loadBalancerIP: "10.0.2.01" }))).message,
    'Service shop/t: spec.loadBalancerIP: "10.0.2.01" is not a canonical IP address (did you mean "10.0.2.1"?)',
  );
});

Deno.test("an address held by another Service is refused as taken", () => {
  const a = new Allocator(POOLS);
  ok(a.allocate(svc("shop", "first", { requestedIPs: "10.0.2.1" })));
  const same = failure(a.allocate(svc("shop", "second", { requestedIPs: "10.0.2.1" })));
  assert.equal(same.reason, "taken");
  assert.match(same.message, /held by Service shop\/first/);
  const other = failure(a.allocate(svc("web", "third", { requestedIPs: "10.0.2.1" })));
  assert.equal(other.reason, "taken");
  // Another namespace's Service names are not told.
  assert.doesNotMatch(other.message, /shop\/first/);
});

Deno.test("Services of one namespace with one sharing key and distinct ports share an address", () => {
  const a = new Allocator(POOLS);
  const dns = (name: string, ports: LbPort[], namespace = "shop", sharingKey = "dns") =>
    svc(namespace, name, { requestedIPs: "10.0.2.1", sharingKey, ports });
  ok(a.allocate(dns("tcp", [{ protocol: "TCP", port: 53 }])));
  ok(a.allocate(dns("udp", [{ protocol: "UDP", port: 53 }])));
  assert.deepEqual([...a.holders("10.0.2.1")].sort(), ["shop/tcp", "shop/udp"]);
  assert.equal(failure(a.allocate(dns("tcp2", [{ protocol: "TCP", port: 53 }]))).reason, "taken");
  assert.equal(
    failure(a.allocate(dns("x", [{ protocol: "TCP", port: 80 }], "shop", "other"))).reason,
    "taken",
  );
  assert.equal(
    failure(a.allocate(dns("y", [{ protocol: "TCP", port: 80 }], "web", "dns"))).reason,
    "taken",
  );
  // Releasing one sharer keeps the address with the other.
  a.release("shop/tcp");
  assert.deepEqual(a.holders("10.0.2.1"), ["shop/udp"]);
});

Deno.test("a Service that changes its ports to overlap a sharer loses the shared address", () => {
  const a = new Allocator(POOLS);
  const s = (name: string, port: number) =>
    svc("shop", name, {
      requestedIPs: "10.0.2.1",
      sharingKey: "k",
      ports: [{ protocol: "TCP", port }],
    });
  ok(a.allocate(s("a", 80)));
  ok(a.allocate(s("b", 443)));
  assert.equal(failure(a.allocate(s("b", 80))).reason, "taken");
  assert.deepEqual(a.holders("10.0.2.1"), ["shop/a"]);
});

Deno.test("a namespace only gets addresses of pools open to it", () => {
  const a = new Allocator(POOLS);
  const f = failure(a.allocate(svc("shop", "s", { requestedIPs: "10.0.1.1" })));
  assert.equal(f.reason, "not_allowed");
  assert.match(f.message, /10.0.1.1 is in pool "web-only", not open to namespace shop/);
  assert.equal(failure(a.allocate(svc("shop", "t", { pool: "web-only" }))).reason, "not_allowed");
  const out = failure(a.allocate(svc("shop", "u", { requestedIPs: "192.0.2.1" })));
  assert.equal(out.reason, "not_allowed");
  assert.match(out.message, /192.0.2.1 is in no pool/);
  const named = failure(a.allocate(svc("shop", "v", { pool: "public", requestedIPs: "10.0.3.1" })));
  assert.match(named.message, /10.0.3.1 is not in pool "public"/);
});

Deno.test("a Service may ask for an address it lists in its own externalIPs, outside the pools", () => {
  const a = new Allocator(POOLS);
  const r = a.allocate(
    svc("shop", "moved", { requestedIPs: "192.0.2.10", externalIPs: ["192.0.2.10"] }),
  );
  assert.deepEqual(ok(r), ["192.0.2.10"]);
  assert.deepEqual(r.ok && r.outsidePools, []);
  // Another Service may not take it, even listing it too.
  const other = a.allocate(
    svc("shop", "thief", { requestedIPs: "192.0.2.10", externalIPs: ["192.0.2.10"] }),
  );
  assert.equal(failure(other).reason, "taken");
});

Deno.test("a named pool gives its addresses, even without autoAssign; an unknown one fails", () => {
  const a = new Allocator(POOLS);
  assert.deepEqual(ok(a.allocate(svc("shop", "s", { pool: "reserved" }))), ["10.0.3.0"]);
  const f = failure(a.allocate(svc("shop", "t", { pool: "nope" })));
  assert.equal(f.reason, "unknown_pool");
  assert.match(f.message, /no pool is named "nope"/);
});

Deno.test("a namespace with no auto-assigned pool gets a clear failure", () => {
  const a = new Allocator([pool("web-only", ["10.0.1.0/30"], { namespaces: ["web"] })]);
  const f = failure(a.allocate(svc("shop", "s")));
  assert.equal(f.reason, "no_pool");
  assert.match(f.message, /no auto-assigned pool is open to namespace shop/);
});

Deno.test("dual-stack follows ipFamilies and ipFamilyPolicy", () => {
  const a = new Allocator(POOLS);
  assert.deepEqual(
    ok(a.allocate(svc("shop", "single6", { ipFamilies: [6, 4], ipFamilyPolicy: "SingleStack" }))),
    ["2001:db8:2::"],
  );
  assert.deepEqual(
    ok(
      a.allocate(svc("shop", "prefer", { ipFamilies: [6, 4], ipFamilyPolicy: "PreferDualStack" })),
    ),
    ["2001:db8:2::1", "10.0.2.0"],
  );
  assert.deepEqual(
    ok(
      a.allocate(
        svc("shop", "require", { ipFamilies: [4, 6], ipFamilyPolicy: "RequireDualStack" }),
      ),
    ),
    ["10.0.2.1", "2001:db8:2::2"],
  );
  // Requests: one per family; RequireDualStack needs both.
  assert.deepEqual(
    ok(a.allocate(svc("shop", "req2", {
      ipFamilies: [4, 6],
      ipFamilyPolicy: "PreferDualStack",
      requestedIPs: "2001:db8:2::3,10.0.2.2",
    }))),
    ["10.0.2.2", "2001:db8:2::3"],
  );
  const needsBoth = failure(a.allocate(svc("shop", "req1", {
    ipFamilies: [4, 6],
    ipFamilyPolicy: "RequireDualStack",
    requestedIPs: "10.0.2.3",
  })));
  assert.equal(needsBoth.reason, "bad_annotation");
});

Deno.test("RequireDualStack gets nothing when one family cannot be had; PreferDualStack takes one", () => {
  const a = new Allocator([pool("v4", ["10.0.2.0/30"])]);
  const f = failure(
    a.allocate(svc("shop", "r", { ipFamilies: [4, 6], ipFamilyPolicy: "RequireDualStack" })),
  );
  assert.equal(f.reason, "no_pool");
  assert.deepEqual(a.holders("10.0.2.0"), []);
  const p = a.allocate(svc("shop", "p", { ipFamilies: [4, 6], ipFamilyPolicy: "PreferDualStack" }));
  assert.deepEqual(ok(p), ["10.0.2.0"]);
  assert.equal(p.ok && p.partial?.reason, "no_pool");
});

Deno.test("wantedFamilies: SingleStack the first, dual policies both, in the Service's order", () => {
  assert.deepEqual(wantedFamilies({ ipFamilies: [6, 4], ipFamilyPolicy: "SingleStack" }), [6]);
  assert.deepEqual(wantedFamilies({ ipFamilies: [], ipFamilyPolicy: "SingleStack" }), [4]);
  assert.deepEqual(wantedFamilies({ ipFamilies: [6], ipFamilyPolicy: "PreferDualStack" }), [6]);
  assert.deepEqual(wantedFamilies({ ipFamilies: [6], ipFamilyPolicy: "RequireDualStack" }), [6, 4]);
});

Deno.test("a pools edit never moves a held address; one left outside every pool is reported", () => {
  const a = new Allocator(POOLS);
  ok(a.allocate(svc("shop", "s")));
  const outside = a.setPools([pool("new", ["10.0.9.0/30"])]);
  assert.deepEqual(outside, [{ key: "shop/s", address: "10.0.2.0" }]);
  const r = a.allocate(svc("shop", "s", { resourceVersion: "5" }));
  assert.deepEqual(ok(r), ["10.0.2.0"]);
  assert.deepEqual(r.ok && r.outsidePools, ["10.0.2.0"]);
  assert.deepEqual(ok(a.allocate(svc("shop", "t"))), ["10.0.9.0"]);
});

Deno.test("a pools edit that deletes a Service's named pool or closes it to its namespace takes nothing away", () => {
  const a = new Allocator(POOLS);
  const named = svc("shop", "named", { pool: "reserved" });
  const auto = svc("web", "auto");
  assert.deepEqual(ok(a.allocate(named)), ["10.0.3.0"]);
  assert.deepEqual(ok(a.allocate(auto)), ["10.0.1.0"]);
  const outside = a.setPools([
    pool("web-only", ["10.0.1.0/30"], { namespaces: ["other"] }),
    pool("public", ["10.0.2.0/30"]),
  ]);
  assert.deepEqual(outside, [{ key: "shop/named", address: "10.0.3.0" }]);
  const again = a.allocate({ ...named, resourceVersion: "9" });
  assert.deepEqual(ok(again), ["10.0.3.0"]);
  assert.deepEqual(again.ok && again.outsidePools, ["10.0.3.0"]);
  assert.deepEqual(ok(a.allocate({ ...auto, resourceVersion: "9" })), ["10.0.1.0"]);
  // A new Service of that namespace no longer gets addresses of the closed pool.
  assert.deepEqual(ok(a.allocate(svc("web", "new"))), ["10.0.2.0"]);
});

Deno.test("rebuild takes back the status addresses before anything is allocated", () => {
  const a = new Allocator(POOLS);
  const report = a.rebuild([
    // The older of two claims keeps the address.
    svc("shop", "held", { ingressIPs: ["10.0.2.0"], created: 1000 }),
    svc("shop", "dup", { ingressIPs: ["10.0.2.0"], created: 2000 }),
    svc("shop", "junk", { ingressIPs: ["010.0.2.2", "<number:5>"] }),
    svc("shop", "orphan", { ingressIPs: ["192.0.2.7"] }),
  ]);
  assert.equal(report.restored, 2);
  assert.deepEqual(report.conflicts, [{
    key: "shop/dup",
    address: "10.0.2.0",
    holder: "shop/held",
  }]);
  assert.deepEqual(report.invalid.map((i) => i.address), ["010.0.2.2", "<number:5>"]);
  assert.deepEqual(report.outsidePools, [{ key: "shop/orphan", address: "192.0.2.7" }]);
  // A new Service does not get the held address; the orphan keeps its own.
  assert.deepEqual(ok(a.allocate(svc("shop", "new"))), ["10.0.2.1"]);
  assert.deepEqual(ok(a.allocate(svc("shop", "orphan"))), ["192.0.2.7"]);
  assert.deepEqual(ok(a.allocate(svc("shop", "dup"))), ["10.0.2.2"]);
});

Deno.test("a /16 and an IPv6 /64 pool hand out addresses without listing them", () => {
  const a = new Allocator([pool("big", ["10.1.0.0/16", "2001:db8:1::/64"])]);
  for (let i = 0; i < 300; i++) a.allocate(svc("shop", `s${i}`));
  assert.deepEqual(ok(a.allocate(svc("shop", "x"))), ["10.1.1.44"]);
  assert.deepEqual(
    ok(a.allocate(svc("shop", "y", { ipFamilies: [6], ipFamilyPolicy: "SingleStack" }))),
    ["2001:db8:1::"],
  );
});

// ---- Properties over random sequences of events ----

const NAMESPACES = ["a", "b"];
const PROP_POOLS: Pool[] = [
  pool("only-a", ["10.0.0.0/30"], { namespaces: ["a"] }),
  pool("open", ["10.0.1.0/30", "fd00::/126"]),
  pool("manual", ["10.0.2.0/30", "fd00:2::/126"], { autoAssign: false }),
];
const PORTS: LbPort[] = [
  { protocol: "TCP", port: 80 },
  { protocol: "TCP", port: 443 },
  { protocol: "UDP", port: 53 },
];
const ADDRS = ["10.0.0.1", "10.0.1.2", "10.0.2.1", "10.9.9.9", "fd00::1", "fd00:2::2", "bad"];
const SHARED = ["10.0.1.2", "10.0.2.1", "10.0.2.1", "fd00:2::2"];

const arbService = fc.record({
  namespace: fc.constantFrom(...NAMESPACES),
  name: fc.constantFrom("s0", "s1", "s2", "s3", "s4", "s5"),
  requestedIPs: fc.option(
    fc.oneof(
      fc.subarray(ADDRS, { maxLength: 2 }).map((x) => x.join(",")),
      fc.constantFrom(...SHARED),
    ),
    { nil: undefined },
  ),
  pool: fc.option(fc.constantFrom("only-a", "open", "manual", "nope"), { nil: undefined }),
  sharingKey: fc.option(fc.constantFrom("k1", "k1", "k2"), { nil: undefined, freq: 4 }),
  ports: fc.subarray(PORTS, { minLength: 1, maxLength: 2 }),
  fam: fc.constantFrom<(4 | 6)[]>([4], [6], [4, 6], [6, 4]),
  ipFamilyPolicy: fc.constantFrom(
    "SingleStack",
    "PreferDualStack",
    "RequireDualStack",
  ) as fc.Arbitrary<LbServiceRecord["ipFamilyPolicy"]>,
  ownExternal: fc.boolean(),
}).map((r) =>
  svc(r.namespace, r.name, {
    requestedIPs: r.requestedIPs,
    pool: r.pool,
    sharingKey: r.sharingKey,
    ports: r.ports,
    // As the API server fills them: one family for SingleStack, both for RequireDualStack.
    ipFamilies: r.ipFamilyPolicy === "SingleStack"
      ? r.fam.slice(0, 1)
      : r.ipFamilyPolicy === "RequireDualStack" && r.fam.length === 1
      ? [r.fam[0], r.fam[0] === 4 ? 6 : 4]
      : r.fam,
    ipFamilyPolicy: r.ipFamilyPolicy,
    externalIPs: r.ownExternal ? ["10.9.9.9"] : [],
  })
);

type Op = { kind: "allocate"; svc: LbServiceRecord } | { kind: "release"; key: string };
const arbOps = fc.array(
  fc.oneof(
    { weight: 4, arbitrary: arbService.map((s): Op => ({ kind: "allocate", svc: s })) },
    {
      weight: 1,
      arbitrary: fc.record({
        ns: fc.constantFrom(...NAMESPACES),
        n: fc.constantFrom("s0", "s1", "s2"),
      }).map(({ ns, n }): Op => ({ kind: "release", key: `${ns}/${n}` })),
    },
  ),
  { maxLength: 60 },
);

/** Runs the events; returns the allocator and the latest record of each Service holding addresses. */
function run(ops: Op[]): { a: Allocator; live: Map<string, LbServiceRecord> } {
  const a = new Allocator(PROP_POOLS);
  const live = new Map<string, LbServiceRecord>();
  for (const op of ops) {
    if (op.kind === "release") {
      a.release(op.key);
      live.delete(op.key);
      continue;
    }
    const key = `${op.svc.namespace}/${op.svc.name}`;
    const before = a.assignments.get(key) ?? [];
    const r = a.allocate(op.svc);
    live.set(key, op.svc);
    assert.deepEqual(a.assignments.get(key) ?? [], r.ok ? r.addresses : []);
    if (r.ok) {
      checkFamilies(op.svc, r.addresses);
      for (const address of r.addresses) {
        if (!before.includes(address)) checkGrant(a, op.svc, address);
      }
    }
    checkInvariants(a, live);
  }
  return { a, live };
}

function fam(address: string): 4 | 6 {
  return address.includes(":") ? 6 : 4;
}

function checkFamilies(s: LbServiceRecord, addresses: readonly string[]): void {
  const fams = addresses.map(fam);
  assert.equal(new Set(fams).size, fams.length, "at most one address per family");
  for (const f of fams) assert.ok(s.ipFamilies.includes(f), "only families the Service has");
  if (s.ipFamilyPolicy === "SingleStack") assert.equal(fams.length, 1);
  if (s.ipFamilyPolicy === "RequireDualStack") assert.equal(fams.length, 2);
  if (s.ipFamilyPolicy === "PreferDualStack") assert.ok(fams.length >= 1);
}

/** A namespace only gets an address of a pool open to it, or one of the Service's own externalIPs. */
function checkGrant(a: Allocator, s: LbServiceRecord, address: string): void {
  const p = PROP_POOLS.find((p) => p.name === a.poolOf(address));
  if (p) assert.ok(!p.namespaces || p.namespaces.includes(s.namespace), `${s.name} ${address}`);
  else assert.ok(s.externalIPs.includes(address), `${s.name} got ${address} in no pool`);
}

function checkInvariants(a: Allocator, live: Map<string, LbServiceRecord>): void {
  const byAddress = new Map<string, string[]>();
  for (const [key, addresses] of a.assignments) {
    for (const address of addresses) {
      byAddress.set(address, [...(byAddress.get(address) ?? []), key]);
      // Pool namespace lists do not change here, so a held address stays in an open pool.
      const p = PROP_POOLS.find((p) => p.name === a.poolOf(address));
      if (p) assert.ok(!p.namespaces || p.namespaces.includes(live.get(key)!.namespace));
    }
  }
  // Never one address on two Services outside a sharing key with distinct ports.
  for (const [address, keys] of byAddress) {
    for (let i = 0; i < keys.length; i++) {
      for (let j = i + 1; j < keys.length; j++) {
        const x = live.get(keys[i])!;
        const y = live.get(keys[j])!;
        assert.equal(x.namespace, y.namespace, address);
        assert.ok(x.sharingKey && x.sharingKey === y.sharingKey, address);
        const px = new Set(x.ports.map((p) => `${p.protocol}/${p.port}`));
        assert.ok(!y.ports.some((p) => px.has(`${p.protocol}/${p.port}`)), address);
      }
    }
  }
}

Deno.test("property: no address is ever held by two Services outside a sharing key, and namespaces stay in their pools", () => {
  fc.assert(fc.property(arbOps, (ops) => void run(ops)), { numRuns: 300 });
});

Deno.test("property: a rebuild from status gives back every assignment, and nothing moves after it", () => {
  fc.assert(
    fc.property(arbOps, fc.boolean(), (ops, reverse) => {
      const { a, live } = run(ops);
      const records = [...a.assignments].map(([key, addresses]) => ({
        ...live.get(key)!,
        ingressIPs: addresses,
      }));
      if (reverse) records.reverse();
      const b = new Allocator(PROP_POOLS);
      const report = b.rebuild(records);
      assert.deepEqual(report.conflicts, []);
      assert.deepEqual(new Map(b.assignments), new Map(a.assignments));
      for (const r of records) {
        const again = b.allocate(r);
        assert.deepEqual(
          again.ok && again.addresses,
          a.assignments.get(`${r.namespace}/${r.name}`),
        );
        assert.equal(again.ok && again.changed, false);
      }
    }),
    { numRuns: 300 },
  );
});
