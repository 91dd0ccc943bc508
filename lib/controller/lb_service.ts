/**
 * The part of a Service the LoadBalancer controller needs, read from the API's
 * JSON as hostile input: every string is bounded, every list capped, every
 * non-string kept as a marker that later parsing refuses (so a broken value is
 * reported, never silently dropped), and the whole object is never kept.
 *
 * Also: whether a Service is kube-gw's ({@linkcode isOurs}), and which of its
 * externalIPs the agents refuse ({@linkcode externalIpRefusals}), decided by
 * the agents' own rules in `desired.ts`.
 *
 * @module
 */

import { type Cidr, parseCidr } from "../base/cidr.ts";
import { isObject } from "../base/shape.ts";
import { serviceParts } from "../service/record.ts";
import { evaluateService, type Rejection } from "../service/eligibility.ts";

/** The annotation listing the addresses a Service asks for (comma-separated). */
export const ANNOTATION_IPS = "kube-gw.io/load-balancer-ips";
/** The annotation naming the pool a Service takes its addresses from. */
export const ANNOTATION_POOL = "kube-gw.io/pool";
/** The annotation whose value lets Services of one namespace share an address. */
export const ANNOTATION_SHARED = "kube-gw.io/allow-shared-ip";

/** Longest string kept from any field; longer ones are cut and marked (`…`). */
export const MAX_STRING = 256;
/** Most entries kept from any list (externalIPs, ingress, ipFamilies); ports are kept whole. */
export const MAX_LIST = 64;
/**
 * Longest `kube-gw.io/allow-shared-ip` key (a DNS subdomain's length); a
 * longer one is refused, never cut, so two different keys never share.
 */
export const MAX_SHARING_KEY = 253;

/** One port of a Service, as far as address sharing is concerned. */
export interface LbPort {
  /** `TCP`, `UDP` or `SCTP` (the API's default is `TCP`). */
  readonly protocol: string;
  readonly port: number;
}

/** `spec.ipFamilyPolicy`; an unknown value reads as `SingleStack`. */
export type IpFamilyPolicy = "SingleStack" | "PreferDualStack" | "RequireDualStack";

/** What the controller keeps of one Service. Structurally also a `ServiceRecord`. */
export interface LbServiceRecord {
  readonly namespace: string;
  readonly name: string;
  /** `metadata.uid`; empty when absent. */
  readonly uid: string;
  /** `metadata.resourceVersion`; empty when absent. */
  readonly resourceVersion: string;
  /** `metadata.creationTimestamp` in ms since the epoch; absent when missing or unreadable. */
  readonly created?: number;
  /** `spec.type`; the API defaults it to `ClusterIP`. */
  readonly type: string;
  /** `spec.clusterIP`; `None` for a headless Service. */
  readonly clusterIP: string;
  /** `spec.loadBalancerClass`; absent means no class. */
  readonly loadBalancerClass?: string;
  /** Raw value of `kube-gw.io/load-balancer-ips`. */
  readonly requestedIPs?: string;
  /** Raw value of `kube-gw.io/pool`. */
  readonly pool?: string;
  /** Raw value of `kube-gw.io/allow-shared-ip`. */
  readonly sharingKey?: string;
  /** Raw `spec.loadBalancerIP` (deprecated); absent or empty means none. */
  readonly loadBalancerIP?: string;
  /** `spec.ipFamilies` in order, unknown entries dropped, no repeats. */
  readonly ipFamilies: readonly (4 | 6)[];
  readonly ipFamilyPolicy: IpFamilyPolicy;
  /** Every port with a valid number (1 to 65535), each (protocol, number) once; the rest dropped. */
  readonly ports: readonly LbPort[];
  /** Raw `spec.externalIPs` (non-strings as their JSON text). */
  readonly externalIPs: readonly string[];
  /** Raw `status.loadBalancer.ingress[].ip`, entries without `ip` skipped. */
  readonly ingressIPs: readonly string[];
  /** Fields that were cut to the bounds above (for one warning), usually empty. */
  readonly truncated: readonly string[];
}

/** Reads a bounded string; a non-string becomes its (bounded) JSON text so it parses as invalid. */
function str(v: unknown, field: string, truncated: string[]): string | undefined {
  if (v === undefined || v === null) return undefined;
  let s: string;
  if (typeof v === "string") {
    s = v;
  } else {
    try {
      s = `<${typeof v}:${JSON.stringify(v)?.slice(0, 32) ?? ""}>`;
    } catch {
      s = `<${typeof v}>`;
    }
  }
  if (s.length > MAX_STRING) {
    if (!truncated.includes(field)) truncated.push(field);
    return `${s.slice(0, MAX_STRING)}…`;
  }
  return s;
}

function list(v: unknown, field: string, truncated: string[]): unknown[] {
  if (!Array.isArray(v)) return [];
  if (v.length > MAX_LIST) {
    if (!truncated.includes(field)) truncated.push(field);
    return v.slice(0, MAX_LIST);
  }
  return v;
}

const POLICIES = new Set<string>(["SingleStack", "PreferDualStack", "RequireDualStack"]);

/*
 * A record lives as long as its Service's version, 10,000 of them in a large
 * cluster, and every watch event makes a new one: it holds no spare capacity.
 * Empty lists are one shared frozen array, the family lists are shared
 * constants, other lists are allocated at their final length (an array grown
 * by push reserves 17 slots), and the strings most Services repeat (type,
 * class, namespace, protocol) are shared through a small bounded table.
 */
const EMPTY: readonly never[] = Object.freeze([]);
const FAMILIES: Readonly<Record<string, readonly (4 | 6)[]>> = {
  "4": Object.freeze([4 as const]),
  "6": Object.freeze([6 as const]),
  "4,6": Object.freeze([4 as const, 6 as const]),
  "6,4": Object.freeze([6 as const, 4 as const]),
};
const PROTOCOLS: Readonly<Record<string, string>> = { TCP: "TCP", UDP: "UDP", SCTP: "SCTP" };
/** Most distinct strings shared; a full table is emptied and starts over. */
const SHARED_LIMIT = 4096;
const shared = new Map<string, string>();

/** One copy of a string many records repeat (short strings only). */
function share(s: string | undefined): string | undefined {
  if (s === undefined || s.length > 64) return s;
  const known = shared.get(s);
  if (known !== undefined) return known;
  if (shared.size >= SHARED_LIMIT) shared.clear();
  shared.set(s, s);
  return s;
}

/** `items` as an array of its exact length, or the shared empty one. */
function exact<T>(items: T[]): readonly T[] {
  return items.length === 0 ? EMPTY : items.length === 1 ? [items[0]] : items.slice();
}

/** RFC 3339 as the API writes it (`2024-05-01T12:00:00Z`, maybe with a fraction or an offset). */
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/;

/** `metadata.creationTimestamp` in ms since the epoch, or `undefined`. */
function creationTime(v: unknown): number | undefined {
  if (typeof v !== "string" || !RFC3339.test(v)) return undefined;
  const ms = Date.parse(v);
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * Decodes a Service object from the API into an {@linkcode LbServiceRecord}.
 *
 * @throws {ShapeError} when metadata, metadata.name or metadata.namespace is
 *   missing or not a string, or a name is longer than 253 characters.
 */
export function decodeLbService(obj: unknown): LbServiceRecord {
  const { namespace, name, meta, spec, lb } = serviceParts(obj);
  const ann = isObject(meta.annotations) ? meta.annotations : {};
  const t: string[] = [];

  const families: (4 | 6)[] = [];
  for (const f of list(spec.ipFamilies, "spec.ipFamilies", t)) {
    const fam = f === "IPv4" ? 4 : f === "IPv6" ? 6 : undefined;
    if (fam !== undefined && !families.includes(fam)) families.push(fam);
  }
  const policy = typeof spec.ipFamilyPolicy === "string" && POLICIES.has(spec.ipFamilyPolicy)
    ? share(spec.ipFamilyPolicy) as IpFamilyPolicy
    : "SingleStack";

  // Every port, not the first MAX_LIST: sharing an address compares them all. Repeats are
  // dropped, so the list is bounded by the distinct (protocol, port) pairs.
  const ports: LbPort[] = [];
  const seenPorts = new Set<string>();
  for (const p of Array.isArray(spec.ports) ? spec.ports : []) {
    if (!isObject(p)) continue;
    const port = p.port;
    if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) continue;
    const protocol = typeof p.protocol === "string" && /^[A-Z]{1,8}$/.test(p.protocol)
      ? PROTOCOLS[p.protocol] ?? p.protocol
      : "TCP";
    const id = `${protocol}/${port}`;
    if (seenPorts.has(id)) continue;
    seenPorts.add(id);
    ports.push({ protocol: share(protocol)!, port });
  }

  const externalIPs: string[] = [];
  for (const ip of list(spec.externalIPs, "spec.externalIPs", t)) {
    externalIPs.push(str(ip, "spec.externalIPs", t) ?? "null");
  }
  const ingressIPs: string[] = [];
  for (const ing of list(lb.ingress, "status.loadBalancer.ingress", t)) {
    if (!isObject(ing) || ing.ip === undefined || ing.ip === "") continue;
    ingressIPs.push(str(ing.ip, "status.loadBalancer.ingress", t) ?? "null");
  }

  const record: LbServiceRecord = {
    namespace: share(namespace)!,
    name,
    uid: str(meta.uid, "metadata.uid", t) ?? "",
    resourceVersion: str(meta.resourceVersion, "metadata.resourceVersion", t) ?? "",
    created: creationTime(meta.creationTimestamp),
    type: share(str(spec.type, "spec.type", t)) ?? "ClusterIP",
    clusterIP: str(spec.clusterIP, "spec.clusterIP", t) ?? "",
    loadBalancerClass: share(str(spec.loadBalancerClass, "spec.loadBalancerClass", t)),
    requestedIPs: str(ann[ANNOTATION_IPS], ANNOTATION_IPS, t),
    pool: str(ann[ANNOTATION_POOL], ANNOTATION_POOL, t),
    sharingKey: str(ann[ANNOTATION_SHARED], ANNOTATION_SHARED, t),
    loadBalancerIP: str(spec.loadBalancerIP, "spec.loadBalancerIP", t) || undefined,
    ipFamilies: families.length === 0 ? EMPTY : FAMILIES[families.join(",")],
    ipFamilyPolicy: policy,
    ports: exact(ports),
    externalIPs: exact(externalIPs),
    ingressIPs: exact(ingressIPs),
    truncated: exact(t),
  };
  return record;
}

const EVERYWHERE: readonly Cidr[] = [parseCidr("0.0.0.0/0"), parseCidr("::/0")];

/**
 * The externalIPs of a Service that the agents refuse to announce, with the
 * agents' own reasons and one-line messages (`desired.ts` evaluateService).
 * Without `networks`, only the reasons that do not depend on an agent's
 * `--network` (syntax, special ranges, Service type) are given: the
 * controller does not know each router's fence.
 *
 * @default networks every address (so no `outside_networks`)
 */
export function externalIpRefusals(
  record: LbServiceRecord,
  networks: readonly Cidr[] = EVERYWHERE,
): readonly Rejection[] {
  return evaluateService(record, networks).rejections;
}

/** The `status` body of a Service for the status subresource. */
export interface LoadBalancerStatusBody {
  readonly loadBalancer: {
    readonly ingress: readonly { readonly ip: string; readonly ipMode: "VIP" }[];
  };
}

/**
 * The status kube-gw writes for a Service holding `addresses` (canonical
 * texts, in order): one ingress entry per address with `ipMode: VIP`, so
 * kube-proxy programs the address on every node. No addresses give an empty
 * ingress list, which clears it (as a PUT to `/status` or a merge patch).
 */
export function loadBalancerStatus(addresses: readonly string[]): LoadBalancerStatusBody {
  return { loadBalancer: { ingress: addresses.map((ip) => ({ ip, ipMode: "VIP" as const })) } };
}

/** Whether the Service's status already lists exactly `addresses`, in order (no write needed). */
export function statusShows(record: LbServiceRecord, addresses: readonly string[]): boolean {
  return record.ingressIPs.length === addresses.length &&
    record.ingressIPs.every((ip, i) => ip === addresses[i]);
}
