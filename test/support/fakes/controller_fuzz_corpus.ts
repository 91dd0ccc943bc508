/**
 * A seeded corpus of hostile input for the LoadBalancer controller's fuzz
 * run: pools.yaml documents (alias bombs, deep nesting, megabyte strings,
 * too many pools, every wrong type, non-canonical and special CIDRs,
 * overlaps, YAML tags, binary, and valid ones between them), Services with
 * hostile annotations (addresses in every spelling, unknown and huge pool
 * names, sharing keys short, long and odd), ports (many, overlapping, junk),
 * families, classes and types, status claims (contested, junk), and a
 * schedule of edits. Deterministic for a seed. The checks are the runner's
 * (`test/support/procs/controller_fuzz_run.ts`); what the corpus promises is
 * only its shape, never what kube-gw makes of it.
 *
 * @module
 */

import fc from "fast-check";

/** The controller's class in the run. */
export const FUZZ_CLASS = "kube-gw.io/anycast";
/** Namespaces the Services live in. */
export const FUZZ_NAMESPACES = ["web", "shop", "dns", "other"] as const;

/** The pools in force at the start and at the end of every run: small, so some run out. */
export const BASE_POOLS = `pools:
  - name: public
    cidrs: [10.0.100.0/26, 2001:db8:100::/122]
  - name: web-only
    cidrs: [10.0.101.0/28]
    namespaces: [web]
  - name: manual
    cidrs: [10.0.102.0/28]
    autoAssign: false
`;

/** Options of {@linkcode controllerFuzzCorpus}. */
export interface ControllerFuzzOptions {
  readonly seed: number;
  /** Services seeded before the controller starts. */
  readonly services: number;
  /** Service edits (create, update, delete) during the run. */
  readonly edits: number;
  /** pools.yaml documents applied during the run (the base one last). */
  readonly poolsDocs: number;
  /** The largest documents are about this long. @default 1 MiB - 64 */
  readonly hugeChars?: number;
}

/** One pools.yaml document, with what kind of hostility it is. */
export interface PoolsDoc {
  readonly kind: string;
  readonly text: string;
}

/** One step of the schedule. */
export type FuzzStep =
  | { readonly op: "pools"; readonly doc: PoolsDoc }
  | { readonly op: "apply"; readonly object: Record<string, unknown> }
  | { readonly op: "delete"; readonly namespace: string; readonly name: string };

/** What {@linkcode controllerFuzzCorpus} generated. */
export interface ControllerFuzzCorpus {
  /** Service objects as the API would store them, statuses included. */
  readonly seeded: Record<string, unknown>[];
  readonly steps: readonly FuzzStep[];
}

const ADDRESSES = [
  "10.0.100.5",
  "10.0.100.0",
  "10.0.100.63",
  "10.0.101.3",
  "10.0.102.7",
  "2001:db8:100::9",
  "2001:db8:100::",
  "10.9.9.9",
  "192.0.2.7",
  "010.0.100.5",
  "10.0.100.05",
  " 10.0.100.6",
  "10.0.100.7\n",
  "10.0.100.5,2001:db8:100::5",
  "10.0.100.5,10.0.100.6",
  "10.0.100.5,2001:db8:100::5,10.0.100.7",
  "2001:DB8:100::5",
  "::ffff:10.0.100.5",
  "127.0.0.1",
  "224.0.0.1",
  "１０.0.100.5",
  "10.0.100\u200b.5",
  "$(touch /tmp/kube-gw-ctl-fuzz)",
  "",
  ",",
];
const POOL_NAMES = ["public", "web-only", "manual", "nope", "PUBLIC", " public", "a".repeat(300)];
const KEYS = [
  "k1",
  "k2",
  "",
  "dns",
  "ķey",
  "k1 ",
  "x".repeat(253),
  "x".repeat(254),
  "y".repeat(300),
];
const EXTERNAL = ["10.0.100.30", "127.0.0.1", "010.0.0.1", "::ffff:1.2.3.4", "not an ip"];

/** A seeded choice of one of `items`. */
type Pick = <T>(items: readonly T[]) => T;

function ports(pick: Pick, rnd: () => number): unknown {
  const r = rnd();
  if (r < 0.05) {
    // A wide range, and one port at its end (or past the first 64).
    const from = 1000;
    const to = pick([1063, 1099, 1500]);
    return Array.from({ length: to - from + 1 }, (_, i) => ({ port: from + i, protocol: "TCP" }));
  }
  if (r < 0.08) {
    return [{ port: 0 }, { port: 70000 }, { port: "80" }, { port: -1 }, { port: 1.5 }, {
      port: 81,
      protocol: pick(["tcp", "HTTP", 5, "SCTP"]),
    }];
  }
  if (r < 0.1) return pick([null, "80", { port: 80 }, [null]]);
  const n = 1 + Math.floor(rnd() * 3);
  return Array.from({ length: n }, () => ({
    port: pick([53, 80, 443, 1000, 1001, 1099]),
    protocol: pick(["TCP", "TCP", "UDP"]),
  }));
}

function service(
  namespace: string,
  name: string,
  pick: Pick,
  rnd: () => number,
  withStatus: boolean,
): Record<string, unknown> {
  const annotations: Record<string, unknown> = {};
  if (rnd() < 0.5) annotations["kube-gw.io/load-balancer-ips"] = pick([...ADDRESSES, 42]);
  if (rnd() < 0.3) annotations["kube-gw.io/pool"] = pick(POOL_NAMES);
  if (rnd() < 0.35) annotations["kube-gw.io/allow-shared-ip"] = pick(KEYS);
  const cls = rnd();
  const families = pick<unknown>([
    undefined,
    ["IPv4"],
    ["IPv4"],
    ["IPv6"],
    ["IPv4", "IPv6"],
    ["IPv6", "IPv4"],
    ["IPv5"],
    "IPv4",
  ]);
  const spec: Record<string, unknown> = {
    type: pick(["LoadBalancer", "LoadBalancer", "LoadBalancer", "LoadBalancer", "ClusterIP", 5]),
    ports: ports(pick, rnd),
    ...(cls < 0.8
      ? { loadBalancerClass: FUZZ_CLASS }
      : cls < 0.9
      ? { loadBalancerClass: "other.example/lb" }
      : {}),
    ...(families !== undefined ? { ipFamilies: families } : {}),
    ipFamilyPolicy: pick([
      "SingleStack",
      "SingleStack",
      "PreferDualStack",
      "RequireDualStack",
      "Odd",
    ]),
    ...(rnd() < 0.1 ? { externalIPs: [pick(EXTERNAL), pick(EXTERNAL)] } : {}),
  };
  const obj: Record<string, unknown> = {
    metadata: { namespace, name, annotations },
    spec,
  };
  if (withStatus && rnd() < 0.35) {
    // Claims, some contested (a few addresses, many Services), some junk.
    const ip = pick([
      "10.0.100.1",
      "10.0.100.2",
      "10.0.100.3",
      "10.0.101.1",
      "2001:db8:100::1",
      "192.0.2.7",
      "010.0.100.4",
      "10.0.100.0",
    ]);
    obj.status = { loadBalancer: { ingress: [{ ip, ipMode: "VIP" }] } };
  }
  return obj;
}

/** Nested YAML anchors: a few hundred bytes that stand for `9^depth` nodes. */
function aliasBomb(depth: number, where: "top" | "field"): string {
  const lines = [`a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]`];
  for (let i = 1; i < depth; i++) {
    lines.push(`a${i}: &a${i} [${Array(9).fill(`*a${i - 1}`).join(", ")}]`);
  }
  if (where === "top") return `${lines.join("\n")}\npools: []\n`;
  return `x:\n${lines.map((l) => `  ${l}`).join("\n")}\npools:\n  - name: bomb\n    cidrs: *a${
    depth - 1
  }\n`;
}

/** `n` /32 CIDRs in 10.64.0.0/10, each once. */
function hosts(from: number, n: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const v = from + i;
    return `10.${64 + (v >> 16)}.${(v >> 8) & 255}.${v & 255}/32`;
  });
}

/** The hostile and valid documents, in a seeded order, the base one last. */
function poolsDocs(
  o: ControllerFuzzOptions,
  sample: <T>(a: fc.Arbitrary<T>, n: number, salt: number) => T[],
): PoolsDoc[] {
  const huge = o.hugeChars ?? (1 << 20) - 64;
  const fixed: PoolsDoc[] = [
    { kind: "alias bomb", text: aliasBomb(9, "top") },
    { kind: "alias bomb in a failing field", text: aliasBomb(9, "field") },
    { kind: "deep nesting", text: `pools: ${"[".repeat(huge / 2 - 8)}${"]".repeat(huge / 2 - 8)}` },
    {
      kind: "huge name",
      text: `pools:\n  - name: "${"a".repeat(huge - 40)}"\n    cidrs: [10.0.103.0/24]\n`,
    },
    { kind: "over 1 MiB", text: `pools: []\n#${"x".repeat(1 << 20)}\n` },
    {
      kind: "300 pools",
      text: `pools:\n${
        Array.from({ length: 300 }, (_, i) => `  - {name: p${i}, cidrs: [${hosts(i, 1)[0]}]}`)
          .join("\n")
      }\n`,
    },
    {
      kind: "256 pools of 64 CIDRs (valid)",
      text: `pools:\n${
        Array.from(
          { length: 256 },
          (_, i) => `  - {name: p${i}, cidrs: [${hosts(i * 64, 64).join(", ")}]}`,
        ).join("\n")
      }\n`,
    },
    {
      kind: "100,000 keys",
      text: `pools: []\n${Array.from({ length: 100_000 }, (_, i) => `k${i}: 1`).join("\n")}\n`,
    },
    {
      kind: "a namespace list of a megabyte",
      text: `pools:\n  - name: ns\n    cidrs: [10.0.103.0/24]\n    namespaces: [${
        Array.from({ length: Math.floor(huge / 12) }, (_, i) => `ns-${i}`).join(", ")
      }]\n`,
    },
    { kind: "a list of a megabyte", text: `pools:\n${"  - 1\n".repeat(Math.floor(huge / 6))}` },
    { kind: "empty (valid)", text: "" },
    {
      kind: "an extra pool (valid)",
      text: `${BASE_POOLS}  - name: extra\n    cidrs: [10.0.103.0/29]\n    allowReserved: true\n`,
    },
  ];
  const badCidrs = [
    "010.0.103.0/24",
    "10.0.103.1/24",
    "10.0.103.0/33",
    "10.0.0.0/8",
    "127.0.0.0/16",
    "224.0.0.0/16",
    "169.254.0.0/16",
    "0.0.0.0/16",
    "255.255.255.255/32",
    "ff00::/48",
    "fe80::/64",
    "::ffff:10.0.103.0/120",
    "2001:DB8::/64",
    "2001:db8:0::/64",
    "１０.0.103.0/24",
    "10.0.103.0/24\n",
    "10.0.100.0/27",
  ];
  const badFields = [
    "autoAssign: yes",
    'autoAssign: "true"',
    "autoAssign: 1",
    "allowReserved: on",
    "namespaces: web",
    "namespaces: [Web]",
    "namespaces: [5]",
    "cidrs: 10.0.103.0/24",
    "cidrs: []",
    "name: 5",
    "name: Bad_Name",
    "autoassign: true",
    "cidrs: !!binary aGVsbG8=",
    "cidrs: !!js/function 'function(){}'",
    "cidrs: 2024-01-01",
  ];
  const generated: PoolsDoc[] = [];
  for (const c of badCidrs) {
    generated.push({
      kind: "bad CIDR",
      text: `pools:\n  - name: t\n    cidrs: [${JSON.stringify(c)}]\n`,
    });
  }
  for (const f of badFields) {
    generated.push({
      kind: "bad field",
      text: `pools:\n  - name: t\n    cidrs: [10.0.103.0/24]\n    ${f}\n`,
    });
  }
  generated.push(
    { kind: "overlap", text: `${BASE_POOLS}  - name: t\n    cidrs: [10.0.100.32/27]\n` },
    { kind: "duplicate name", text: `${BASE_POOLS}  - name: public\n    cidrs: [10.0.103.0/24]\n` },
    { kind: "duplicate key", text: "pools: []\npools: []\n" },
    { kind: "two documents", text: "pools: []\n---\npools: []\n" },
    { kind: "tab", text: "pools:\n\t- name: t\n" },
    { kind: "NUL", text: "pools: [\u0000]\n" },
    { kind: "not a mapping", text: "- pools\n" },
  );
  for (const text of sample(fc.string({ unit: "binary", maxLength: 200 }), 6, 11)) {
    generated.push({ kind: "noise", text });
  }
  // Shuffle the generated ones, seeded; keep the fixed ones first (the worst), cut to the size
  // asked for, and end with the base pools.
  const order = sample(fc.integer(), generated.length, 12);
  const shuffled = generated.map((d, i) => ({ d, k: order[i] })).sort((a, b) => a.k - b.k)
    .map((x) => x.d);
  const all = [...fixed, ...shuffled];
  const docs = all.slice(0, Math.max(1, o.poolsDocs - 1));
  return [...docs, { kind: "the base pools (valid)", text: BASE_POOLS }];
}

/**
 * A small seeded generator of uniform numbers in [0, 1) (mulberry32): fast-check's
 * own arbitraries are biased towards edge values, which would pick the first choice
 * of every list far too often.
 */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Generates the corpus, deterministically from `seed`. */
export function controllerFuzzCorpus(o: ControllerFuzzOptions): ControllerFuzzCorpus {
  const sample = <T>(arb: fc.Arbitrary<T>, n: number, salt: number) =>
    fc.sample(arb, { seed: o.seed + salt, numRuns: n });
  const rnd = mulberry32(o.seed);
  const pick: Pick = (items) => items[Math.floor(rnd() * items.length)];
  const seeded: Record<string, unknown>[] = [];
  const names: { namespace: string; name: string }[] = [];
  for (let s = 0; s < o.services; s++) {
    const namespace = pick(FUZZ_NAMESPACES);
    const name = `svc-${s}`;
    names.push({ namespace, name });
    seeded.push(service(namespace, name, pick, rnd, true));
  }
  const docs = poolsDocs(o, sample);
  const steps: FuzzStep[] = [];
  const during = docs.slice(0, -1);
  const every = Math.max(1, Math.floor(o.edits / Math.max(1, during.length)));
  let created = 0;
  let d = 0;
  for (let e = 0; e < o.edits; e++) {
    if (e % every === 0 && d < during.length) steps.push({ op: "pools", doc: during[d++] });
    const r = rnd();
    if (r < 0.4 || names.length === 0) {
      const namespace = pick(FUZZ_NAMESPACES);
      const name = `new-${created++}`;
      names.push({ namespace, name });
      steps.push({ op: "apply", object: service(namespace, name, pick, rnd, false) });
    } else if (r < 0.85) {
      const { namespace, name } = pick(names);
      steps.push({ op: "apply", object: service(namespace, name, pick, rnd, false) });
    } else {
      const [gone] = names.splice(Math.floor(rnd() * names.length), 1);
      steps.push({ op: "delete", ...gone });
    }
  }
  while (d < during.length) steps.push({ op: "pools", doc: during[d++] });
  steps.push({ op: "pools", doc: docs.at(-1)! });
  return { seeded, steps };
}
