import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeEndpointSlice,
  type EndpointSliceRecord,
  SERVICE_NAME_LABEL,
} from "../../../lib/agent/endpoint_slice.ts";
import { type EndpointCounts, EndpointIndex } from "../../../lib/agent/endpoints.ts";

const NODE = "gw1";

interface Ep {
  address: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
  node?: string;
}

function slice(
  name: string,
  service: string | undefined,
  endpoints: Ep[],
  addressType = "IPv4",
  namespace = "default",
): EndpointSliceRecord {
  return decodeEndpointSlice({
    metadata: {
      namespace,
      name,
      labels: service === undefined ? {} : { [SERVICE_NAME_LABEL]: service },
    },
    addressType,
    ports: [{ port: 80, protocol: "TCP" }],
    endpoints: endpoints.map((e) => ({
      addresses: [e.address],
      conditions: { ready: e.ready, serving: e.serving, terminating: e.terminating },
      nodeName: e.node,
    })),
  });
}

Deno.test("the same address in two slices of a Service is one endpoint", () => {
  const idx = new EndpointIndex(NODE);
  idx.upsert(slice("web-1", "web", [{ address: "10.244.1.5" }, { address: "10.244.1.6" }]));
  idx.upsert(slice("web-2", "web", [{ address: "10.244.1.5" }]));
  assert.deepEqual(idx.counts("default/web", 4), { cluster: 2, local: 0 });
  idx.delete({ namespace: "default", name: "web-1" });
  assert.deepEqual(idx.counts("default/web", 4), { cluster: 1, local: 0 });
});

Deno.test("with no ready endpoint anywhere, serving and terminating endpoints count (Cluster)", () => {
  const idx = new EndpointIndex(NODE);
  idx.upsert(slice("web-1", "web", [
    { address: "10.244.1.5", ready: false, serving: true, terminating: true },
    { address: "10.244.1.6", ready: false, serving: false, terminating: true },
    { address: "10.244.1.7", ready: false },
  ]));
  assert.deepEqual(idx.counts("default/web", 4), { cluster: 1, local: 0 });
  idx.upsert(slice("web-2", "web", [{ address: "10.244.2.5" }, { address: "10.244.2.6" }]));
  // Ready endpoints exist: only they count.
  assert.deepEqual(idx.counts("default/web", 4), { cluster: 2, local: 0 });
});

Deno.test("Local counts endpoints on this node, falling back to serving and terminating ones on it", () => {
  const idx = new EndpointIndex(NODE);
  idx.upsert(slice("web-1", "web", [
    { address: "10.244.1.5", node: "gw2" },
    { address: "10.244.1.6", ready: false, serving: true, terminating: true, node: NODE },
  ]));
  // A ready endpoint elsewhere; on this node only a terminating one, which kube-proxy uses.
  assert.deepEqual(idx.counts("default/web", 4), { cluster: 1, local: 1 });
  idx.upsert(slice("web-1", "web", [{ address: "10.244.1.5", node: "gw2" }]));
  assert.deepEqual(idx.counts("default/web", 4), { cluster: 1, local: 0 });
});

Deno.test("without a node name no endpoint is local", () => {
  const idx = new EndpointIndex();
  idx.upsert(slice("web-1", "web", [{ address: "10.244.1.5", node: NODE }]));
  assert.deepEqual(idx.counts("default/web", 4), { cluster: 1, local: 0 });
});

Deno.test("FQDN slices are ignored and each family counts only its own slices", () => {
  const idx = new EndpointIndex(NODE);
  const changed = idx.upsert(slice("web-f", "web", [{ address: "example.com" }], "FQDN"));
  assert.deepEqual(changed, []);
  assert.equal(idx.sliceCount, 0);
  idx.upsert(slice("web-6", "web", [{ address: "fd00::5" }], "IPv6"));
  assert.deepEqual(idx.counts("default/web", 4), { cluster: 0, local: 0 });
  assert.deepEqual(idx.counts("default/web", 6), { cluster: 1, local: 0 });
});

Deno.test("a slice whose Service label is removed stops counting for that Service", () => {
  const idx = new EndpointIndex(NODE);
  idx.upsert(slice("web-1", "web", [{ address: "10.244.1.5" }]));
  assert.deepEqual(idx.upsert(slice("web-1", undefined, [{ address: "10.244.1.5" }])), [
    "default/web",
  ]);
  assert.deepEqual(idx.counts("default/web", 4), { cluster: 0, local: 0 });
});

Deno.test("updates that keep a Service on the same side of zero report no change", () => {
  const idx = new EndpointIndex(NODE);
  assert.deepEqual(idx.upsert(slice("web-1", "web", [{ address: "10.244.1.5" }])), [
    "default/web",
  ]);
  // A pod restarts behind a Service that keeps another ready endpoint.
  assert.deepEqual(
    idx.upsert(slice("web-1", "web", [{ address: "10.244.1.5" }, { address: "10.244.1.6" }])),
    [],
  );
  assert.deepEqual(idx.upsert(slice("web-1", "web", [{ address: "10.244.1.6" }])), []);
  // Re-sending the same slice never drops the count through zero.
  assert.deepEqual(idx.upsert(slice("web-1", "web", [{ address: "10.244.1.6" }])), []);
  assert.deepEqual(idx.upsert(slice("web-1", "web", [{ address: "10.244.1.6", node: NODE }])), [
    "default/web",
  ]);
});

Deno.test("replace in one namespace drops that namespace's unlisted slices only", () => {
  const idx = new EndpointIndex(NODE);
  idx.upsert(slice("a-1", "a", [{ address: "10.244.1.5" }], "IPv4", "ns1"));
  idx.upsert(slice("b-1", "b", [{ address: "10.244.1.6" }], "IPv4", "ns2"));
  const changed = idx.replace([], "ns1");
  assert.deepEqual(changed, ["ns1/a"]);
  assert.equal(idx.counts("ns2/b", 4).cluster, 1);
});

// --- Properties: the incremental index equals kube-proxy's rules computed from scratch. ---

const ADDRS = ["10.244.0.1", "10.244.0.2", "10.244.0.3", "fd00::1"];
const arbEp: fc.Arbitrary<Ep> = fc.record({
  address: fc.constantFrom(...ADDRS),
  ready: fc.option(fc.boolean(), { nil: undefined }),
  serving: fc.option(fc.boolean(), { nil: undefined }),
  terminating: fc.option(fc.boolean(), { nil: undefined }),
  node: fc.option(fc.constantFrom(NODE, "gw2"), { nil: undefined }),
});
const arbSlice = fc.record({
  name: fc.constantFrom("s1", "s2", "s3", "s4"),
  namespace: fc.constantFrom("ns1", "ns2"),
  service: fc.option(fc.constantFrom("x", "y"), { nil: undefined }),
  addressType: fc.constantFrom("IPv4", "IPv6", "FQDN"),
  endpoints: fc.array(arbEp, { maxLength: 5 }),
}).map((s) => slice(s.name, s.service, s.endpoints, s.addressType, s.namespace));

type Op =
  | { op: "upsert"; slice: EndpointSliceRecord }
  | { op: "delete"; slice: EndpointSliceRecord }
  | { op: "replace"; slices: EndpointSliceRecord[]; namespace?: string };
const arbOp: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: arbSlice.map((slice) => ({ op: "upsert" as const, slice })) },
  { weight: 2, arbitrary: arbSlice.map((slice) => ({ op: "delete" as const, slice })) },
  {
    weight: 1,
    arbitrary: fc.record({
      slices: fc.array(arbSlice, { maxLength: 4 }),
      namespace: fc.option(fc.constantFrom("ns1", "ns2"), { nil: undefined }),
    }).map((r) => ({ op: "replace" as const, ...r })),
  },
);

/** kube-proxy's rules over the live slices, from scratch. */
function reference(
  live: ReadonlyMap<string, EndpointSliceRecord>,
  service: string,
  family: 4 | 6,
): EndpointCounts {
  const ready = new Set<string>();
  const fallback = new Set<string>();
  const readyLocal = new Set<string>();
  const fallbackLocal = new Set<string>();
  for (const s of live.values()) {
    if (s.service === undefined || `${s.namespace}/${s.service}` !== service) continue;
    if (s.family !== family) continue;
    for (const e of s.endpoints) {
      const local = e.nodeName === NODE;
      if (e.ready) {
        ready.add(e.address);
        if (local) readyLocal.add(e.address);
      } else if (e.serving && e.terminating) {
        fallback.add(e.address);
        if (local) fallbackLocal.add(e.address);
      }
    }
  }
  return {
    cluster: ready.size > 0 ? ready.size : fallback.size,
    local: readyLocal.size > 0 ? readyLocal.size : fallbackLocal.size,
  };
}

const SERVICES = ["ns1/x", "ns1/y", "ns2/x", "ns2/y"];
const verdict = (c: EndpointCounts) => `${c.cluster > 0}${c.local > 0}`;

Deno.test("after any sequence of slice events, counts follow kube-proxy's rules and exactly the Services whose verdict changed are reported", () => {
  fc.assert(fc.property(fc.array(arbOp, { maxLength: 30 }), (ops) => {
    const idx = new EndpointIndex(NODE);
    const live = new Map<string, EndpointSliceRecord>();
    for (const op of ops) {
      const before = new Map(
        SERVICES.flatMap((s) =>
          [4, 6].map((f) => [`${s} ${f}`, verdict(idx.counts(s, f as 4 | 6))])
        ),
      );
      let changed: string[];
      if (op.op === "upsert") {
        changed = idx.upsert(op.slice);
        live.set(`${op.slice.namespace}/${op.slice.name}`, op.slice);
      } else if (op.op === "delete") {
        changed = idx.delete(op.slice);
        live.delete(`${op.slice.namespace}/${op.slice.name}`);
      } else {
        changed = idx.replace(op.slices, op.namespace);
        for (const k of [...live.keys()]) {
          if (op.namespace === undefined || k.startsWith(`${op.namespace}/`)) live.delete(k);
        }
        for (const s of op.slices) live.set(`${s.namespace}/${s.name}`, s);
      }
      const expected = new Set<string>();
      for (const s of SERVICES) {
        for (const f of [4, 6] as const) {
          const want = reference(live, s, f);
          assert.deepEqual(idx.counts(s, f), want, `${s} IPv${f} after ${op.op}`);
          if (verdict(want) !== before.get(`${s} ${f}`)) expected.add(s);
        }
      }
      assert.deepEqual(new Set(changed), expected);
      assert.equal(changed.length, new Set(changed).size);
    }
  }));
});

Deno.test("an upsert or delete costs in proportion to the slice it changes, not to the index", () => {
  fc.assert(fc.property(
    fc.integer({ min: 0, max: 300 }),
    fc.array(arbEp, { maxLength: 8 }),
    fc.array(arbEp, { maxLength: 8 }),
    (others, first, second) => {
      const idx = new EndpointIndex(NODE);
      for (let i = 0; i < others; i++) {
        idx.upsert(slice(`other-${i}`, `svc-${i}`, [{ address: "10.244.9.1" }, {
          address: "10.244.9.2",
        }]));
      }
      const a = slice("web-1", "web", first);
      const b = slice("web-1", "web", second);
      const counted = (s: EndpointSliceRecord) =>
        s.endpoints.filter((e) => e.ready || (e.serving && e.terminating)).length;
      let w = idx.work;
      idx.upsert(a);
      assert.equal(idx.work - w, counted(a));
      w = idx.work;
      idx.upsert(b);
      assert.equal(idx.work - w, counted(a) + counted(b));
      w = idx.work;
      idx.delete(b);
      assert.equal(idx.work - w, counted(b));
    },
  ));
});
