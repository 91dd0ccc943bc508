/**
 * The controller run from AddressPool resources, against the fake API
 * server: it allocates from them with neither `--pool` nor `--config`,
 * fills in each pool's status (used and free per family, conditions) as
 * `kubectl get addresspools` shows it, refuses an overlapping newer pool
 * with a condition and a Warning (no address moves), and, given the pools
 * ConfigMap too, says that the resources win.
 */
import assert from "node:assert/strict";
import yaml from "js-yaml";
import { FakeApiServer, type K8sObject } from "../support/fakes/apiserver.ts";
import {
  freePort,
  type LoggedProcess,
  startAgent,
  writeKubeconfig,
} from "../support/procs/agent.ts";
import { waitFor } from "../support/wait.ts";
import { waitReadyz } from "../support/procs/status.ts";
import { type PrinterColumn, printerTable } from "../support/crd_columns.ts";

const CLASS = "kube-gw.io/anycast";
type Obj = Record<string, unknown>;

const CRD = yaml.load(
  await Deno.readTextFile(
    new URL("../../scripts/k8s/controller/addresspools-crd.yaml", import.meta.url),
  ),
) as { spec: { versions: { additionalPrinterColumns: PrinterColumn[] }[] } };
const COLUMNS = CRD.spec.versions[0].additionalPrinterColumns;

function addressPool(name: string, spec: Obj): Obj {
  return { apiVersion: "kube-gw.io/v1alpha1", kind: "AddressPool", metadata: { name }, spec };
}

function ingressOf(api: FakeApiServer, name: string, namespace: string): string[] {
  const svc = api.get("services", name, namespace);
  const lb = (svc?.status as { loadBalancer?: { ingress?: { ip?: string }[] } } | undefined)
    ?.loadBalancer;
  return (lb?.ingress ?? []).map((i) => i.ip ?? "");
}

function statusOf(api: FakeApiServer, name: string): Obj | undefined {
  return api.get("addresspools", name, "")?.status as Obj | undefined;
}

function condition(api: FakeApiServer, pool: string, type: string): string | undefined {
  const cs = (statusOf(api, pool)?.conditions ?? []) as Obj[];
  const c = cs.find((c) => c.type === type);
  return c ? `${c.status}/${c.reason}` : undefined;
}

function lb(name: string, namespace: string) {
  return { name, namespace, type: "LoadBalancer", loadBalancerClass: CLASS };
}

async function world(args: string[] = []) {
  const api = await FakeApiServer.start();
  const kc = await writeKubeconfig(api, {});
  const procs: LoggedProcess[] = [];
  return {
    api,
    async controller(): Promise<LoggedProcess> {
      const port = freePort();
      const proc = startAgent([
        "controller",
        `--kubeconfig=${kc.path}`,
        `--metrics-address=127.0.0.1:${port}`,
        "--leader-elect=false",
        ...args,
      ]);
      procs.push(proc);
      await waitReadyz(port);
      return proc;
    },
    async [Symbol.asyncDispose]() {
      for (const p of procs) await p.stop("SIGKILL");
      await api.close();
      await kc[Symbol.asyncDispose]();
    },
  };
}

Deno.test("from AddressPools alone: allocation, each pool's status as kubectl get shows it, and an overlapping newer pool refused with a Warning", async () => {
  await using w = await world();
  w.api.createObject(
    "addresspools",
    addressPool("public", { cidrs: ["10.0.100.0/30", "2001:db8:100::/126"], allowReserved: true }),
  );
  w.api.createObject(
    "addresspools",
    addressPool("reserved", { cidrs: ["10.0.101.0/29"], autoAssign: false }),
  );
  await w.controller();
  w.api.create(lb("a", "web"));
  w.api.create(lb("b", "web"));
  await waitFor(
    "web/a and web/b to get addresses",
    () => ingressOf(w.api, "a", "web").length === 1 && ingressOf(w.api, "b", "web").length === 1,
  );
  assert.deepEqual([...ingressOf(w.api, "a", "web"), ...ingressOf(w.api, "b", "web")].sort(), [
    "10.0.100.0",
    "10.0.100.1",
  ]);
  await waitFor("public's status to count both", () => statusOf(w.api, "public")?.used === 2);
  const pub = statusOf(w.api, "public")!;
  assert.deepEqual([pub.used, pub.free, pub.ipv4, pub.ipv6], [2, "6", { used: 2, free: "2" }, {
    used: 0,
    free: "4",
  }]);
  assert.equal(condition(w.api, "public", "Ready"), "True/InForce");
  assert.equal(condition(w.api, "public", "Exhausted"), "False/FreeAddresses");
  await waitFor("reserved's status", () => statusOf(w.api, "reserved")?.free === "6");

  // A newer pool overlapping "public" is refused whole; no address moves.
  w.api.createObject("addresspools", addressPool("late", { cidrs: ["10.0.100.0/31"] }));
  await waitFor(
    "late to be Overlapping",
    () => condition(w.api, "late", "Overlapping") === "True/OverlapsOlderPool",
  );
  assert.equal(condition(w.api, "late", "Ready"), "False/Overlapping");
  await waitFor(
    "a Warning on late",
    () =>
      w.api.objects("events", "default").some((e: K8sObject) =>
        e.reason === "OverlappingPool" && (e.regarding as Obj).name === "late" &&
        (e.regarding as Obj).kind === "AddressPool"
      ),
  );
  assert.deepEqual([...ingressOf(w.api, "a", "web"), ...ingressOf(w.api, "b", "web")].sort(), [
    "10.0.100.0",
    "10.0.100.1",
  ]);
  // Status is written only on change: one more Service, one more write, to its pool only.
  const writes = (name?: string) => w.api.clientWrites({ resource: "addresspools", name }).length;
  const [all, late, reserved] = [writes(), writes("late"), writes("reserved")];
  w.api.create(lb("c", "web"));
  await waitFor("public's status to count web/c", () => statusOf(w.api, "public")?.used === 3);
  assert.equal(writes(), all + 1, "one write for one change");
  assert.deepEqual([writes("late"), writes("reserved")], [late, reserved]);
  assert.equal(statusOf(w.api, "public")?.free, "5");

  const table = printerTable(COLUMNS, w.api.objects("addresspools"));
  console.log(`kubectl get addresspools\n${table}`);
  const lines = table.split("\n");
  assert.match(lines[0], /^NAME\s+CIDRS\s+READY\s+USED\s+FREE\s+AGE$/);
  assert.match(lines[1], /^late\s+\["10\.0\.100\.0\/31"\]\s+False\s+<none>\s+<none>\s+\d+s$/);
  assert.match(
    lines[2],
    /^public\s+\["10\.0\.100\.0\/30","2001:db8:100::\/126"\]\s+True\s+3\s+5\s+\d+s$/,
  );
  assert.match(lines[3], /^reserved\s+\["10\.0\.101\.0\/29"\]\s+True\s+0\s+6\s+\d+s$/);
});

Deno.test("given the pools ConfigMap as well, the AddressPools win and the log says so; the ConfigMap is deprecated", async () => {
  await using w = await world(["--config=kube-system/kube-gw-pools"]);
  w.api.createObject("configmaps", {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "kube-gw-pools", namespace: "kube-system" },
    data: { "pools.yaml": "pools:\n  - name: old\n    cidrs: [10.0.200.0/30]\n" },
  });
  w.api.createObject(
    "addresspools",
    addressPool("public", { cidrs: ["10.0.100.0/30"], allowReserved: true }),
  );
  const proc = await w.controller();
  await proc.waitForLine(/deprecated/);
  await proc.waitForLine(/AddressPools exist: they are in force/);
  w.api.create(lb("a", "web"));
  await waitFor("web/a to get an address", () => ingressOf(w.api, "a", "web").length === 1);
  assert.deepEqual(ingressOf(w.api, "a", "web"), ["10.0.100.0"]);
  // The last AddressPool goes: the ConfigMap's pools are in force again; web/a keeps its address.
  w.api.deleteObject("addresspools", "public", "");
  await proc.waitForLine(/no AddressPool exists/);
  w.api.create(lb("b", "web"));
  await waitFor("web/b to get an address", () => ingressOf(w.api, "b", "web").length === 1);
  assert.match(ingressOf(w.api, "b", "web")[0], /^10\.0\.200\.[0-3]$/);
  assert.deepEqual(ingressOf(w.api, "a", "web"), ["10.0.100.0"]);
});
