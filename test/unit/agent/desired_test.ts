import assert from "node:assert/strict";
import { parseCidr } from "../../../lib/base/cidr.ts";
import { DesiredState } from "../../../lib/agent/desired.ts";
import {
  decodeService,
  MAX_EXTERNAL_IPS,
  type ServiceRecord,
} from "../../../lib/service/record.ts";
import { evaluateService } from "../../../lib/service/eligibility.ts";

const NETS = [parseCidr("10.0.100.0/24"), parseCidr("2001:db8:100::/64")];

function svc(
  name: string,
  externalIPs: string[],
  more: Partial<ServiceRecord> = {},
): ServiceRecord {
  return {
    namespace: "default",
    name,
    type: "ClusterIP",
    clusterIP: "10.96.0.10",
    externalIPs,
    ...more,
  };
}

Deno.test("evaluateService takes canonical addresses inside the managed networks", () => {
  const v = evaluateService(svc("nginx", ["10.0.100.30", "2001:db8:100::30"]), NETS);
  assert.deepEqual(v.addresses, ["10.0.100.30", "2001:db8:100::30"]);
  assert.deepEqual(v.rejections, []);
});

Deno.test("evaluateService refuses hostile and out-of-range external IPs with a reason each", () => {
  const v = evaluateService(
    svc("evil", [
      "10.0.100.40; touch /tmp/x",
      "-batch",
      "010.0.100.41",
      "10.9.9.9",
      "127.0.0.1",
      "224.0.0.1",
      "169.254.0.1",
      "::ffff:10.0.100.42",
      "10.0.100.43/32",
      "10.0.100.44",
    ]),
    NETS,
  );
  assert.deepEqual(v.addresses, ["10.0.100.44"]);
  assert.deepEqual(v.rejections.map((r) => [r.ip, r.reason]), [
    ["10.0.100.40; touch /tmp/x", "invalid"],
    ["-batch", "invalid"],
    ["010.0.100.41", "non_canonical"],
    ["10.9.9.9", "outside_networks"],
    ["127.0.0.1", "loopback"],
    ["224.0.0.1", "multicast"],
    ["169.254.0.1", "link_local"],
    ["::ffff:10.0.100.42", "ipv4_mapped"],
    ["10.0.100.43/32", "non_canonical"],
  ]);
  assert.match(v.rejections[2].message, /Service default\/evil.*did you mean "10.0.100.41"/);
});

Deno.test("evaluateService serves ClusterIP, NodePort and LoadBalancer only, never headless", () => {
  for (const type of ["ClusterIP", "NodePort", "LoadBalancer"]) {
    assert.deepEqual(evaluateService(svc("s", ["10.0.100.30"], { type }), NETS).addresses, [
      "10.0.100.30",
    ]);
  }
  const ext = evaluateService(
    svc("s", ["10.0.100.30"], { type: "ExternalName", clusterIP: "" }),
    NETS,
  );
  assert.deepEqual(ext.addresses, []);
  assert.equal(ext.rejections[0].reason, "external_name");
  const headless = evaluateService(svc("s", ["10.0.100.30"], { clusterIP: "None" }), NETS);
  assert.deepEqual(headless.addresses, []);
  assert.equal(headless.rejections[0].reason, "headless");
});

Deno.test("evaluateService lists a repeated address once", () => {
  assert.deepEqual(evaluateService(svc("s", ["10.0.100.30", "10.0.100.30"]), NETS).addresses, [
    "10.0.100.30",
  ]);
});

Deno.test("DesiredState keeps an address claimed by two Services until both let go", () => {
  const d = new DesiredState(NETS);
  assert.deepEqual(d.upsert(svc("a", ["10.0.100.30"])).touched, ["10.0.100.30"]);
  assert.deepEqual(d.upsert(svc("b", ["10.0.100.30", "10.0.100.31"])).touched, ["10.0.100.31"]);
  assert.deepEqual([...d.addresses.keys()].sort(), ["10.0.100.30", "10.0.100.31"]);
  assert.deepEqual(d.delete("default", "a").touched, []);
  assert.deepEqual([...d.addresses.keys()].sort(), ["10.0.100.30", "10.0.100.31"]);
  assert.deepEqual(d.delete("default", "b").touched.toSorted(), ["10.0.100.30", "10.0.100.31"]);
  assert.equal(d.addresses.size, 0);
  assert.deepEqual(d.claimants("10.0.100.30"), []);
});

Deno.test("DesiredState follows a Service that changes its addresses", () => {
  const d = new DesiredState(NETS);
  d.upsert(svc("a", ["10.0.100.30"]));
  assert.deepEqual(d.upsert(svc("a", ["10.0.100.32"])).touched.toSorted(), [
    "10.0.100.30",
    "10.0.100.32",
  ]);
  assert.deepEqual([...d.addresses.keys()], ["10.0.100.32"]);
  assert.deepEqual(d.claimants("10.0.100.32"), ["default/a"]);
});

Deno.test("DesiredState reports each refused (Service, IP) once while it persists", () => {
  const d = new DesiredState(NETS);
  assert.equal(d.upsert(svc("a", ["10.9.9.9"])).newRejections.length, 1);
  assert.equal(d.upsert(svc("a", ["10.9.9.9"])).newRejections.length, 0);
  assert.equal(d.upsert(svc("a", ["10.9.9.9", "10.0.100.30"])).newRejections.length, 0);
  // Another Service with the same bad address is reported on its own.
  assert.equal(d.upsert(svc("b", ["10.9.9.9"])).newRejections.length, 1);
  // Once fixed and broken again, it is news again.
  d.upsert(svc("a", []));
  assert.equal(d.upsert(svc("a", ["10.9.9.9"])).newRejections.length, 1);
  // A full relist does not repeat what is already known.
  assert.equal(
    d.replace([svc("a", ["10.9.9.9"]), svc("b", ["10.9.9.9"])], undefined).newRejections.length,
    0,
  );
});

Deno.test("DesiredState.replace drops Services missing from a complete list, within its namespace only", () => {
  const d = new DesiredState(NETS);
  d.upsert(svc("a", ["10.0.100.30"]));
  d.upsert({ ...svc("b", ["10.0.100.31"]), namespace: "other" });
  const change = d.replace([svc("c", ["10.0.100.32"])], "default");
  assert.deepEqual(change.touched.toSorted(), ["10.0.100.30", "10.0.100.32"]);
  assert.deepEqual([...d.addresses.keys()].sort(), ["10.0.100.31", "10.0.100.32"]);
  d.replace([], undefined);
  assert.equal(d.addresses.size, 0);
  assert.deepEqual(d.claimants("10.0.100.31"), []);
});

Deno.test("DesiredState.replace with the same Services touches nothing (no flap on relist)", () => {
  const d = new DesiredState(NETS);
  const all = [svc("a", ["10.0.100.30"]), svc("b", ["10.0.100.31"])];
  d.replace(all, undefined);
  assert.deepEqual(d.replace(all, undefined).touched, []);
});

Deno.test("a refused value is stored and reported bounded to 256 characters, with its length", () => {
  const huge = `10.0.100.1${"0".repeat(100_000)}`;
  const state = new DesiredState(NETS);
  const change = state.upsert(svc("big", [huge, "10.0.100.7"]));
  assert.equal(change.newRejections.length, 1);
  const r = change.newRejections[0];
  assert.equal(r.ip, `${huge.slice(0, 256)}…(100010 chars)`);
  assert.ok(r.message.length < 500, `${r.message.length} characters`);
  // Still reported once while it persists.
  assert.equal(state.upsert(svc("big", [huge, "10.0.100.7"])).newRejections.length, 0);
});

Deno.test("editing one IP of a Service with the most externalIPs taken touches just the two addresses", () => {
  const nets = [parseCidr("10.64.0.0/16")];
  const ips = Array.from({ length: MAX_EXTERNAL_IPS }, (_, i) => `10.64.${i >> 8}.${i & 255}`);
  const state = new DesiredState(nets);
  assert.equal(state.upsert(svc("wide", ips)).touched.length, MAX_EXTERNAL_IPS);
  const edited = [...ips];
  edited[500] = "10.64.200.1";
  assert.deepEqual([...state.upsert(svc("wide", edited)).touched].sort(), [
    "10.64.1.244",
    "10.64.200.1",
  ]);
  assert.equal(state.addresses.size, MAX_EXTERNAL_IPS);
  assert.deepEqual(state.claimants("10.64.200.1"), ["default/wide"]);
  assert.deepEqual(state.claimants(ips[500]), []);
});

Deno.test("a Service with more than 1,000 externalIPs is refused whole, with one warning; its addresses go", () => {
  assert.equal(MAX_EXTERNAL_IPS, 1000, "the documented bound");
  const nets = [parseCidr("10.64.0.0/16")];
  const ips = Array.from({ length: 10_000 }, (_, i) => `10.64.${i >> 8}.${i & 255}`);
  const state = new DesiredState(nets);
  assert.equal(state.upsert(svc("wide", ips.slice(0, 2))).touched.length, 2);
  // What the decoder hands over: at most one more than the bound.
  const record = decodeService({
    metadata: { namespace: "default", name: "wide" },
    spec: { externalIPs: ips },
  });
  assert.equal(record.externalIPs.length, MAX_EXTERNAL_IPS + 1);
  const change = state.upsert(record);
  assert.deepEqual(change.newRejections.map((r) => [r.reason, r.message]), [[
    "too_many",
    'refusing externalIP "(more than 1000 values)" of Service default/wide: it belongs to a Service with more than 1000 externalIPs, which kube-gw refuses whole',
  ]]);
  assert.deepEqual([...change.touched].sort(), ["10.64.0.0", "10.64.0.1"]);
  assert.equal(state.addresses.size, 0);
  // Still one warning while it persists; back under the bound, it is taken again.
  assert.equal(state.upsert(record).newRejections.length, 0);
  assert.equal(state.upsert(svc("wide", ips.slice(0, 1000))).touched.length, 1000);
});

Deno.test("a too_many refusal of LoadBalancer addresses names LoadBalancer addresses, not externalIPs", () => {
  const ingress = Array.from({ length: 1001 }, (_, i) => `10.64.${i >> 8}.${i & 255}`);
  const verdict = evaluateService(
    {
      namespace: "default",
      name: "wide",
      type: "LoadBalancer",
      clusterIP: "10.96.0.1",
      externalIPs: [],
      ingressIPs: ingress,
      loadBalancerClass: "kube-gw.io/anycast",
    },
    [parseCidr("10.64.0.0/16")],
    { classes: { class: "kube-gw.io/anycast", defaultClass: false } },
  );
  assert.deepEqual(verdict.rejections.map((r) => r.message), [
    'refusing LoadBalancer address "(more than 1000 values)" of Service default/wide: it belongs to a Service with more than 1000 LoadBalancer addresses, which kube-gw refuses whole',
  ]);
});

Deno.test("LoadBalancer status addresses count only for Services of kube-gw's class, inside the networks", () => {
  const classes = { class: "kube-gw.io/anycast", defaultClass: false };
  const lb = (more: Partial<ServiceRecord>) =>
    svc("lb", [], { type: "LoadBalancer", ingressIPs: ["10.0.100.40", "10.9.9.9"], ...more });
  const ours = evaluateService(lb({ loadBalancerClass: "kube-gw.io/anycast" }), NETS, { classes });
  assert.deepEqual(ours.addresses, ["10.0.100.40"]);
  assert.deepEqual(ours.rejections.map((r) => [r.source, r.reason]), [
    ["loadBalancer", "outside_networks"],
  ]);
  assert.equal(
    ours.rejections[0].message,
    'refusing LoadBalancer address "10.9.9.9" of Service default/lb: it is outside the managed networks',
  );
  assert.deepEqual(evaluateService(lb({ loadBalancerClass: "other/x" }), NETS, { classes }), {
    addresses: [],
    rejections: [],
  });
  assert.deepEqual(evaluateService(lb({}), NETS, { classes }).addresses, []);
  assert.deepEqual(
    evaluateService(lb({}), NETS, { classes: { ...classes, defaultClass: true } }).addresses,
    ["10.0.100.40"],
  );
  // A status on a Service that is not a LoadBalancer is not read.
  assert.deepEqual(
    evaluateService(lb({ type: "ClusterIP", loadBalancerClass: "kube-gw.io/anycast" }), NETS, {
      classes,
    }).addresses,
    [],
  );
  // Without class options (the controller's view) only externalIPs count.
  assert.deepEqual(evaluateService(lb({ loadBalancerClass: "kube-gw.io/anycast" }), NETS), {
    addresses: [],
    rejections: [],
  });
});

Deno.test("--external-ips=false ignores spec.externalIPs entirely, refusals included", () => {
  const d = new DesiredState(NETS, { externalIPs: false });
  const change = d.upsert(svc("a", ["10.0.100.30", "10.9.9.9"]));
  assert.deepEqual(change, { newRejections: [], touched: [], addresses: [] });
  assert.equal(d.addresses.size, 0);
});

Deno.test("DesiredState knows each address's Services and sources, and a Service's addresses", () => {
  const classes = { class: "kube-gw.io/anycast", defaultClass: false };
  const d = new DesiredState(NETS, { classes });
  d.upsert(svc("a", ["10.0.100.30"], { trafficPolicy: "Local" }));
  const change = d.upsert(
    svc("b", ["10.0.100.30"], {
      type: "LoadBalancer",
      loadBalancerClass: "kube-gw.io/anycast",
      ingressIPs: ["10.0.100.30", "10.0.100.31"],
    }),
  );
  assert.deepEqual(change.touched, ["10.0.100.31"]);
  assert.deepEqual(change.addresses, ["10.0.100.30", "10.0.100.31"]);
  assert.deepEqual(d.sourcesOf("10.0.100.30"), ["externalIP", "loadBalancer"]);
  assert.deepEqual(d.sourcesOf("10.0.100.31"), ["loadBalancer"]);
  assert.deepEqual(d.claimantsOf("10.0.100.30"), [
    { service: "default/a", trafficPolicy: "Local", proxySkipped: false },
    { service: "default/b", trafficPolicy: "Cluster", proxySkipped: false },
  ]);
  assert.deepEqual([...d.addressesOf("default/b")], ["10.0.100.30", "10.0.100.31"]);
  // A policy change moves no address but names the Service's addresses for the gate.
  assert.deepEqual(d.upsert(svc("a", ["10.0.100.30"])), {
    newRejections: [],
    touched: [],
    addresses: ["10.0.100.30"],
  });
});
