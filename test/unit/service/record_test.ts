import assert from "node:assert/strict";
import { decodeService } from "../../../lib/service/record.ts";
import { ShapeError } from "../../../lib/base/shape.ts";

Deno.test("decodeService keeps addresses, class, traffic policy and the proxy label, nothing else", () => {
  const r = decodeService({
    metadata: {
      namespace: "web",
      name: "front",
      labels: { "service.kubernetes.io/service-proxy-name": "cilium" },
      annotations: { big: "x".repeat(10_000) },
    },
    spec: {
      type: "LoadBalancer",
      clusterIP: "10.96.0.9",
      loadBalancerClass: "kube-gw.io/anycast",
      externalTrafficPolicy: "Local",
      externalIPs: ["10.0.100.30", 7],
    },
    status: {
      loadBalancer: {
        ingress: [{ ip: "10.0.100.40", ipMode: "VIP" }, { hostname: "lb.example" }, { ip: "" }, {
          ip: 5,
        }],
      },
    },
  });
  assert.deepEqual(r, {
    namespace: "web",
    name: "front",
    type: "LoadBalancer",
    clusterIP: "10.96.0.9",
    externalIPs: ["10.0.100.30", "7"],
    ingressIPs: ["10.0.100.40", "5"],
    loadBalancerClass: "kube-gw.io/anycast",
    trafficPolicy: "Local",
    proxySkipped: true,
  });
});

Deno.test("decodeService reads odd policy fields as kube-proxy does, and bounds the class", () => {
  const r = decodeService({
    metadata: { namespace: "a", name: "b", labels: "nope" },
    spec: { externalTrafficPolicy: "local", loadBalancerClass: `x/${"y".repeat(1000)}` },
    status: { loadBalancer: { ingress: "nope" } },
  });
  assert.equal(r.trafficPolicy, "Cluster");
  assert.equal(r.proxySkipped, false);
  assert.deepEqual(r.ingressIPs, []);
  assert.equal(r.loadBalancerClass?.length, 317);
  assert.throws(() => decodeService({ metadata: {} }), ShapeError);
});

Deno.test("a name or namespace longer than the API server accepts is refused, so every name kept is bounded", () => {
  const long = "a".repeat(100_000);
  for (const metadata of [{ namespace: "default", name: long }, { namespace: long, name: "x" }]) {
    assert.throws(() => decodeService({ metadata, spec: {} }), (err: Error) => {
      assert.ok(err instanceof ShapeError);
      assert.match(
        err.message,
        /^Cannot read Service: metadata.name or metadata.namespace is too long/,
      );
      assert.ok(err.message.length < 200, `${err.message.length} characters`);
      return true;
    });
  }
  // The longest the API accepts still reads.
  const name = "a".repeat(253);
  assert.equal(decodeService({ metadata: { namespace: "n".repeat(63), name } }).name, name);
});
