import assert from "node:assert/strict";
import { FakeApiServer, type K8sObject } from "../support/fakes/apiserver.ts";
import {
  freePort,
  type LoggedProcess,
  startAgent,
  writeKubeconfig,
} from "../support/procs/agent.ts";
import { waitFor } from "../support/wait.ts";
import { runPlanted } from "../support/procs/planted_run.ts";
import { waitReadyz } from "../support/procs/status.ts";

const CLASS = "kube-gw.io/anycast";

/** Every address of these pools is handed out (`allowReserved`), so the test counts them simply. */
const POOLS = `pools:
  - name: public
    cidrs: [10.0.100.0/30]
    namespaces: [web]
    allowReserved: true
  - name: reserved
    cidrs: [10.0.101.0/29]
    autoAssign: false
    allowReserved: true
`;

function poolsConfigMap(text: string): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "kube-gw-pools", namespace: "kube-system" },
    data: { "pools.yaml": text },
  };
}

/** The ingress addresses in a Service's status, as stored by the fake API server. */
function ingressOf(api: FakeApiServer, name: string, namespace: string): string[] {
  const svc = api.get("services", name, namespace);
  const lb = (svc?.status as { loadBalancer?: { ingress?: { ip?: string }[] } } | undefined)
    ?.loadBalancer;
  return (lb?.ingress ?? []).map((i) => i.ip ?? "");
}

/** Events recorded about one object, as `reason: note`. */
function eventsOf(api: FakeApiServer, name: string, namespace: string): string[] {
  return api.objects("events", namespace)
    .filter((e: K8sObject) => (e.regarding as { name?: string } | undefined)?.name === name)
    .map((e: K8sObject) => `${String(e.reason)}: ${String(e.note)}`);
}

function lb(name: string, namespace: string, annotations?: Record<string, string>) {
  return { name, namespace, type: "LoadBalancer", loadBalancerClass: CLASS, annotations };
}

/** A fake API server with the pools ConfigMap, a kubeconfig, and controller processes. */
async function world() {
  const api = await FakeApiServer.start();
  const kc = await writeKubeconfig(api, {});
  api.createObject("configmaps", poolsConfigMap(POOLS));
  const procs: LoggedProcess[] = [];
  return {
    api,
    /** Starts a controller and waits until it is ready (watches synced). */
    async controller(): Promise<{ proc: LoggedProcess; identity: string; port: number }> {
      const port = freePort();
      const proc = startAgent([
        "controller",
        `--kubeconfig=${kc.path}`,
        "--config=kube-system/kube-gw-pools",
        `--metrics-address=127.0.0.1:${port}`,
      ]);
      procs.push(proc);
      const line = await proc.waitForLine(/controller \S+: class/, 20_000);
      const identity = /controller (\S+): class/.exec(line)![1];
      await waitReadyz(port);
      return { proc, identity, port };
    },
    holder(): string | undefined {
      const lease = api.get("leases", "kube-gw-controller", "kube-system");
      return (lease?.spec as { holderIdentity?: string } | undefined)?.holderIdentity || undefined;
    },
    async [Symbol.asyncDispose]() {
      for (const p of procs) await p.stop("SIGKILL");
      await api.close();
      await kc[Symbol.asyncDispose]();
    },
  };
}

Deno.test("two controllers: one leader allocates from the pools, honours requests and refuses what cannot be met; a pools edit applies live; SIGKILL of the leader moves no address", async () => {
  await using w = await world();
  const one = await w.controller();
  const two = await w.controller();
  await waitFor("a leader", () => w.holder() !== undefined, 10_000);
  const [leader, standby] = w.holder() === one.identity ? [one, two] : [two, one];
  assert.equal(w.holder(), leader.identity);

  // A LoadBalancer Service gets the first address of the first pool its namespace may use.
  w.api.create(lb("a", "web"));
  await waitFor("web/a to get an address", () => ingressOf(w.api, "a", "web").length > 0);
  assert.deepEqual(ingressOf(w.api, "a", "web"), ["10.0.100.0"]);
  await waitFor(
    "IPAllocated on web/a",
    () =>
      eventsOf(w.api, "a", "web").some((e) =>
        e.startsWith("IPAllocated: allocated 10.0.100.0 (pool public)")
      ),
  );

  // A requested address in a pool that is not auto-assigned.
  w.api.create(lb("c", "web", { "kube-gw.io/load-balancer-ips": "10.0.101.5" }));
  await waitFor("web/c to get 10.0.101.5", () => ingressOf(w.api, "c", "web")[0] === "10.0.101.5");

  // A taken address.
  w.api.create(lb("d", "web", { "kube-gw.io/load-balancer-ips": "10.0.101.5" }));
  await waitFor(
    "AllocationFailed taken on web/d",
    () => eventsOf(w.api, "d", "web").some((e) => e.startsWith("AllocationFailed: taken")),
  );
  assert.deepEqual(ingressOf(w.api, "d", "web"), []);

  // A namespace outside the pool's list (and no pool open to it).
  w.api.create(lb("b", "other"));
  await waitFor(
    "AllocationFailed on other/b",
    () =>
      eventsOf(w.api, "b", "other").some((e) => /^AllocationFailed: (no_pool|not_allowed)/.test(e)),
  );
  assert.deepEqual(ingressOf(w.api, "b", "other"), []);

  // An exhausted pool: public (a /30) has four addresses; web/a holds one.
  for (const n of ["e1", "e2", "e3"]) w.api.create(lb(n, "web"));
  await waitFor(
    "e1..e3 to get addresses",
    () => ["e1", "e2", "e3"].every((n) => ingressOf(w.api, n, "web").length === 1),
  );
  w.api.create(lb("e4", "web"));
  await waitFor(
    "AllocationFailed pool_exhausted on web/e4",
    () =>
      eventsOf(w.api, "e4", "web").some((e) => e.startsWith("AllocationFailed: pool_exhausted")),
  );
  assert.deepEqual(ingressOf(w.api, "e4", "web"), []);

  // A pools edit: the namespace "other" may now use a new pool; web/e4 too. Nothing held moves.
  const before = new Map(["a", "c", "e1", "e2", "e3"].map((n) => [n, ingressOf(w.api, n, "web")]));
  w.api.patchObject("configmaps", "kube-gw-pools", {
    data: {
      "pools.yaml": POOLS + `  - name: more
    cidrs: [10.0.102.0/30]
    allowReserved: true
`,
    },
  }, "kube-system");
  await waitFor(
    "other/b to get an address from the new pool",
    () => ingressOf(w.api, "b", "other")[0] === "10.0.102.0",
  );
  await waitFor(
    "web/e4 to get an address from the new pool",
    () => ingressOf(w.api, "e4", "web")[0] === "10.0.102.1",
  );
  for (const [n, ips] of before) assert.deepEqual(ingressOf(w.api, n, "web"), ips, n);

  // An invalid edit keeps the last good pools and says why on the ConfigMap.
  w.api.patchObject("configmaps", "kube-gw-pools", {
    data: { "pools.yaml": "pools:\n  - name: public\n    cidrs: [10.0.100.1/30]\n" },
  }, "kube-system");
  await waitFor(
    "InvalidPools on the ConfigMap",
    () =>
      eventsOf(w.api, "kube-gw-pools", "kube-system").some((e) => e.startsWith("InvalidPools:")),
  );
  w.api.create(lb("f", "other"));
  await waitFor(
    "other/f to get an address from the last good pools",
    () => ingressOf(w.api, "f", "other")[0] === "10.0.102.2",
  );

  // The standby is ready, writes nothing, and takes over after the leader is killed.
  const held = new Map(
    w.api.objects("services").map((s) => {
      const md = s.metadata as { name: string; namespace: string };
      return [`${md.namespace}/${md.name}`, ingressOf(w.api, md.name, md.namespace)];
    }),
  );
  const killedAt = performance.now();
  await leader.proc.stop("SIGKILL");
  await standby.proc.waitForLine(/became leader as/, 30_000);
  w.api.create(lb("g", "other"));
  await waitFor(
    "other/g to get an address from the new leader",
    () => ingressOf(w.api, "g", "other").length === 1,
    30_000,
  );
  const takeoverMs = performance.now() - killedAt;
  assert.equal(w.holder(), standby.identity);
  // 15 s lease + 2 s retry and its jitter (up to 2.5 s) + the allocation.
  assert.ok(takeoverMs < 25_000, `took over after ${Math.round(takeoverMs)}ms`);
  console.log(`leader killed -> first allocation by the new leader: ${Math.round(takeoverMs)}ms`);
  for (const [key, ips] of held) {
    const [ns, name] = key.split("/");
    assert.deepEqual(ingressOf(w.api, name, ns), ips, `${key} kept its addresses`);
  }
  assert.deepEqual(ingressOf(w.api, "g", "other"), ["10.0.102.3"]);
});

Deno.test("a controller stopped by SIGTERM releases the Lease and the standby takes over at its next retry", async () => {
  await using w = await world();
  const one = await w.controller();
  await waitFor("one to lead", () => w.holder() === one.identity, 10_000);
  const two = await w.controller();
  w.api.create(lb("a", "web"));
  await waitFor("web/a to get an address", () => ingressOf(w.api, "a", "web").length > 0);
  const status = await one.proc.stop("SIGTERM");
  assert.equal(status.code, 0);
  await one.proc.waitForLine(/released the Lease/, 1000);
  const stoppedAt = performance.now();
  await two.proc.waitForLine(/became leader as/, 10_000);
  // At the standby's next retry (2 s plus up to a quarter of it in jitter), not after the 15 s
  // lease ran out: the margin below the lease is for a loaded machine.
  const tookMs = performance.now() - stoppedAt;
  assert.ok(tookMs < 10_000, `became leader ${Math.round(tookMs)}ms after the release`);
  assert.deepEqual(ingressOf(w.api, "a", "web"), ["10.0.100.0"]);
  // A Service deleted and one that stops being kube-gw's: the new leader frees and clears.
  w.api.create(lb("b", "web"));
  await waitFor("web/b to get an address", () => ingressOf(w.api, "b", "web").length > 0);
  w.api.update({ name: "b", namespace: "web", type: "ClusterIP" });
  await waitFor("web/b's status to be cleared", () => ingressOf(w.api, "b", "web").length === 0);
  w.api.delete("a", "web");
  w.api.create(lb("c", "web"));
  await waitFor("web/c to get a freed address", () => ingressOf(w.api, "c", "web").length > 0);
  assert.deepEqual(ingressOf(w.api, "c", "web"), ["10.0.100.0"]);
});

Deno.test("after start-up the controller, with the shipped flags, cannot run any program (not even ip) nor read its kubeconfig", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kube-gw-planted-ctl-" });
  const api = await FakeApiServer.start();
  try {
    await using kc = await writeKubeconfig(api, {});
    const report = await runPlanted(dir, [
      "controller",
      "--pool=10.0.100.0/24",
      "--leader-elect=false",
      `--kubeconfig=${kc.path}`,
      `--metrics-address=127.0.0.1:${freePort()}`,
    ]);
    assert.deepEqual(
      {
        "run ip": report["run ip"],
        "run /bin/sh": report["run /bin/sh"],
        "query run": report["query run"],
        "read the kubeconfig": report["read the kubeconfig"],
        "read /etc/shadow": report["read /etc/shadow"],
        "write /tmp": report["write /tmp"],
        "query net": report["query net"],
      },
      {
        "run ip": "denied",
        "run /bin/sh": "denied",
        "query run": "prompt",
        "read the kubeconfig": "denied",
        "read /etc/shadow": "denied",
        "write /tmp": "denied",
        // What it needs still works (so "denied" above is not a broken harness).
        "query net": "granted",
      },
    );
  } finally {
    await api.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a status write that hangs holds up no other Service: a new one is written at once", async () => {
  await using w = await world();
  const c = await w.controller();
  await waitFor("a leader", () => w.holder() === c.identity, 10_000);
  // The API server takes stuck's status write and never answers it (the client gives up after
  // its 30 s headers timeout, then retries).
  w.api.hangRequests(/\/namespaces\/web\/services\/stuck\/status$/);
  w.api.create(lb("stuck", "web"));
  await waitFor("stuck's write to hang", () => w.api.heldCount > 0);
  const created = performance.now();
  w.api.create(lb("fresh", "web"));
  await waitFor("web/fresh to get an address", () => ingressOf(w.api, "fresh", "web").length > 0);
  const ms = performance.now() - created;
  console.log(`a new Service written ${Math.round(ms)} ms after its creation, beside a hung write`);
  assert.ok(ms < 5000, `web/fresh waited ${Math.round(ms)} ms behind web/stuck's write`);
  w.api.releaseHeld();
});
