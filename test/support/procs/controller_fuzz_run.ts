/**
 * One fuzz run of `kube-gw controller`, shared by the e2e test (small) and
 * the bench (`deno task bench --only controller_fuzz`): the corpus of
 * `controller_fuzz_corpus.ts` through the fake API server to the controller
 * as a process (the bundle, the shipped flags), `/healthz` polled all along.
 *
 * What it watches, by its own rules (never kube-gw's parser):
 * - every status write: an address kube-gw writes on a Service of its class
 *   must not be shown by another Service of its class that kube-gw wrote or
 *   left as the winner of a claim at start, unless the two may share it
 *   (same namespace, same sharing key of at most 253 characters, no port in
 *   common); at the end, no two Services of its class show one address unless
 *   they may share it;
 * - every refusal has an Event: each Service of its class left without an
 *   address has an `AllocationFailed` Warning, each with a refused externalIP
 *   an `ExternalIPRefused` one, each refused pools edit an `InvalidPools`
 *   one (within the per-object burst of 25);
 * - each pools edit is refused or applied, and how long that took;
 * - the controller's peak RSS, `/healthz` answers, Events posted a second.
 *
 * Returns what it saw; the caller asserts or reports. With `FUZZ_DEBUG` set
 * (and `--allow-env=FUZZ_DEBUG`), every Service event, violation and
 * AllocationFailed note is printed to stderr.
 *
 * @module
 */

import { freePort, startAgent, writeKubeconfig } from "./agent.ts";
import { FakeApiServer, type K8sObject } from "../fakes/apiserver.ts";
import {
  BASE_POOLS,
  controllerFuzzCorpus,
  type ControllerFuzzOptions,
  FUZZ_CLASS,
} from "../fakes/controller_fuzz_corpus.ts";
import { peakRssOf } from "./fuzz_run.ts";
import { waitFor } from "../wait.ts";
import { waitReadyz } from "./status.ts";

const CM = { namespace: "kube-system", name: "kube-gw-pools" };
/** Refusals of one object that get an Event at once (the per-object burst, one spared). */
const REFUSALS_TOLD = 24;
const REFUSED_EXTERNAL = ["127.0.0.1", "010.0.0.1", "::ffff:1.2.3.4", "not an ip"];

/** One pools edit and what became of it. */
export interface PoolsOutcome {
  readonly kind: string;
  readonly bytes: number;
  readonly outcome: "applied" | "refused" | "no answer";
  /** From the edit to the controller's log line saying which. */
  readonly ms: number;
}

/** What one controller fuzz run saw. */
export interface ControllerFuzzResult {
  readonly services: number;
  readonly steps: number;
  readonly pools: readonly PoolsOutcome[];
  /** Addresses kube-gw wrote that another Service of its class showed, not sharing (while running). */
  readonly violations: readonly string[];
  /** The same at the end, over every Service of its class. */
  readonly finalViolations: readonly string[];
  /** Services of its class at the end, with and without an address. */
  readonly withAddress: number;
  readonly withoutAddress: number;
  /** Refusals without their Event (Services, externalIPs, pools edits within the burst). */
  readonly unexplained: readonly string[];
  /** Why the Services of its class without an address have none: the reason of their last Warning. */
  readonly failures: Readonly<Record<string, number>>;
  /** Pools refusals past the per-object burst (their Events are rate-limited, not expected). */
  readonly refusalsPastBurst: number;
  readonly statusWrites: number;
  readonly eventsPosted: number;
  /** The most Event POSTs that arrived within one second (arrival jitter may add one). */
  readonly busiestEventSecond: number;
  /** Event POSTs a second over the busiest ten seconds. */
  readonly eventRate10s: number;
  readonly healthz: { readonly polls: number; readonly failures: number; readonly maxMs: number };
  /** The controller's peak resident memory (VmHWM), in bytes. */
  readonly peakRss: number;
  readonly exitCode: number;
  readonly ms: number;
}

function meta(o: K8sObject): { namespace: string; name: string; uid: string } {
  return o.metadata as unknown as { namespace: string; name: string; uid: string };
}

function keyOf(o: K8sObject): string {
  const m = meta(o);
  return `${m.namespace}/${m.name}`;
}

function record(o: unknown): Record<string, unknown> {
  return typeof o === "object" && o !== null && !Array.isArray(o)
    ? o as Record<string, unknown>
    : {};
}

function ours(o: K8sObject): boolean {
  const spec = record(o.spec);
  return spec.type === "LoadBalancer" && spec.loadBalancerClass === FUZZ_CLASS;
}

function ingressOf(o: K8sObject): string[] {
  const ing = record(record(o.status).loadBalancer).ingress;
  return Array.isArray(ing)
    ? ing.map((i) => record(i).ip).filter((ip): ip is string => typeof ip === "string")
    : [];
}

/** The ports as (protocol, number) texts; an unknown protocol overlaps nothing. */
function portsOf(o: K8sObject): Set<string> {
  const out = new Set<string>();
  const ports = record(o.spec).ports;
  if (!Array.isArray(ports)) return out;
  for (const p of ports) {
    const port = record(p).port;
    if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) continue;
    const proto = record(p).protocol ?? "TCP";
    const known = ["TCP", "UDP", "SCTP"].includes(proto as string);
    out.add(known ? `${proto}/${port}` : `?${out.size}`);
  }
  return out;
}

/** Whether two Services may show one address: the sharing rules, read from the objects. */
function mayShare(a: K8sObject, b: K8sObject): boolean {
  if (meta(a).namespace !== meta(b).namespace) return false;
  const key = (o: K8sObject) =>
    record(record(o.metadata).annotations)["kube-gw.io/allow-shared-ip"];
  const ka = key(a);
  if (typeof ka !== "string" || ka === "" || ka.length > 253 || ka !== key(b)) return false;
  const pa = portsOf(a);
  const pb = portsOf(b);
  if (pa.size === 0 || pb.size === 0) return true;
  for (const p of pa) if (pb.has(p)) return false;
  return true;
}

/** The busiest window of `windowMs` among sorted times. */
function busiest(times: readonly number[], windowMs = 1000): number {
  let most = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i] - times[j] >= windowMs) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

/** Runs the controller on a corpus; cleans up everything it started, whatever happens. */
export async function runControllerFuzz(
  o: ControllerFuzzOptions,
  progress: (what: string) => void = () => {},
): Promise<ControllerFuzzResult> {
  const corpus = controllerFuzzCorpus(o);
  await using api = await FakeApiServer.start();
  await using kc = await writeKubeconfig(api, {});
  api.createObject("configmaps", {
    metadata: CM,
    data: { "pools.yaml": BASE_POOLS },
  });
  api.seedObjects("services", corpus.seeded);

  // What the watch stream says, Service by Service, and which statuses kube-gw is answerable for.
  const state = new Map<string, K8sObject>();
  const answerable = new Set<string>();
  const violations: string[] = [];
  const seededOurs = api.objects("services").filter(ours);
  for (const s of api.objects("services")) state.set(keyOf(s), s);
  // The winners of the claims at start, by the rebuild's rule (oldest, then namespace/name).
  const holders = new Map<string, K8sObject[]>();
  for (const s of seededOurs.sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : 1))) {
    const mine = ingressOf(s);
    for (const ip of mine) {
      const h = holders.get(ip) ?? [];
      if (h.every((x) => mayShare(x, s))) {
        h.push(s);
        holders.set(ip, h);
        answerable.add(keyOf(s));
      }
    }
  }
  let statusWrites = 0;
  api.onEventWritten = (type, obj) => {
    if (obj.kind !== "Service") return;
    const key = keyOf(obj);
    if (Deno.env.get("FUZZ_DEBUG")) {
      console.error(
        `EV ${type} ${key} rv=${record(obj.metadata).resourceVersion} ours=${ours(obj)} ingress=${
          ingressOf(obj)
        } ann=${JSON.stringify(record(obj.metadata).annotations)} fam=${
          JSON.stringify(record(obj.spec).ipFamilies)
        } pol=${record(obj.spec).ipFamilyPolicy}`,
      );
    }
    if (type === "DELETED") {
      state.delete(key);
      answerable.delete(key);
      return;
    }
    const before = state.get(key);
    state.set(key, obj);
    const now = ingressOf(obj);
    if (!before || JSON.stringify(ingressOf(before)) === JSON.stringify(now)) return;
    // Only kube-gw writes statuses once the run started.
    statusWrites++;
    answerable.add(key);
    if (!ours(obj)) return;
    for (const [other, t] of state) {
      if (other === key || !ours(t) || !answerable.has(other)) continue;
      for (const ip of ingressOf(t)) {
        if (now.includes(ip) && !mayShare(obj, t)) {
          violations.push(`${ip} written on ${key} while ${other} shows it`);
          if (Deno.env.get("FUZZ_DEBUG")) {
            const show = (x: K8sObject) =>
              JSON.stringify({
                rv: record(x.metadata).resourceVersion,
                ann: record(x.metadata).annotations,
                spec: { ...record(x.spec), ports: portsOf(x).size },
                ingress: ingressOf(x),
              });
            console.error(`VIOLATION ${ip}: ${key} ${show(obj)} / ${other} ${show(t)}`);
          }
        }
      }
    }
  };
  const eventPosts: number[] = [];
  api.onRequest = (r) => {
    if (r.method === "POST" && r.resource === "events") eventPosts.push(r.at);
  };

  const port = freePort();
  const t0 = performance.now();
  const proc = startAgent([
    "controller",
    `--kubeconfig=${kc.path}`,
    `--config=${CM.namespace}/${CM.name}`,
    "--leader-elect=false",
    `--metrics-address=127.0.0.1:${port}`,
    "--log-level=info",
  ]);
  const healthz = { polls: 0, failures: 0, maxMs: 0 };
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const t = performance.now();
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`, {
          signal: AbortSignal.timeout(5000),
        });
        await res.body?.cancel();
        if (res.status !== 200) healthz.failures++;
      } catch {
        if (healthz.polls > 0) healthz.failures++;
      }
      if (healthz.polls > 0) healthz.maxMs = Math.max(healthz.maxMs, performance.now() - t);
      healthz.polls++;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    await waitReadyz(port, 60_000);
    // The first poll may have come before the server listened.
    Object.assign(healthz, { polls: 1, failures: 0, maxMs: 0 });
    const pools: PoolsOutcome[] = [];
    const unexplained: string[] = [];
    let refusals = 0;
    let refusalsPastBurst = 0;
    let lastRefusal = "";
    const poolsLine = /pools in force|pools ConfigMap \S+ refused/;
    const invalidPools = () =>
      api.objects("events", CM.namespace).filter((e) => e.reason === "InvalidPools").length;
    for (const step of corpus.steps) {
      if (step.op === "apply") {
        api.applyObject("services", step.object);
      } else if (step.op === "delete") {
        api.delete(step.name, step.namespace);
      } else {
        const from = proc.lines.length;
        const told = invalidPools();
        const t = performance.now();
        api.patchObject(
          "configmaps",
          CM.name,
          { data: { "pools.yaml": step.doc.text } },
          CM.namespace,
        );
        const line = await proc.waitForLine(poolsLine, 30_000, from).catch(() => "");
        const ms = performance.now() - t;
        const outcome = line === ""
          ? "no answer"
          : line.includes("refused")
          ? "refused"
          : "applied";
        pools.push({ kind: step.doc.kind, bytes: step.doc.text.length, outcome, ms });
        progress(`pools ${pools.length}: ${step.doc.kind}: ${outcome} in ${ms.toFixed(0)} ms`);
        if (outcome === "applied") lastRefusal = "";
        if (outcome !== "refused") continue;
        const why = line.slice(line.indexOf("refused"));
        if (why === lastRefusal) continue;
        lastRefusal = why;
        refusals++;
        if (refusals > REFUSALS_TOLD) {
          refusalsPastBurst++;
          continue;
        }
        // Behind the Warnings of every Service that fails, at 10 a second: patience grows with them.
        await waitFor(
          `the InvalidPools Event of ${step.doc.kind}`,
          () => invalidPools() > told,
          Math.max(30_000, 150 * o.services),
          20,
        )
          .catch(() => unexplained.push(`pools edit "${step.doc.kind}": no InvalidPools Event`));
      }
    }
    // Quiet: every Service of kube-gw's class has an address or its Warning.
    const eventsOf = () => {
      const by = new Map<string, Set<string>>();
      for (const e of api.objects("events")) {
        const r = record(e.regarding);
        const k = `${r.namespace}/${r.name}/${r.uid}`;
        let set = by.get(k);
        if (!set) by.set(k, set = new Set());
        set.add(String(e.reason));
      }
      return by;
    };
    const missing = (): string[] => {
      const by = eventsOf();
      const out: string[] = [];
      for (const s of api.objects("services")) {
        if (!ours(s)) continue;
        const m = meta(s);
        const reasons = by.get(`${m.namespace}/${m.name}/${m.uid}`) ?? new Set();
        if (ingressOf(s).length === 0 && !reasons.has("AllocationFailed")) {
          out.push(`${m.namespace}/${m.name}: no address and no AllocationFailed`);
        }
        const ext = record(s.spec).externalIPs;
        if (
          Array.isArray(ext) && ext.some((v) => REFUSED_EXTERNAL.includes(v)) &&
          !reasons.has("ExternalIPRefused")
        ) {
          out.push(`${m.namespace}/${m.name}: a refused externalIP and no ExternalIPRefused`);
        }
      }
      return out;
    };
    progress("all steps done; waiting for every refusal's Event");
    let quiet: string[] = [];
    // At 10 Events a second, a few tenths of a second for each Service and edit at most.
    const patience = Math.max(120_000, 300 * (o.services + o.edits));
    await waitFor("every refusal's Event", () => (quiet = missing()).length === 0, patience, 200)
      .catch(() => {});
    unexplained.push(...quiet);
    const finalViolations: string[] = [];
    const all = api.objects("services").filter(ours);
    const byIp = new Map<string, K8sObject[]>();
    for (const s of all) {
      for (const ip of ingressOf(s)) byIp.set(ip, [...(byIp.get(ip) ?? []), s]);
    }
    for (const [ip, list] of byIp) {
      for (let i = 0; i < list.length; i++) {
        for (let j = i + 1; j < list.length; j++) {
          if (!mayShare(list[i], list[j])) {
            finalViolations.push(`${ip} on ${keyOf(list[i])} and ${keyOf(list[j])}`);
          }
        }
      }
    }
    const ms = performance.now() - t0;
    const peakRss = await peakRssOf(proc.pid);
    polling = false;
    await poller;
    const exitCode = (await proc.stop("SIGTERM")).code;
    const withAddress = all.filter((s) => ingressOf(s).length > 0).length;
    const failures: Record<string, number> = {};
    const lastFailure = new Map<string, string>();
    for (const e of api.objects("events")) {
      if (e.reason !== "AllocationFailed") continue;
      const r = record(e.regarding);
      lastFailure.set(`${r.namespace}/${r.name}/${r.uid}`, String(e.note).split(":")[0]);
      if (Deno.env.get("FUZZ_DEBUG")) console.error(`${r.namespace}/${r.name}: ${String(e.note)}`);
    }
    for (const s of all) {
      if (ingressOf(s).length > 0) continue;
      const m = meta(s);
      const why = lastFailure.get(`${m.namespace}/${m.name}/${m.uid}`) ?? "none";
      failures[why] = (failures[why] ?? 0) + 1;
    }
    return {
      services: corpus.seeded.length,
      steps: corpus.steps.length,
      pools,
      violations,
      finalViolations,
      withAddress,
      withoutAddress: all.length - withAddress,
      failures,
      unexplained,
      refusalsPastBurst,
      statusWrites,
      eventsPosted: eventPosts.length,
      busiestEventSecond: busiest(eventPosts),
      eventRate10s: busiest(eventPosts, 10_000) / 10,
      healthz,
      peakRss,
      exitCode,
      ms,
    };
  } finally {
    polling = false;
    await poller;
    await proc.stop("SIGKILL");
  }
}
