import assert from "node:assert/strict";
import { parseCidr } from "../../../lib/base/cidr.ts";
import { Allocator } from "../../../lib/controller/allocator.ts";
import {
  decodeLbService,
  type LbServiceRecord,
  MAX_SHARING_KEY,
} from "../../../lib/controller/lb_service.ts";

const POOL = { name: "p", cidrs: [parseCidr("10.0.5.0/24")], autoAssign: true };

function svc(
  name: string,
  o: { ports?: number[]; key?: string; ips?: string; ingress?: string[]; created?: string } = {},
): LbServiceRecord {
  return decodeLbService({
    metadata: {
      namespace: "web",
      name,
      uid: `uid-${name}`,
      resourceVersion: "1",
      creationTimestamp: o.created,
      annotations: {
        ...(o.key !== undefined ? { "kube-gw.io/allow-shared-ip": o.key } : {}),
        ...(o.ips ? { "kube-gw.io/load-balancer-ips": o.ips } : {}),
      },
    },
    spec: {
      type: "LoadBalancer",
      ports: (o.ports ?? [80]).map((port) => ({ port, protocol: "TCP" })),
    },
    status: { loadBalancer: { ingress: (o.ingress ?? []).map((ip) => ({ ip })) } },
  });
}

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

Deno.test("sharing compares every port: port 1099 does not share with a Service holding 1000-1099", () => {
  const a = new Allocator([POOL]);
  const wide = a.allocate(svc("wide", { ports: range(1000, 1099), key: "k" }));
  assert.ok(wide.ok);
  const address = wide.addresses[0];
  assert.equal(svc("wide", { ports: range(1000, 1099) }).ports.length, 100);
  const clash = a.allocate(svc("last", { ports: [1099], key: "k", ips: address }));
  assert.equal(clash.ok, false);
  if (!clash.ok) assert.equal(clash.failure.reason, "taken");
  const beside = a.allocate(svc("next", { ports: [1100], key: "k", ips: address }));
  assert.ok(beside.ok && beside.addresses[0] === address, "a port outside the range shares");
  // The same at a rebuild from status: the later claim of an overlapping port is a conflict.
  const b = new Allocator([POOL]);
  const report = b.rebuild([
    svc("wide", {
      ports: range(1000, 1099),
      key: "k",
      ingress: [address],
      created: "2024-01-01T00:00:00Z",
    }),
    svc("last", { ports: [1099], key: "k", ingress: [address], created: "2024-01-02T00:00:00Z" }),
  ]);
  assert.deepEqual(report.conflicts.map((c) => c.key), ["web/last"]);
});

Deno.test("sharing keys are compared whole: a key longer than 253 characters is refused, never cut", () => {
  const long = (end: string) => `${"k".repeat(290)}${end}`;
  const a = new Allocator([POOL]);
  const first = a.allocate(svc("one", { key: long("1") }));
  assert.equal(first.ok, false);
  if (!first.ok) {
    assert.equal(first.failure.reason, "bad_annotation");
    assert.match(
      first.failure.message,
      /^Service web\/one: kube-gw\.io\/allow-shared-ip: "k{64}…" is longer than 253 characters$/,
    );
  }
  // At the bound it works, and two keys that differ only in their last character do not share.
  const ok = a.allocate(svc("bound", { key: "b".repeat(MAX_SHARING_KEY - 1) + "1" }));
  assert.ok(ok.ok);
  const other = a.allocate(
    svc("other", { key: "b".repeat(MAX_SHARING_KEY - 1) + "2", ports: [81], ips: ok.addresses[0] }),
  );
  assert.equal(other.ok, false);
  if (!other.ok) assert.equal(other.failure.reason, "taken");
  // Two Services whose long keys agree on their first 256 characters never share at a rebuild.
  const b = new Allocator([POOL]);
  const report = b.rebuild([
    svc("x", { key: long("1"), ingress: ["10.0.5.9"] }),
    svc("y", { key: long("2"), ports: [81], ingress: ["10.0.5.9"] }),
  ]);
  assert.deepEqual(report.conflicts.map((c) => c.key), ["web/y"]);
});
