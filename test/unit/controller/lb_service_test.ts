import assert from "node:assert/strict";
import fc from "fast-check";
import { parseCidr } from "../../../lib/base/cidr.ts";
import {
  decodeLbService,
  externalIpRefusals,
  loadBalancerStatus,
  MAX_LIST,
  MAX_STRING,
  statusShows,
} from "../../../lib/controller/lb_service.ts";
import { ShapeError } from "../../../lib/base/shape.ts";
import { evaluateService } from "../../../lib/service/eligibility.ts";
import { DEFAULT_CLASS, isOurs } from "../../../lib/service/class.ts";

const SERVICE = {
  apiVersion: "v1",
  kind: "Service",
  metadata: {
    namespace: "shop",
    name: "web",
    uid: "0b9f-1",
    resourceVersion: "4711",
    creationTimestamp: "2024-05-01T12:00:00Z",
    annotations: {
      "kube-gw.io/load-balancer-ips": "10.0.2.1,2001:db8::1",
      "kube-gw.io/pool": "public",
      "kube-gw.io/allow-shared-ip": "web",
      "unrelated": "x".repeat(10_000),
    },
    managedFields: [{ manager: "kubectl" }],
  },
  spec: {
    type: "LoadBalancer",
    clusterIP: "10.96.0.10",
    loadBalancerClass: "kube-gw.io/anycast",
    loadBalancerIP: "10.0.2.9",
    ipFamilies: ["IPv6", "IPv4"],
    ipFamilyPolicy: "PreferDualStack",
    ports: [{ name: "http", protocol: "TCP", port: 80, targetPort: 8080 }, {
      port: 53,
      protocol: "UDP",
    }],
    externalIPs: ["10.0.2.1"],
    selector: { app: "web" },
  },
  status: { loadBalancer: { ingress: [{ ip: "10.0.2.1", ipMode: "VIP" }, { hostname: "x" }] } },
};

Deno.test("decodeLbService keeps what the controller reads and nothing else", () => {
  assert.deepEqual(decodeLbService(SERVICE), {
    namespace: "shop",
    name: "web",
    uid: "0b9f-1",
    resourceVersion: "4711",
    created: Date.UTC(2024, 4, 1, 12),
    type: "LoadBalancer",
    clusterIP: "10.96.0.10",
    loadBalancerClass: "kube-gw.io/anycast",
    requestedIPs: "10.0.2.1,2001:db8::1",
    pool: "public",
    sharingKey: "web",
    loadBalancerIP: "10.0.2.9",
    ipFamilies: [6, 4],
    ipFamilyPolicy: "PreferDualStack",
    ports: [{ protocol: "TCP", port: 80 }, { protocol: "UDP", port: 53 }],
    externalIPs: ["10.0.2.1"],
    ingressIPs: ["10.0.2.1"],
    truncated: [],
  });
});

Deno.test("decodeLbService reads a bare Service with the API's defaults", () => {
  const r = decodeLbService({ metadata: { namespace: "n", name: "s" } });
  assert.equal(r.type, "ClusterIP");
  assert.equal(r.ipFamilyPolicy, "SingleStack");
  assert.deepEqual([r.ipFamilies, r.ports, r.externalIPs, r.ingressIPs], [[], [], [], []]);
  assert.equal(r.loadBalancerClass, undefined);
  assert.equal(r.requestedIPs, undefined);
  assert.equal(r.loadBalancerIP, undefined);
});

Deno.test("decodeLbService throws ShapeError for unreadable metadata", () => {
  for (
    const bad of [
      null,
      "svc",
      [],
      {},
      { metadata: { name: "s" } },
      { metadata: { namespace: 1, name: "s" } },
      { metadata: { namespace: "n", name: "s".repeat(300) } },
    ]
  ) {
    assert.throws(() => decodeLbService(bad), ShapeError, JSON.stringify(bad)?.slice(0, 40));
  }
});

Deno.test("decodeLbService keeps non-strings as markers that later parsing refuses, never drops them silently", () => {
  const r = decodeLbService({
    metadata: {
      namespace: "n",
      name: "s",
      annotations: { "kube-gw.io/load-balancer-ips": 42, "kube-gw.io/pool": ["a"] },
    },
    spec: {
      type: "LoadBalancer",
      externalIPs: [7, null, "10.0.0.1"],
      ipFamilies: ["IPv4", "IPv9", "IPv4", 6],
      ipFamilyPolicy: "Sometimes",
      ports: [{ port: 0 }, { port: "80" }, { port: 70000 }, { port: 443, protocol: "tcp; rm" }],
    },
    status: { loadBalancer: { ingress: [{ ip: 5 }, "x", { ip: "10.0.0.2" }] } },
  });
  assert.equal(r.requestedIPs, "<number:42>");
  assert.equal(r.pool, '<object:["a"]>');
  assert.deepEqual(r.externalIPs, ["<number:7>", "null", "10.0.0.1"]);
  assert.deepEqual(r.ipFamilies, [4]);
  assert.equal(r.ipFamilyPolicy, "SingleStack");
  assert.deepEqual(r.ports, [{ protocol: "TCP", port: 443 }]);
  assert.deepEqual(r.ingressIPs, ["<number:5>", "10.0.0.2"]);
});

Deno.test("decodeLbService bounds every string and list, and says which fields it cut", () => {
  const r = decodeLbService({
    metadata: {
      namespace: "n",
      name: "s",
      annotations: { "kube-gw.io/load-balancer-ips": "1".repeat(100_000) },
    },
    spec: {
      externalIPs: Array.from({ length: 10_000 }, (_, i) => `10.0.${i >> 8 & 255}.${i & 255}`),
    },
  });
  assert.equal(r.requestedIPs!.length, MAX_STRING + 1);
  assert.equal(r.externalIPs.length, MAX_LIST);
  assert.deepEqual(r.truncated, ["spec.externalIPs", "kube-gw.io/load-balancer-ips"]);
});

Deno.test("property: decodeLbService either throws ShapeError or returns a bounded record", () => {
  fc.assert(
    fc.property(
      fc.record({
        metadata: fc.oneof(
          fc.anything(),
          fc.record({ namespace: fc.string(), name: fc.string(), annotations: fc.anything() }),
        ),
        spec: fc.anything(),
        status: fc.anything(),
      }),
      (obj) => {
        try {
          const r = decodeLbService(obj);
          for (const list of [r.externalIPs, r.ingressIPs]) {
            assert.ok(list.length <= MAX_LIST);
          }
          // Ports are kept whole, each (protocol, number) once.
          const ids = r.ports.map((p) => `${p.protocol}/${p.port}`);
          assert.equal(new Set(ids).size, ids.length);
          for (const s of [...r.externalIPs, ...r.ingressIPs, r.requestedIPs ?? "", r.type]) {
            assert.equal(typeof s, "string");
            assert.ok(s.length <= MAX_STRING + 1);
          }
        } catch (err) {
          assert.ok(err instanceof ShapeError, String(err));
        }
      },
    ),
  );
});

Deno.test("isOurs: type LoadBalancer with kube-gw's class, or no class with --default-class", () => {
  const opts = { class: DEFAULT_CLASS, defaultClass: false };
  const lb = (loadBalancerClass?: string, type = "LoadBalancer") => ({ type, loadBalancerClass });
  assert.equal(isOurs(lb(DEFAULT_CLASS), opts), true);
  assert.equal(isOurs(lb("metallb.io/metallb"), opts), false);
  assert.equal(isOurs(lb(undefined), opts), false);
  assert.equal(isOurs(lb(undefined), { ...opts, defaultClass: true }), true);
  assert.equal(isOurs(lb("other"), { ...opts, defaultClass: true }), false);
  assert.equal(isOurs(lb(DEFAULT_CLASS, "ClusterIP"), opts), false);
  assert.equal(isOurs(lb(undefined, "NodePort"), { ...opts, defaultClass: true }), false);
});

Deno.test("externalIpRefusals gives the agents' own reasons, without the network fence by default", () => {
  const r = decodeLbService({
    metadata: { namespace: "n", name: "s" },
    spec: {
      type: "LoadBalancer",
      externalIPs: ["10.0.0.1", "127.0.0.1", "010.0.0.2", "192.0.2.1"],
    },
  });
  assert.deepEqual(externalIpRefusals(r).map((x) => [x.ip, x.reason]), [
    ["127.0.0.1", "loopback"],
    ["010.0.0.2", "non_canonical"],
  ]);
  const nets = [parseCidr("10.0.0.0/24")];
  // With networks, exactly what an agent with that --network decides.
  assert.deepEqual(externalIpRefusals(r, nets), evaluateService(r, nets).rejections);
  assert.deepEqual(externalIpRefusals(r, nets).map((x) => x.reason), [
    "loopback",
    "non_canonical",
    "outside_networks",
  ]);
  const headless = decodeLbService({
    metadata: { namespace: "n", name: "h" },
    spec: { clusterIP: "None", externalIPs: ["10.0.0.1"] },
  });
  assert.equal(externalIpRefusals(headless)[0].reason, "headless");
});

Deno.test("loadBalancerStatus writes one VIP ingress per address; statusShows tells when no write is needed", () => {
  assert.deepEqual(loadBalancerStatus(["10.0.2.1", "2001:db8::1"]), {
    loadBalancer: {
      ingress: [{ ip: "10.0.2.1", ipMode: "VIP" }, { ip: "2001:db8::1", ipMode: "VIP" }],
    },
  });
  assert.deepEqual(loadBalancerStatus([]), { loadBalancer: { ingress: [] } });
  const r = decodeLbService(SERVICE);
  assert.equal(statusShows(r, ["10.0.2.1"]), true);
  assert.equal(statusShows(r, ["10.0.2.2"]), false);
  assert.equal(statusShows(r, ["10.0.2.1", "2001:db8::1"]), false);
  assert.equal(statusShows(r, []), false);
});
