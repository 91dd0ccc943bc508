/**
 * A measurement (not a test) of the pure LoadBalancer allocator at the scale
 * of the controller: 10,000 Services. Needs no permission:
 *
 *     deno run scripts/bench/allocator.ts [COUNT]
 *
 * Prints the wall time of: allocating COUNT new Services one event at a time
 * (a /16 and an IPv6 /64 pool, one in five PreferDualStack, one in twenty
 * asking for an address, one in fifty sharing), allocating them again
 * unchanged (a resync), a rebuild from their status by a new leader followed
 * by allocate for each, and 1,000 delete + create events.
 *
 * @module
 */

import { Allocator } from "../../lib/controller/allocator.ts";
import { parseCidr } from "../../lib/base/cidr.ts";
import type { LbServiceRecord } from "../../lib/controller/lb_service.ts";
import type { Pool } from "../../lib/controller/pools.ts";

const count = Number(Deno.args[0] ?? 10_000);
const pools: Pool[] = [
  { name: "small", cidrs: [parseCidr("10.0.0.0/24")], namespaces: ["ns0"], autoAssign: true },
  {
    name: "public",
    cidrs: [parseCidr("10.1.0.0/16"), parseCidr("2001:db8:1::/64")],
    autoAssign: true,
  },
];

function service(i: number, ingressIPs: readonly string[] = []): LbServiceRecord {
  const dual = i % 5 === 0;
  return {
    namespace: `ns${i % 100}`,
    name: `svc${i}`,
    uid: `u${i}`,
    resourceVersion: "1",
    type: "LoadBalancer",
    clusterIP: "10.96.0.1",
    loadBalancerClass: "kube-gw.io/anycast",
    requestedIPs: i % 20 === 1 ? `10.1.200.${(i / 20) % 250 | 0}` : undefined,
    sharingKey: i % 50 === 3 ? "shared" : undefined,
    ipFamilies: dual ? [4, 6] : [4],
    ipFamilyPolicy: dual ? "PreferDualStack" : "SingleStack",
    ports: [{ protocol: "TCP", port: 80 + (i % 7) }],
    externalIPs: [],
    ingressIPs,
    truncated: [],
  };
}

function time(label: string, f: () => number): void {
  const t0 = performance.now();
  const n = f();
  const ms = performance.now() - t0;
  console.log(`${label.padEnd(46)} ${ms.toFixed(1).padStart(8)} ms  (${n} events)`);
}

const a = new Allocator(pools);
let failed = 0;
time(`allocate ${count} new Services`, () => {
  for (let i = 0; i < count; i++) if (!a.allocate(service(i)).ok) failed++;
  return count;
});
time(`allocate the same ${count} again (resync)`, () => {
  for (let i = 0; i < count; i++) a.allocate(service(i));
  return count;
});
const withStatus = Array.from(
  { length: count },
  (_, i) => service(i, a.assignments.get(`ns${i % 100}/svc${i}`) ?? []),
);
const b = new Allocator(pools);
time(`new leader: rebuild from status + allocate each`, () => {
  b.rebuild(withStatus);
  for (const s of withStatus) b.allocate(s);
  return count + 1;
});
time("1,000 delete + create events", () => {
  for (let i = 0; i < 1000; i++) {
    b.release(`ns${i % 100}/svc${i}`);
    b.allocate(service(count + i));
  }
  return 2000;
});
const addresses = [...a.assignments.values()].reduce((n, l) => n + l.length, 0);
console.log(`${addresses} addresses held, ${failed} requests refused (taken or shared)`);
const mem = Deno.memoryUsage();
console.log(
  `heap used ${(mem.heapUsed / 2 ** 20).toFixed(1)} MiB, rss ${(mem.rss / 2 ** 20).toFixed(1)} MiB`,
);
