/**
 * The manifests in scripts/k8s/, checked without a cluster (kubectl needs an
 * API server even for --dry-run=client): every field against the Kubernetes
 * API types (the generated models of @kubernetes/client-node, API v1.34), then
 * what kube-gw needs of them. The agents' manifests are in scripts/k8s/, the
 * LoadBalancer controller's in scripts/k8s/controller/.
 */
import assert from "node:assert/strict";
import { parseControllerConfig } from "../../lib/controller/config.ts";
import yaml from "js-yaml";
import * as models from "@kubernetes/client-node/models";
import { parseArgs } from "../../lib/cli.ts";
import { parseConfig } from "../../lib/agent/config.ts";
import { cidrsOverlap, parseCidr } from "../../lib/base/cidr.ts";
import { ENV_VARS } from "../../lib/cli.ts";
import { parseListen } from "../../lib/base/flags.ts";
import { checkSchema, type Schema } from "../support/crd_schema.ts";

const DIR = new URL("../../scripts/k8s/", import.meta.url).pathname;
const CONTROLLER_DIR = `${DIR}controller/`;

type Obj = Record<string, unknown>;
interface Attribute {
  readonly baseName: string;
  readonly type: string;
}
const MODELS = models as unknown as Record<string, { attributeTypeMap?: Attribute[] }>;

const API_VERSION: Record<string, string> = {
  ServiceAccount: "v1",
  ConfigMap: "v1",
  ClusterRole: "rbac.authorization.k8s.io/v1",
  ClusterRoleBinding: "rbac.authorization.k8s.io/v1",
  Role: "rbac.authorization.k8s.io/v1",
  RoleBinding: "rbac.authorization.k8s.io/v1",
  DaemonSet: "apps/v1",
  Deployment: "apps/v1",
  CustomResourceDefinition: "apiextensions.k8s.io/v1",
};

/** Every field of `value` checked against the API type `type`; returns the problems. */
function check(value: unknown, type: string, path: string): string[] {
  const bad = (what: string) => [`${path}: ${what}`];
  let m: RegExpExecArray | null;
  switch (type) {
    case "string":
    case "Date":
      return typeof value === "string"
        ? []
        : bad(`expected a string, got ${JSON.stringify(value)}`);
    case "number":
      return typeof value === "number"
        ? []
        : bad(`expected a number, got ${JSON.stringify(value)}`);
    case "boolean":
      return typeof value === "boolean"
        ? []
        : bad(`expected a boolean, got ${JSON.stringify(value)}`);
    case "IntOrString":
      return typeof value === "string" || Number.isInteger(value)
        ? []
        : bad("expected int or string");
    case "any":
      return [];
  }
  if ((m = /^Array<(.+)>$/.exec(type))) {
    if (!Array.isArray(value)) return bad("expected a list");
    return value.flatMap((v, i) => check(v, m![1], `${path}[${i}]`));
  }
  if ((m = /^\{ \[key: string\]: (.+); \}$/.exec(type))) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return bad("expected a map");
    }
    return Object.entries(value).flatMap(([k, v]) => check(v, m![1], `${path}.${k}`));
  }
  const model = MODELS[type]?.attributeTypeMap;
  if (!model) return bad(`unknown API type ${type}`);
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return bad(`expected an object (${type})`);
  }
  return Object.entries(value).flatMap(([k, v]) => {
    const attr = model.find((a) => a.baseName === k);
    return attr ? check(v, attr.type, `${path}.${k}`) : bad(`${type} has no field "${k}"`);
  });
}

/** The API's own checks a manifest must pass, for one object. */
function validate(obj: Obj, where: string): string[] {
  const kind = obj.kind as string;
  if (!(kind in API_VERSION)) return [`${where}: unexpected kind ${kind}`];
  const problems = check(obj, `V1${kind}`, `${where} ${kind}`);
  if (obj.apiVersion !== API_VERSION[kind]) {
    problems.push(`${where} ${kind}: apiVersion ${obj.apiVersion}, want ${API_VERSION[kind]}`);
  }
  return problems;
}

/** The objects of the `.yaml` files directly in `dir` (the agents' by default). */
async function manifests(dir = DIR): Promise<Obj[]> {
  const out: Obj[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile || !e.name.endsWith(".yaml")) continue;
    for (const doc of yaml.loadAll(await Deno.readTextFile(`${dir}${e.name}`))) {
      if (doc) out.push({ ...(doc as Obj), "#file": e.name });
    }
  }
  return out;
}

function strip(o: Obj): Obj {
  const { "#file": _f, ...rest } = o;
  return rest;
}

function find(all: Obj[], kind: string): Obj {
  const found = all.filter((o) => o.kind === kind);
  assert.deepEqual(found.length, 1, `one ${kind}`);
  return strip(found[0]);
}

const at = (o: unknown, ...path: (string | number)[]): unknown =>
  path.reduce<unknown>((v, k) => (v as Record<string | number, unknown> | undefined)?.[k], o);

/** One RBAC PolicyRule, as the manifests write it. */
interface Rule {
  readonly apiGroups?: string[];
  readonly resources?: string[];
  readonly resourceNames?: string[];
  readonly verbs: string[];
}

/**
 * One API request as the RBAC authorizer sees it. `name` is the object's
 * name for get, update, patch and delete; for list and watch only when the
 * request carries the field selector `metadata.name=NAME`; never for create.
 */
interface Request {
  readonly verb: string;
  readonly group: string;
  readonly resource: string;
  readonly name?: string;
}

const WRITE_VERBS = ["create", "update", "patch", "delete", "deletecollection"];

/** Whether some rule allows the request, with RBAC's matching (wildcards included). */
function allows(rules: readonly Rule[], r: Request): boolean {
  const has = (list: readonly string[] | undefined, v: string) =>
    (list ?? []).includes(v) || (list ?? []).includes("*");
  return rules.some((rule) =>
    has(rule.verbs, r.verb) && has(rule.apiGroups, r.group) &&
    has(rule.resources, r.resource) &&
    (!rule.resourceNames?.length || (r.name !== undefined && rule.resourceNames.includes(r.name)))
  );
}

Deno.test("the RBAC matcher follows the API server's rules for resourceNames", () => {
  const rules: Rule[] = [{
    apiGroups: [""],
    resources: ["configmaps"],
    resourceNames: ["a"],
    verbs: ["get", "list", "create"],
  }];
  assert(allows(rules, { verb: "get", group: "", resource: "configmaps", name: "a" }));
  assert(!allows(rules, { verb: "get", group: "", resource: "configmaps", name: "b" }));
  // A list without the field selector metadata.name=a carries no name: refused.
  assert(!allows(rules, { verb: "list", group: "", resource: "configmaps" }));
  assert(allows(rules, { verb: "list", group: "", resource: "configmaps", name: "a" }));
  // A create carries no name at authorization time: a named rule never allows it.
  assert(!allows(rules, { verb: "create", group: "", resource: "configmaps" }));
  assert(!allows(rules, { verb: "get", group: "apps", resource: "configmaps", name: "a" }));
  assert(allows([{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }], {
    verb: "delete",
    group: "apps",
    resource: "deployments",
  }));
});

Deno.test("the checker finds misspelt fields, wrong nesting and wrong types", () => {
  const ds = { apiVersion: "apps/v1", kind: "DaemonSet", metadata: { name: "x" } };
  assert.deepEqual(validate(ds, "t"), []);
  assert.deepEqual(validate({ ...ds, spec: { template: { spec: { hostNetwrok: true } } } }, "t"), [
    't DaemonSet.spec.template.spec: V1PodSpec has no field "hostNetwrok"',
  ]);
  assert.deepEqual(validate({ ...ds, spec: { hostNetwork: true } }, "t"), [
    't DaemonSet.spec: V1DaemonSetSpec has no field "hostNetwork"',
  ]);
  assert.deepEqual(
    validate({
      ...ds,
      spec: {
        template: { spec: { containers: [{ name: "a", ports: [{ containerPort: "80" }] }] } },
      },
    }, "t"),
    ['t DaemonSet.spec.template.spec.containers[0].ports[0].containerPort: expected a number, got "80"'],
  );
  assert.deepEqual(validate({ ...ds, apiVersion: "extensions/v1beta1" }, "t"), [
    "t DaemonSet: apiVersion extensions/v1beta1, want apps/v1",
  ]);
});

Deno.test("scripts/k8s holds valid Kubernetes objects: every field known, every type right", async () => {
  const all = await manifests();
  assert.deepEqual(all.map((o) => o.kind).sort(), [
    "ClusterRole",
    "ClusterRoleBinding",
    "ConfigMap",
    "DaemonSet",
    "ServiceAccount",
  ]);
  assert.deepEqual(all.flatMap((o) => validate(strip(o), o["#file"] as string)), []);
});

Deno.test("the agents' ClusterRole may only read Services and list and watch EndpointSlices, bound to kube-gw's ServiceAccount", async () => {
  const all = await manifests();
  const sa = find(all, "ServiceAccount");
  const role = find(all, "ClusterRole");
  const binding = find(all, "ClusterRoleBinding");
  assert.deepEqual(role.rules, [{
    apiGroups: [""],
    resources: ["services"],
    verbs: ["get", "list", "watch"],
  }, {
    apiGroups: ["discovery.k8s.io"],
    resources: ["endpointslices"],
    verbs: ["list", "watch"],
  }]);
  const rules = role.rules as Rule[];
  for (const write of WRITE_VERBS) {
    for (
      const [group, resource] of [["", "services"], ["", "services/status"], [
        "discovery.k8s.io",
        "endpointslices",
      ], ["events.k8s.io", "events"]]
    ) {
      assert(
        !allows(rules, { verb: write, group, resource }),
        `agents may not ${write} ${resource}`,
      );
    }
  }
  assert(
    !allows(rules, { verb: "get", group: "", resource: "configmaps", name: "kube-gw-pools" }),
    "agents do not read the pools",
  );
  assert.deepEqual(binding.roleRef, {
    apiGroup: "rbac.authorization.k8s.io",
    kind: "ClusterRole",
    name: at(role, "metadata", "name"),
  });
  assert.deepEqual(binding.subjects, [{
    kind: "ServiceAccount",
    name: at(sa, "metadata", "name"),
    namespace: at(sa, "metadata", "namespace"),
  }]);
});

Deno.test("the DaemonSet runs on labelled routers whatever their taints, on the host network, with NET_ADMIN only", async () => {
  const all = await manifests();
  const ds = find(all, "DaemonSet");
  const sa = find(all, "ServiceAccount");
  const pod = at(ds, "spec", "template", "spec") as Obj;
  assert.deepEqual(at(ds, "metadata", "namespace"), at(sa, "metadata", "namespace"));
  assert.deepEqual(pod.serviceAccountName, at(sa, "metadata", "name"));
  assert.deepEqual(pod.hostNetwork, true);
  assert.deepEqual(pod.nodeSelector, { "kube-gw/gateway": "true" });
  // Every taint tolerated, as kube-proxy's DaemonSet does: a router's own taints
  // (control-plane, dedicated, NoExecute ones included) must not keep kube-gw off.
  assert.deepEqual(pod.tolerations, [{ operator: "Exists" }]);
  assert.deepEqual(pod.volumes, undefined, "no volumes: nothing of the host is mounted");
  assert.deepEqual(pod.hostPID ?? false, false);
  const containers = pod.containers as Obj[];
  assert.deepEqual(containers.length, 1);
  const sc = containers[0].securityContext as Obj;
  assert.deepEqual(sc.capabilities, { drop: ["ALL"], add: ["NET_ADMIN"] });
  assert.deepEqual([sc.privileged, sc.allowPrivilegeEscalation, sc.readOnlyRootFilesystem], [
    false,
    false,
    true,
  ]);
  assert.deepEqual(at(sc, "seccompProfile", "type"), "RuntimeDefault");
  assert(at(containers[0], "resources", "limits", "memory"), "a memory limit");
});

Deno.test("the DaemonSet's arguments and ConfigMap make a configuration kube-gw accepts, in-cluster", async () => {
  const all = await manifests();
  const ds = find(all, "DaemonSet");
  const cm = find(all, "ConfigMap");
  const container = (at(ds, "spec", "template", "spec", "containers") as Obj[])[0];
  assert.deepEqual(at(container, "envFrom", 0, "configMapRef", "name"), at(cm, "metadata", "name"));
  const data = cm.data as Record<string, string>;
  for (const key of Object.keys(data)) {
    assert(ENV_VARS.includes(key), `${key} is not a kube-gw variable`);
  }
  assert.deepEqual(data.KUBEGW_NETWORK, "", "the network is left for the operator to set");
  const env = { ...data, KUBEGW_NETWORK: "198.51.100.0/24" };
  const invocation = parseArgs(
    container.args as string[],
    (n) => env[n as keyof typeof env],
    () => {},
  );
  assert.deepEqual(invocation?.command, "run");
  const config = parseConfig(invocation!.options);
  assert.deepEqual(config.inCluster, true);
  // The kubelet probes the status listener where the agent serves it.
  for (const [probe, path] of [["livenessProbe", "/healthz"], ["readinessProbe", "/readyz"]]) {
    assert.deepEqual(at(container, probe, "httpGet"), {
      host: config.metricsAddress!.hostname,
      port: config.metricsAddress!.port,
      path,
    });
  }
});

Deno.test("the Containerfile puts the compiled binary on a small base with iproute2", async () => {
  const text = await Deno.readTextFile(`${DIR}Containerfile`);
  assert(
    /^FROM \S+debian:bookworm-slim$/m.test(text),
    "a slim Debian base (glibc, for the binary)",
  );
  assert(/apt-get install -y --no-install-recommends iproute2/.test(text), "iproute2");
  assert(
    /^ARG BINARY=dist\/kube-gw$/m.test(text) &&
      /^COPY \$\{BINARY\} \/usr\/local\/bin\/kube-gw$/m.test(text),
  );
  assert(/^ENTRYPOINT \["\/usr\/local\/bin\/kube-gw"\]$/m.test(text));
});

Deno.test("the DaemonSet tells each agent its node's name (NODE_NAME, from the downward API)", async () => {
  const ds = find(await manifests(), "DaemonSet");
  const container = (at(ds, "spec", "template", "spec", "containers") as Obj[])[0];
  assert.deepEqual(container.env, [{
    name: "NODE_NAME",
    valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } },
  }]);
});

// ---- The LoadBalancer controller (scripts/k8s/controller/) ----

/** The variables the controller's Deployment may set. */
const CONTROLLER_ENV = [
  "KUBEGW_IN_K8S",
  "KUBEGW_CLASS",
  "KUBEGW_DEFAULT_CLASS",
  "KUBEGW_POOL",
  "KUBEGW_CONFIG",
  "KUBEGW_LEADER_ELECT",
  "KUBEGW_LEASE_NAMESPACE",
  "KUBEGW_METRICS_ADDRESS",
  "KUBEGW_LOG_FORMAT",
  "KUBEGW_LOG_LEVEL",
];
/** The Lease the controllers elect their leader on. */
const LEASE = "kube-gw-controller";

async function controllerParts() {
  const all = await manifests(CONTROLLER_DIR);
  const deployment = find(all, "Deployment");
  const pod = at(deployment, "spec", "template", "spec") as Obj;
  const containers = pod.containers as Obj[];
  const env = Object.fromEntries(
    ((containers[0].env ?? []) as Obj[]).map((e) => [e.name as string, e.value as string]),
  );
  return { all, deployment, pod, containers, env };
}

Deno.test("scripts/k8s/controller holds valid Kubernetes objects: every field known, every type right", async () => {
  const all = await manifests(CONTROLLER_DIR);
  assert.deepEqual(all.map((o) => o.kind).sort(), [
    "AddressPool",
    "ClusterRole",
    "ClusterRoleBinding",
    "ConfigMap",
    "CustomResourceDefinition",
    "Deployment",
    "Role",
    "RoleBinding",
    "ServiceAccount",
  ]);
  // A custom resource is checked against its CRD's schema and CEL rules, as the API server does.
  const crd = find(all, "CustomResourceDefinition");
  const schema = at(crd, "spec", "versions", 0, "schema", "openAPIV3Schema") as Schema;
  assert.deepEqual(
    all.flatMap((o) =>
      o.kind === "AddressPool"
        ? checkSchema(strip(o), schema, "")
        : validate(strip(o), `controller/${o["#file"]}`)
    ),
    [],
  );
});

Deno.test("the controller's ClusterRole: list and watch Services and AddressPools, patch only their status, create Events", async () => {
  const { all } = await controllerParts();
  const role = find(all, "ClusterRole");
  assert.deepEqual(role.rules, [
    { apiGroups: [""], resources: ["services"], verbs: ["list", "watch"] },
    { apiGroups: [""], resources: ["services/status"], verbs: ["patch"] },
    { apiGroups: ["kube-gw.io"], resources: ["addresspools"], verbs: ["list", "watch"] },
    { apiGroups: ["kube-gw.io"], resources: ["addresspools/status"], verbs: ["patch"] },
    { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create"] },
  ]);
  const rules = role.rules as Rule[];
  // The spec and metadata of a Service are never the controller's to change.
  for (const verb of WRITE_VERBS) {
    assert(!allows(rules, { verb, group: "", resource: "services", name: "web" }), verb);
  }
  // Nor a pool's: the pools are the operator's.
  for (const verb of [...WRITE_VERBS, "get"]) {
    assert(!allows(rules, { verb, group: "kube-gw.io", resource: "addresspools", name: "p" }));
  }
  // The CRD's plural and group are the ones granted.
  const crd = find(all, "CustomResourceDefinition");
  assert.deepEqual(
    [at(crd, "spec", "group"), at(crd, "spec", "names", "plural")],
    ["kube-gw.io", "addresspools"],
  );
  // Core v1 Events are the same objects by another API: not granted.
  assert(!allows(rules, { verb: "create", group: "", resource: "events" }));
  assert(!allows(rules, { verb: "get", group: "", resource: "secrets", name: "x" }));
});

Deno.test("the controller's Role reaches only the pools ConfigMap and its Lease, in their namespace", async () => {
  const { all, env } = await controllerParts();
  const role = find(all, "Role");
  const pools = find(all, "ConfigMap");
  const poolsName = at(pools, "metadata", "name") as string;
  assert.deepEqual(role.rules, [
    {
      apiGroups: [""],
      resources: ["configmaps"],
      resourceNames: [poolsName],
      verbs: ["list", "watch"],
    },
    {
      apiGroups: ["coordination.k8s.io"],
      resources: ["leases"],
      resourceNames: [LEASE],
      verbs: ["get", "update"],
    },
    // create cannot be restricted by name: the only unnamed rule, in one namespace.
    { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"] },
  ]);
  const rules = role.rules as Rule[];
  const cm = { group: "", resource: "configmaps" };
  assert(allows(rules, { ...cm, verb: "watch", name: poolsName }), "watch with metadata.name");
  assert(!allows(rules, { ...cm, verb: "list" }), "a list without the field selector is refused");
  assert(!allows(rules, { ...cm, verb: "get", name: "kube-proxy" }), "no other ConfigMap");
  for (const verb of WRITE_VERBS) assert(!allows(rules, { ...cm, verb, name: poolsName }), verb);
  const lease = { group: "coordination.k8s.io", resource: "leases" };
  assert(allows(rules, { ...lease, verb: "update", name: LEASE }));
  assert(!allows(rules, { ...lease, verb: "update", name: "kube-scheduler" }), "no other Lease");
  assert(!allows(rules, { ...lease, verb: "delete", name: LEASE }));
  // The Role, the ConfigMap the controller is pointed at and the Lease live in one namespace.
  const ns = at(role, "metadata", "namespace");
  assert.deepEqual(env.KUBEGW_CONFIG, `${at(pools, "metadata", "namespace")}/${poolsName}`);
  assert.deepEqual(at(pools, "metadata", "namespace"), ns);
  assert.deepEqual(env.KUBEGW_LEASE_NAMESPACE, ns);
});

Deno.test("both controller roles are bound to the controller's ServiceAccount, which the Deployment uses", async () => {
  const { all, deployment, pod } = await controllerParts();
  const sa = find(all, "ServiceAccount");
  const subject = {
    kind: "ServiceAccount",
    name: at(sa, "metadata", "name"),
    namespace: at(sa, "metadata", "namespace"),
  };
  const clusterBinding = find(all, "ClusterRoleBinding");
  assert.deepEqual(clusterBinding.roleRef, {
    apiGroup: "rbac.authorization.k8s.io",
    kind: "ClusterRole",
    name: at(find(all, "ClusterRole"), "metadata", "name"),
  });
  assert.deepEqual(clusterBinding.subjects, [subject]);
  const binding = find(all, "RoleBinding");
  const role = find(all, "Role");
  assert.deepEqual(binding.roleRef, {
    apiGroup: "rbac.authorization.k8s.io",
    kind: "Role",
    name: at(role, "metadata", "name"),
  });
  assert.deepEqual(at(binding, "metadata", "namespace"), at(role, "metadata", "namespace"));
  assert.deepEqual(binding.subjects, [subject]);
  assert.deepEqual(pod.serviceAccountName, subject.name);
  assert.deepEqual(at(deployment, "metadata", "namespace"), subject.namespace);
  // Not the agents' account: the agents stay read-only.
  const agentSa = find(await manifests(), "ServiceAccount");
  assert(subject.name !== at(agentSa, "metadata", "name"));
});

Deno.test("the controller runs two replicas, spread over nodes, as non-root with no capability and a read-only root", async () => {
  const { deployment, pod, containers } = await controllerParts();
  assert.deepEqual(at(deployment, "spec", "replicas"), 2);
  const labels = at(deployment, "spec", "template", "metadata", "labels") as Obj;
  const selector = at(deployment, "spec", "selector", "matchLabels") as Obj;
  for (const [k, v] of Object.entries(selector)) assert.deepEqual(labels[k], v, `selector ${k}`);
  const spread = at(
    pod,
    "affinity",
    "podAntiAffinity",
    "preferredDuringSchedulingIgnoredDuringExecution",
    0,
    "podAffinityTerm",
  ) as Obj;
  assert.deepEqual(spread.topologyKey, "kubernetes.io/hostname");
  assert.deepEqual(at(spread, "labelSelector", "matchLabels"), selector);
  assert.deepEqual([pod.hostNetwork ?? false, pod.hostPID ?? false, pod.hostIPC ?? false], [
    false,
    false,
    false,
  ]);
  assert.deepEqual(pod.volumes, undefined, "no volumes");
  const podSc = pod.securityContext as Obj;
  assert.deepEqual(podSc.runAsNonRoot, true);
  assert(typeof podSc.runAsUser === "number" && podSc.runAsUser > 0, "a non-root uid");
  assert(typeof podSc.runAsGroup === "number" && podSc.runAsGroup > 0, "a non-root gid");
  assert.deepEqual(at(podSc, "seccompProfile", "type"), "RuntimeDefault");
  assert.deepEqual(containers.length, 1);
  const sc = containers[0].securityContext as Obj;
  assert.deepEqual(sc.capabilities, { drop: ["ALL"] });
  assert.deepEqual([sc.privileged, sc.allowPrivilegeEscalation, sc.readOnlyRootFilesystem], [
    false,
    false,
    true,
  ]);
  assert.deepEqual(
    sc.runAsUser ?? podSc.runAsUser,
    podSc.runAsUser,
    "no container override to root",
  );
  assert(at(containers[0], "resources", "limits", "memory"), "a memory limit");
  assert(at(containers[0], "resources", "requests", "cpu"), "a CPU request");
});

Deno.test("the controller runs `kube-gw controller` from the agents' image, in-cluster, probed where it listens", async () => {
  const { pod, containers, env } = await controllerParts();
  const c = containers[0];
  const ds = find(await manifests(), "DaemonSet");
  assert.deepEqual(
    c.image,
    at(ds, "spec", "template", "spec", "containers", 0, "image"),
    "one binary",
  );
  assert.deepEqual(c.args, ["controller"]);
  for (const name of Object.keys(env)) {
    assert(CONTROLLER_ENV.includes(name), `${name} is not a controller variable`);
  }
  assert.deepEqual(env.KUBEGW_IN_K8S, "1");
  // The Deployment's variables make a configuration `kube-gw controller` accepts.
  const inv = parseArgs(c.args as string[], (n) => env[n], () => {});
  const config = parseControllerConfig(inv!.options);
  assert.deepEqual(config.inCluster, true);
  assert.deepEqual(config.configMap, { namespace: "kube-system", name: "kube-gw-pools" });
  assert.deepEqual(config.leaderElect, true);
  assert.deepEqual(pod.enableServiceLinks, false);
  // The kubelet probes the pod's IP: the listener must not be the default 127.0.0.1.
  const listen = parseListen(env.KUBEGW_METRICS_ADDRESS, "KUBEGW_METRICS_ADDRESS");
  assert.deepEqual(listen, { hostname: "0.0.0.0", port: 9473, source: "KUBEGW_METRICS_ADDRESS" });
  assert.deepEqual(c.ports, [{ name: "metrics", containerPort: listen!.port, protocol: "TCP" }]);
  for (const [probe, path] of [["livenessProbe", "/healthz"], ["readinessProbe", "/readyz"]]) {
    assert.deepEqual(at(c, probe, "httpGet"), { port: listen!.port, path }, probe);
  }
});

Deno.test("the sample pools ConfigMap holds a pools.yaml of the documented shape, with canonical documentation ranges", async () => {
  const { all } = await controllerParts();
  const cm = find(all, "ConfigMap");
  assert.deepEqual(at(cm, "metadata", "name"), "kube-gw-pools");
  assert.deepEqual(at(cm, "metadata", "namespace"), "kube-system");
  assert.deepEqual(Object.keys(cm.data as Obj), ["pools.yaml"]);
  const text = at(cm, "data", "pools.yaml") as string;
  // The controller reads pools.yaml with js-yaml's JSON schema (no dates, no YAML 1.1 booleans).
  const doc = yaml.load(text, { schema: yaml.JSON_SCHEMA });
  assert.deepEqual(doc, {
    pools: [{ name: "public", cidrs: ["198.51.100.0/24", "2001:db8:100::/120"], autoAssign: true }],
  });
  const pools = (doc as { pools: { name: string; cidrs: string[] }[] }).pools;
  const cidrs = pools.flatMap((p) => p.cidrs).map(parseCidr);
  assert.deepEqual(cidrs.map((c) => c.text), pools.flatMap((p) => p.cidrs), "canonical");
  assert.deepEqual(cidrs.map((c) => c.family), [4, 6], "one range per family");
  for (const p of pools) assert(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(p.name), p.name);
  // The documentation ranges of RFC 5737 and RFC 3849: the sample claims no real address.
  const doc4 = parseCidr("198.51.100.0/24");
  const doc6 = parseCidr("2001:db8::/32");
  for (const c of cidrs) {
    const block = c.family === 4 ? doc4 : doc6;
    const width = c.family === 4 ? 32 : 128;
    assert(
      c.prefix >= block.prefix && (c.base >> BigInt(width - block.prefix)) ===
          (block.base >> BigInt(width - block.prefix)),
      `${c.text} is a documentation range`,
    );
  }
  // The comments show the optional field too.
  assert(/^\s*# namespaces: \[/m.test(text), "namespaces shown, commented out");
});

/** The tables of a markdown section, each as rows of cells (header and ruler dropped). */
function tables(markdown: string, heading: string): string[][][] {
  const start = markdown.indexOf(`\n${heading}\n`);
  assert(start >= 0, `${heading} is in the guide`);
  const end = markdown.indexOf("\n## ", start + heading.length + 2);
  const out: string[][][] = [];
  let current: string[][] | undefined;
  for (const line of markdown.slice(start, end < 0 ? undefined : end).split("\n")) {
    if (!line.startsWith("|")) {
      current = undefined;
      continue;
    }
    if (!current) out.push(current = []);
    current.push(line.split("|").slice(1, -1).map((c) => c.trim()));
  }
  return out.map((t) => t.slice(2));
}

/** A table row `group | resource | [names |] verbs | why` as the rule it documents. */
function documentedRule(cells: string[], withNames: boolean): Rule {
  const code = (c: string) => c.replace(/^`(.*)`$/, "$1").replace(/^""$/, "");
  const [group, resource] = cells.map(code);
  const names = withNames ? code(cells[2]) : "(any)";
  return {
    apiGroups: [group],
    resources: [resource],
    ...(names === "(any)" ? {} : { resourceNames: [names] }),
    verbs: cells[withNames ? 3 : 2].split(",").map((v) => v.trim()),
  };
}

Deno.test("docs/loadbalancer.md lists the RBAC rules of each role exactly as the manifests grant them", async () => {
  const guide = await Deno.readTextFile(new URL("../../docs/loadbalancer.md", import.meta.url));
  const [agents, cluster, namespaced] = tables(guide, "## RBAC");
  const agentRole = find(await manifests(), "ClusterRole");
  const { all } = await controllerParts();
  assert.deepEqual(agents.map((r) => documentedRule(r, false)), agentRole.rules);
  assert.deepEqual(cluster.map((r) => documentedRule(r, false)), find(all, "ClusterRole").rules);
  assert.deepEqual(namespaced.map((r) => documentedRule(r, true)), find(all, "Role").rules);
});

Deno.test("the pools in docs/loadbalancer.md use only the documented fields, canonical and disjoint", async () => {
  const guide = await Deno.readTextFile(new URL("../../docs/loadbalancer.md", import.meta.url));
  const examples = [...guide.matchAll(/```yaml\n(pools:\n[\s\S]*?)```/g)].map((m) => m[1]);
  assert.deepEqual(examples.length, 2, "the Pools section and the migration");
  for (const text of examples) {
    const doc = yaml.load(text, { schema: yaml.JSON_SCHEMA }) as { pools: Obj[] };
    assert.deepEqual(Object.keys(doc), ["pools"]);
    const names = doc.pools.map((p) => p.name);
    assert.deepEqual(new Set(names).size, names.length, "unique names");
    for (const pool of doc.pools) {
      for (const key of Object.keys(pool)) {
        assert(["name", "cidrs", "namespaces", "autoAssign", "allowReserved"].includes(key), key);
      }
      assert(pool.autoAssign === undefined || typeof pool.autoAssign === "boolean");
      assert(pool.allowReserved === undefined || typeof pool.allowReserved === "boolean");
    }
    const cidrs = doc.pools.flatMap((p) => p.cidrs as string[]);
    for (const text of cidrs) assert.deepEqual(parseCidr(text).text, text);
    const parsed = cidrs.map(parseCidr);
    for (const [i, a] of parsed.entries()) {
      for (const b of parsed.slice(i + 1)) assert(!cidrsOverlap(a, b), `${a.text} ${b.text}`);
    }
  }
});
