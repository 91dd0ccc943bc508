import assert from "node:assert/strict";
import {
  decodeEndpointSlice,
  MAX_ENDPOINTS_PER_SLICE,
  SERVICE_NAME_LABEL,
} from "../../../lib/agent/endpoint_slice.ts";
import { ShapeError } from "../../../lib/base/shape.ts";

function slice(more: Record<string, unknown> = {}, labels: Record<string, unknown> = {
  [SERVICE_NAME_LABEL]: "web",
}): Record<string, unknown> {
  return {
    metadata: { namespace: "default", name: "web-abc12", labels },
    addressType: "IPv4",
    ports: [{ name: "http", port: 8080, protocol: "TCP" }],
    endpoints: [],
    ...more,
  };
}

Deno.test("an EndpointSlice keeps its Service, family and each endpoint's first address, conditions and node", () => {
  const r = decodeEndpointSlice(slice({
    endpoints: [
      { addresses: ["10.244.1.5", "10.244.1.6"], conditions: { ready: true }, nodeName: "gw1" },
      { addresses: ["10.244.2.5"], conditions: { ready: false, serving: true, terminating: true } },
    ],
  }));
  assert.deepEqual(r, {
    namespace: "default",
    name: "web-abc12",
    service: "web",
    family: 4,
    endpoints: [
      { address: "10.244.1.5", ready: true, serving: true, terminating: false, nodeName: "gw1" },
      { address: "10.244.2.5", ready: false, serving: true, terminating: true },
    ],
  });
});

Deno.test("unset conditions read as kube-proxy reads them: ready and serving, not terminating", () => {
  const r = decodeEndpointSlice(slice({ endpoints: [{ addresses: ["10.244.1.5"] }] }));
  assert.deepEqual(r.endpoints, [
    { address: "10.244.1.5", ready: true, serving: true, terminating: false },
  ]);
  const odd = decodeEndpointSlice(slice({
    endpoints: [{ addresses: ["10.244.1.5"], conditions: { ready: "false", terminating: 1 } }],
  }));
  assert.deepEqual(odd.endpoints[0], {
    address: "10.244.1.5",
    ready: true,
    serving: true,
    terminating: false,
  });
});

Deno.test("FQDN slices, slices without a Service label and slices without a port count nothing", () => {
  const endpoints = [{ addresses: ["10.244.1.5"] }];
  const fqdn = decodeEndpointSlice(slice({ addressType: "FQDN", endpoints }));
  assert.equal(fqdn.family, "ignored");
  assert.deepEqual(fqdn.endpoints, []);
  const orphan = decodeEndpointSlice(slice({ endpoints }, {}));
  assert.equal(orphan.service, undefined);
  assert.deepEqual(orphan.endpoints, []);
  const portless = decodeEndpointSlice(slice({ endpoints, ports: [] }));
  assert.deepEqual(portless.endpoints, []);
  const v6 = decodeEndpointSlice(slice({ addressType: "IPv6", endpoints }));
  assert.equal(v6.family, 6);
});

Deno.test("hostile endpoints are skipped and a slice keeps at most the API's 1000 endpoints", () => {
  const r = decodeEndpointSlice(slice({
    endpoints: [
      null,
      "10.244.1.5",
      { addresses: [] },
      { addresses: [42] },
      { addresses: ["x".repeat(1000)] },
      { addresses: ["10.244.1.7"], nodeName: "n".repeat(300), conditions: [] },
    ],
  }));
  assert.deepEqual(r.endpoints, [
    { address: "10.244.1.7", ready: true, serving: true, terminating: false },
  ]);
  const many = Array.from(
    { length: 5000 },
    (_, i) => ({ addresses: [`10.1.${i >> 8}.${i & 255}`] }),
  );
  assert.equal(
    decodeEndpointSlice(slice({ endpoints: many })).endpoints.length,
    MAX_ENDPOINTS_PER_SLICE,
  );
  assert.equal(decodeEndpointSlice(slice({ endpoints: "lots" })).endpoints.length, 0);
});

Deno.test("an EndpointSlice without a name or namespace is a ShapeError", () => {
  assert.throws(() => decodeEndpointSlice({ metadata: { name: "x" } }), ShapeError);
  assert.throws(() => decodeEndpointSlice("slice"), ShapeError);
});

Deno.test("an endpoint whose address is not an IP of its slice's family counts for nothing", () => {
  const r = decodeEndpointSlice(slice({
    endpoints: [
      { addresses: ["10.244.1.5"] },
      { addresses: ["fd00::5"] },
      { addresses: ["pod.example"] },
      { addresses: ["10.244.1.999"] },
    ],
  }));
  assert.deepEqual(r.endpoints.map((e) => e.address), ["10.244.1.5"]);
  const v6 = decodeEndpointSlice(slice({
    addressType: "IPv6",
    endpoints: [{ addresses: ["10.244.1.5"] }, { addresses: ["fd00::5"] }],
  }));
  assert.deepEqual(v6.endpoints.map((e) => e.address), ["fd00::5"]);
});
