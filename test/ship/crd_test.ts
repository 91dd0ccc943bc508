/**
 * The AddressPool CustomResourceDefinition (scripts/k8s/controller/
 * addresspools-crd.yaml) without a cluster: its schema documents every field
 * (for `kubectl explain`), its CEL rules type-check and are evaluated by a
 * CEL evaluator with Kubernetes' `cidr` and `ip` functions
 * (test/support/crd_schema.ts) on a table of pools the API server must
 * accept and refuse (with the message it gives), with the same verdicts as
 * the controller's own pools parser, and the printer columns of `kubectl get`.
 */
import assert from "node:assert/strict";
import yaml from "js-yaml";
import * as models from "@kubernetes/client-node/models";
import {
  celEvaluate,
  celRules,
  checkSchema,
  kubernetesCel,
  type Schema,
} from "../support/crd_schema.ts";
import { parsePoolsYaml, PoolConfigError } from "../../lib/controller/pools.ts";
import { ADDRESS_POOLS } from "../../lib/controller/address_pool.ts";

type Obj = Record<string, unknown>;
const FILE = new URL("../../scripts/k8s/controller/addresspools-crd.yaml", import.meta.url);
const crd = yaml.load(await Deno.readTextFile(FILE)) as Obj;
const spec = crd.spec as Obj;
const version = (spec.versions as Obj[])[0];
const schema = (version.schema as Obj).openAPIV3Schema as Schema;

const MODELS = models as unknown as Record<
  string,
  { attributeTypeMap?: { baseName: string }[] }
>;

/** Every node of a schema, with its path (items included, which the API types leave as any). */
function nodes(s: Schema, path: string): [string, Schema][] {
  return [
    [path, s],
    ...Object.entries(s.properties ?? {}).flatMap(([k, v]) => nodes(v, `${path}.${k}`)),
    ...(s.items ? nodes(s.items, `${path}[]`) : []),
  ];
}

Deno.test("the CRD: kube-gw.io/v1alpha1 AddressPool, cluster-scoped, the one served and stored version, with a status subresource", () => {
  assert.deepEqual(crd.apiVersion, "apiextensions.k8s.io/v1");
  assert.deepEqual((crd.metadata as Obj).name, `${ADDRESS_POOLS.resource}.${ADDRESS_POOLS.group}`);
  assert.deepEqual(spec.group, ADDRESS_POOLS.group);
  assert.deepEqual(spec.scope, "Cluster");
  assert.deepEqual((spec.names as Obj).kind, "AddressPool");
  assert.deepEqual((spec.names as Obj).plural, ADDRESS_POOLS.resource);
  assert.deepEqual((spec.versions as Obj[]).length, 1);
  assert.deepEqual(version.name, ADDRESS_POOLS.version);
  assert.deepEqual([version.served, version.storage], [true, true]);
  assert.deepEqual(version.subresources, { status: {} });
});

Deno.test("the CRD's schema: every node an OpenAPI schema the API knows, every field described for kubectl explain", () => {
  const known = new Set(MODELS.V1JSONSchemaProps.attributeTypeMap!.map((a) => a.baseName));
  for (const [path, node] of nodes(schema, "")) {
    for (const key of Object.keys(node)) assert(known.has(key), `${path}: unknown key ${key}`);
    if (path === ".metadata") continue; // The API server allows nothing but its type there.
    assert(node.type, `${path}: a type (a structural schema)`);
    assert(
      typeof (node as Obj).description === "string" &&
        ((node as Obj).description as string).length > 10,
      `${path || "<root>"}: described`,
    );
  }
});

Deno.test("every CEL rule of the CRD type-checks with Kubernetes' CEL functions", () => {
  const rules = celRules(schema);
  assert.deepEqual(rules.length, 7);
  const env = kubernetesCel();
  for (const rule of rules) {
    const checked = env.check(rule) as { valid: boolean; error?: Error };
    assert(checked.valid, `${rule}: ${checked.error?.message}`);
  }
});

Deno.test("Kubernetes' CEL cidr functions as registered: parse, mask, print, contain", () => {
  assert.equal(celEvaluate("string(cidr(self).masked())", "10.0.0.7/24"), "10.0.0.0/24");
  assert.equal(celEvaluate("string(cidr(self))", "2001:DB8:0::/48"), "2001:db8::/48");
  assert.equal(celEvaluate("cidr(self).prefixLength()", "10.0.0.0/24"), 24n);
  assert.equal(celEvaluate("cidr(self).ip().family()", "2001:db8::/48"), 6n);
  for (const [text, ok] of [["10.0.0.0/24", true], ["10.0.0.0", false], ["010.0.0.0/8", false]]) {
    assert.equal(celEvaluate("isCIDR(self)", text), ok, String(text));
  }
  assert.equal(celEvaluate("isCIDR(self)", "::ffff:10.0.0.0/104"), false, "no IPv4-mapped IPv6");
  assert.equal(celEvaluate("cidr('10.0.0.0/16').containsCIDR(cidr(self))", "10.0.1.0/24"), true);
  assert.equal(celEvaluate("cidr(self).containsCIDR(cidr('10.0.0.0/16'))", "10.0.1.0/24"), false);
  assert.equal(celEvaluate("cidr(self).containsCIDR(cidr('::/0'))", "0.0.0.0/0"), false);
  assert.throws(() => celEvaluate("cidr(self)", "nope"), /parse error/);
});

const pool = (name: string, s: Obj): Obj => ({
  apiVersion: "kube-gw.io/v1alpha1",
  kind: "AddressPool",
  metadata: { name },
  spec: s,
});
const many = (n: number) => Array.from({ length: n }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`);

/** Pools the API server must accept. */
const GOOD: readonly Obj[] = [
  pool("public", { cidrs: ["198.51.100.0/24", "2001:db8:100::/120"] }),
  pool("web", {
    cidrs: ["203.0.113.0/28"],
    namespaces: ["web", "shop"],
    autoAssign: false,
    allowReserved: true,
  }),
  pool("adjacent", { cidrs: ["10.1.0.0/24", "10.1.1.0/24", "10.0.0.0/16"] }),
  pool("wide", { cidrs: ["10.0.0.0/16", "2001:db8::/48"] }),
  pool("max", { cidrs: many(256) }),
];

/** Pools the API server must refuse, with every error it gives. */
const BAD: readonly [string, Obj, string[]][] = [
  ["host bits set", pool("a", { cidrs: ["198.51.100.7/24"] }), [
    'spec.cidrs[0]: Invalid value: "string": must be in canonical form: 198.51.100.0/24',
  ]],
  ["upper-case IPv6", pool("a", { cidrs: ["2001:DB8:100::/120"] }), [
    'spec.cidrs[0]: Invalid value: "string": must be in canonical form: 2001:db8:100::/120',
  ]],
  ["not a CIDR", pool("a", { cidrs: ["198.51.100.0"] }), [
    'spec.cidrs[0]: Invalid value: "string": must be a CIDR such as 198.51.100.0/24 or 2001:db8:100::/120',
  ]],
  ["prefix too long", pool("a", { cidrs: ["198.51.100.0/33"] }), [
    'spec.cidrs[0]: Invalid value: "string": must be a CIDR such as 198.51.100.0/24 or 2001:db8:100::/120',
  ]],
  ["IPv4 with leading zeros", pool("a", { cidrs: ["198.051.100.0/24"] }), [
    'spec.cidrs[0]: Invalid value: "string": must be a CIDR such as 198.51.100.0/24 or 2001:db8:100::/120',
  ]],
  ["IPv4-mapped IPv6", pool("a", { cidrs: ["::ffff:198.51.100.0/120"] }), [
    'spec.cidrs[0]: Invalid value: "string": must be a CIDR such as 198.51.100.0/24 or 2001:db8:100::/120',
  ]],
  ["too large", pool("a", { cidrs: ["10.0.0.0/8"] }), [
    'spec.cidrs[0]: Invalid value: "string": is too large: at most /16 for IPv4 and /48 for IPv6',
  ]],
  ["loopback", pool("a", { cidrs: ["127.0.0.0/16"] }), [
    'spec.cidrs[0]: Invalid value: "string": overlaps a special range (unspecified, loopback, link-local, multicast or broadcast)',
  ]],
  ["the broadcast address", pool("a", { cidrs: ["255.255.0.0/16"] }), [
    'spec.cidrs[0]: Invalid value: "string": overlaps a special range (unspecified, loopback, link-local, multicast or broadcast)',
  ]],
  ["IPv6 link-local", pool("a", { cidrs: ["fe80::/64"] }), [
    'spec.cidrs[0]: Invalid value: "string": overlaps a special range (unspecified, loopback, link-local, multicast or broadcast)',
  ]],
  ["overlap within the pool", pool("a", { cidrs: ["10.0.0.0/16", "10.0.128.0/24"] }), [
    'spec.cidrs: Invalid value: "array": the networks of one pool must not overlap',
  ]],
  ["the same CIDR twice", pool("a", { cidrs: ["10.0.0.0/24", "10.0.0.0/24"] }), [
    'spec.cidrs[1]: Duplicate value: "10.0.0.0/24"',
  ]],
  ["257 CIDRs", pool("a", { cidrs: many(257) }), [
    "spec.cidrs: Too many: 257: must have at most 256 items",
  ]],
  ["no CIDR", pool("a", { cidrs: [] }), [
    "spec.cidrs: Invalid value: 0: spec.cidrs in body should have at least 1 items",
  ]],
  ["a misspelt field", pool("a", { cidr: ["10.0.0.0/24"] }), [
    "spec.cidrs: Required value",
    'unknown field "spec.cidr"',
  ]],
  ["a namespace that is not a name", pool("a", { cidrs: ["10.0.0.0/24"], namespaces: ["Web"] }), [
    `spec.namespaces[0]: Invalid value: "Web": spec.namespaces[0] in body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'`,
  ]],
  ["autoAssign a string", pool("a", { cidrs: ["10.0.0.0/24"], autoAssign: "yes" }), [
    'spec.autoAssign: Invalid value: "string": spec.autoAssign in body must be of type boolean',
  ]],
  ["a name with a dot", pool("public.v4", { cidrs: ["10.0.0.0/24"] }), [
    `<root>: Invalid value: "object": metadata.name must be a DNS label (at most 63 characters of a-z, 0-9 and '-', no dots): Services name the pool by it in the kube-gw.io/pool annotation`,
  ]],
];

Deno.test("the schema accepts good pools", () => {
  for (const p of GOOD) assert.deepEqual(checkSchema(p, schema, ""), [], JSON.stringify(p.spec));
});

for (const [what, p, errors] of BAD) {
  Deno.test(`the schema refuses a pool: ${what}`, () => {
    assert.deepEqual(checkSchema(p, schema, ""), errors);
  });
}

/** The controller's own verdict on a pool's CIDRs and namespaces (pools.yaml rules). */
function controllerAccepts(p: Obj): boolean {
  const s = p.spec as Obj;
  try {
    parsePoolsYaml(JSON.stringify({ pools: [{ name: "x", ...s }] }));
    return true;
  } catch (err) {
    if (err instanceof PoolConfigError) return false;
    throw err;
  }
}

Deno.test("on CIDRs, the schema and the controller's parser agree: what one refuses the other refuses", () => {
  const cidrCases = [...GOOD, ...BAD.map(([, p]) => p)].filter((p) => {
    const s = p.spec as Obj;
    const named = /^[a-z0-9-]+$/.test((p.metadata as Obj).name as string);
    return named && Array.isArray(s.cidrs) && s.cidrs.length > 0 && s.cidrs.length <= 64 &&
      Object.keys(s).every((k) => k === "cidrs");
  });
  assert(cidrCases.length >= 12);
  for (const p of cidrCases) {
    assert.deepEqual(
      checkSchema(p, schema, "").length === 0,
      controllerAccepts(p),
      JSON.stringify(p.spec),
    );
  }
});

/** The printer columns `kubectl get addresspools` shows, by name. */
const COLUMNS = version.additionalPrinterColumns as Obj[];

/** The schema node a printer column's JSONPath reaches (filters step into list items). */
function reach(path: string): Schema | undefined {
  let node: Schema | undefined = { properties: { ...schema.properties } } as Schema;
  for (const step of path.replace(/\[\?\(.*?\)\]/g, "[]").split(".").slice(1)) {
    const [name, ...filters] = step.split("[]");
    node = name === "metadata"
      ? { type: "object", properties: { creationTimestamp: { type: "string" } } }
      : node?.properties?.[name];
    for (const _ of filters) node = node?.items;
  }
  return node;
}

Deno.test("kubectl get addresspools shows the CIDRs, Ready, the addresses used and free, and the age, each from a field of the schema", () => {
  assert.deepEqual(COLUMNS.map((c) => [c.name, c.type, c.jsonPath]), [
    ["CIDRs", "string", ".spec.cidrs"],
    ["Ready", "string", '.status.conditions[?(@.type=="Ready")].status'],
    ["Used", "integer", ".status.used"],
    ["Free", "string", ".status.free"],
    ["Age", "date", ".metadata.creationTimestamp"],
  ]);
  for (const c of COLUMNS) {
    const node = reach(c.jsonPath as string);
    assert(node, `${c.jsonPath} is a field of the schema`);
    if (c.name === "Used") assert.deepEqual(node.type, "integer");
    if (c.name === "Free") assert.deepEqual([node.type, node.pattern], ["string", "^[0-9]+$"]);
  }
  const status = schema.properties!.status.properties!;
  for (const f of ["ipv4", "ipv6"]) {
    assert.deepEqual(Object.keys(status[f].properties!), ["used", "free"], `per family: ${f}`);
  }
  const conditions = status.conditions as Schema & Obj;
  assert.deepEqual(conditions["x-kubernetes-list-type"], "map");
  assert.deepEqual(conditions["x-kubernetes-list-map-keys"], ["type"]);
});

Deno.test("the sample AddressPool is the sample ConfigMap's pool: applying both moves no address", async () => {
  const dir = new URL("../../scripts/k8s/controller/", import.meta.url);
  const sample = yaml.load(await Deno.readTextFile(new URL("addresspool.yaml", dir))) as Obj;
  const cm = yaml.load(await Deno.readTextFile(new URL("pools-configmap.yaml", dir))) as Obj;
  const [fromCm] = parsePoolsYaml((cm.data as Record<string, string>)["pools.yaml"]);
  assert.deepEqual(checkSchema(sample, schema, ""), []);
  const s = sample.spec as Obj;
  assert.deepEqual((sample.metadata as Obj).name, fromCm.name);
  assert.deepEqual(s.cidrs, fromCm.cidrs.map((c) => c.text));
  assert.deepEqual([s.autoAssign, s.namespaces], [fromCm.autoAssign, fromCm.namespaces]);
});
