/**
 * The manifests in scripts/k8s/, checked without a cluster (kubectl needs an
 * API server even for --dry-run=client): every field against the Kubernetes
 * API types (the generated models of @kubernetes/client-node, API v1.34), then
 * what kube-gw needs of them.
 */
import assert from "node:assert/strict";
import yaml from "js-yaml";
import * as models from "@kubernetes/client-node/models";
import { parseArgs } from "../../lib/cli.ts";
import { parseConfig } from "../../lib/config.ts";
import { ENV_VARS } from "../../lib/cli.ts";

const DIR = new URL("../../scripts/k8s/", import.meta.url).pathname;

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
  DaemonSet: "apps/v1",
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

async function manifests(): Promise<Obj[]> {
  const out: Obj[] = [];
  for await (const e of Deno.readDir(DIR)) {
    if (!e.name.endsWith(".yaml")) continue;
    for (const doc of yaml.loadAll(await Deno.readTextFile(`${DIR}${e.name}`))) {
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

Deno.test("the ClusterRole may only get, list and watch Services, bound to kube-gw's ServiceAccount", async () => {
  const all = await manifests();
  const sa = find(all, "ServiceAccount");
  const role = find(all, "ClusterRole");
  const binding = find(all, "ClusterRoleBinding");
  assert.deepEqual(role.rules, [{
    apiGroups: [""],
    resources: ["services"],
    verbs: ["get", "list", "watch"],
  }]);
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

Deno.test("the DaemonSet runs on labelled, tainted routers, on the host network, with NET_ADMIN only", async () => {
  const all = await manifests();
  const ds = find(all, "DaemonSet");
  const sa = find(all, "ServiceAccount");
  const pod = at(ds, "spec", "template", "spec") as Obj;
  assert.deepEqual(at(ds, "metadata", "namespace"), at(sa, "metadata", "namespace"));
  assert.deepEqual(pod.serviceAccountName, at(sa, "metadata", "name"));
  assert.deepEqual(pod.hostNetwork, true);
  assert.deepEqual(pod.nodeSelector, { "kube-gw/gateway": "true" });
  assert.ok(
    (pod.tolerations as Obj[]).some((t) => t.key === "kube-gw/gateway" && t.operator === "Exists"),
  );
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
  assert.ok(at(containers[0], "resources", "limits", "memory"), "a memory limit");
});

Deno.test("the DaemonSet's arguments and ConfigMap make a configuration kube-gw accepts, in-cluster", async () => {
  const all = await manifests();
  const ds = find(all, "DaemonSet");
  const cm = find(all, "ConfigMap");
  const container = (at(ds, "spec", "template", "spec", "containers") as Obj[])[0];
  assert.deepEqual(at(container, "envFrom", 0, "configMapRef", "name"), at(cm, "metadata", "name"));
  const data = cm.data as Record<string, string>;
  for (const key of Object.keys(data)) {
    assert.ok(ENV_VARS.includes(key), `${key} is not a kube-gw variable`);
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
  assert.ok(
    /^FROM \S+debian:bookworm-slim$/m.test(text),
    "a slim Debian base (glibc, for the binary)",
  );
  assert.ok(/apt-get install -y --no-install-recommends iproute2/.test(text), "iproute2");
  assert.ok(
    /^ARG BINARY=dist\/kube-gw$/m.test(text) &&
      /^COPY \$\{BINARY\} \/usr\/local\/bin\/kube-gw$/m.test(text),
  );
  assert.ok(/^ENTRYPOINT \["\/usr\/local\/bin\/kube-gw"\]$/m.test(text));
});
