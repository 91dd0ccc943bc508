/**
 * What a LoadBalancer Service asks the allocator for, read from its record.
 * Pure: no I/O, no state.
 *
 * - Addresses: `kube-gw.io/load-balancer-ips` (comma-separated, at most one
 *   per family), else the deprecated `spec.loadBalancerIP`; each must be a
 *   canonical address outside the special ranges, of a family the Service has
 *   ({@linkcode readRequest}).
 * - Families, when it asks for no address: `spec.ipFamilies` and
 *   `spec.ipFamilyPolicy` ({@linkcode wantedFamilies}).
 * - Sharing: Services of one namespace with the same
 *   `kube-gw.io/allow-shared-ip` key whose ports (protocol and number, all of
 *   them) do not overlap may hold one address ({@linkcode mayShare}); a key
 *   longer than {@linkcode MAX_SHARING_KEY} is refused
 *   ({@linkcode sharingKeyProblem}).
 *
 * @module
 */

import { specialRangeOf } from "../base/cidr.ts";
import { type Ip, parseIp } from "../base/ip.ts";
import {
  ANNOTATION_IPS,
  ANNOTATION_SHARED,
  type LbPort,
  type LbServiceRecord,
  MAX_SHARING_KEY,
} from "./lb_service.ts";
import { serviceKey } from "../service/record.ts";
import { quoted } from "../base/text.ts";

/** Why a Service's request cannot be met. */
export type FailureReason =
  /**
   * The addresses annotation or `spec.loadBalancerIP` cannot be read or contradicts the
   * families, or the sharing key is too long.
   */
  | "bad_annotation"
  /** `kube-gw.io/pool` names no pool. */
  | "unknown_pool"
  /** The address or pool asked for is outside the pools the namespace may use. */
  | "not_allowed"
  /** The address asked for is held by another Service it may not share with. */
  | "taken"
  /** Every pool the Service may take from is full for a family it needs. */
  | "pool_exhausted"
  /** No pool the Service may take from has addresses of a family it needs. */
  | "no_pool";

/** A request that cannot be met. */
export interface Failure {
  readonly reason: FailureReason;
  /** One line naming the Service, the value and why. */
  readonly message: string;
  /** The family concerned, when one is. */
  readonly family?: 4 | 6;
}

/** A request read from the annotation or `spec.loadBalancerIP`. */
export type AddressRequest =
  | { readonly kind: "none" }
  | { readonly kind: "ips"; readonly ips: readonly Ip[]; readonly field: string }
  | { readonly kind: "bad"; readonly failure: Failure };

/** What sharing an address depends on: a Service as the holder of an address. */
export interface Holder {
  /** `namespace/name`. */
  readonly key: string;
  readonly namespace: string;
  readonly sharingKey?: string;
  readonly ports: readonly LbPort[];
}

/** Longest part of a value a failure message quotes. */
const MAX_SHOWN = 64;

/** A value quoted for a failure message: at most 64 characters. */
export function shown(v: string): string {
  return quoted(v, MAX_SHOWN);
}

/** `IPv4` or `IPv6`, for messages. */
export function familyName(f: 4 | 6): string {
  return `IPv${f}`;
}

/** The holder a Service is; a sharing key longer than the bound shares nothing. */
export function holderOf(svc: LbServiceRecord): Holder {
  return {
    key: serviceKey(svc),
    namespace: svc.namespace,
    sharingKey: sharingKeyProblem(svc) ? undefined : svc.sharingKey,
    ports: svc.ports,
  };
}

/**
 * Why a Service's `kube-gw.io/allow-shared-ip` key cannot be used, if it
 * cannot: longer than {@linkcode MAX_SHARING_KEY} characters (compared whole,
 * never cut, so such a key is refused rather than matched by its prefix).
 */
export function sharingKeyProblem(svc: LbServiceRecord): Failure | undefined {
  const key = svc.sharingKey;
  if (key === undefined || key.length <= MAX_SHARING_KEY) return undefined;
  return {
    reason: "bad_annotation",
    message: `Service ${serviceKey(svc)}: ${ANNOTATION_SHARED}: ${
      shown(key)
    } is longer than ${MAX_SHARING_KEY} characters`,
  };
}

function portsOverlap(a: readonly LbPort[], b: readonly LbPort[]): boolean {
  if (a.length === 0 || b.length === 0) return false;
  const seen = new Set(a.map((p) => `${p.protocol}/${p.port}`));
  return b.some((p) => seen.has(`${p.protocol}/${p.port}`));
}

/**
 * Whether two holders may hold one address: same namespace, same non-empty
 * sharing key, no port (protocol and number) in common.
 */
export function mayShare(a: Holder, b: Holder): boolean {
  return a.namespace === b.namespace && a.sharingKey !== undefined && a.sharingKey !== "" &&
    a.sharingKey === b.sharingKey && !portsOverlap(a.ports, b.ports);
}

/** What, in a Service, the allocation depends on; equal fingerprints decide alike. */
export function requestFingerprint(svc: LbServiceRecord): string {
  return [
    svc.requestedIPs ?? "",
    svc.loadBalancerIP ?? "",
    svc.pool ?? "",
    svc.sharingKey ?? "",
    svc.ipFamilies.join(","),
    svc.ipFamilyPolicy,
    svc.ports.map((p) => `${p.protocol}/${p.port}`).join(","),
    svc.externalIPs.join(","),
  ].join("\n");
}

/**
 * The families a Service should get addresses of when it asks for none, in
 * its order. `ipFamilies` empty reads as IPv4 (IPv4 then IPv6 for the dual
 * policies).
 */
export function wantedFamilies(
  svc: Pick<LbServiceRecord, "ipFamilies" | "ipFamilyPolicy">,
): readonly (4 | 6)[] {
  const fams = svc.ipFamilies.length > 0 ? [...svc.ipFamilies] : [4 as const];
  switch (svc.ipFamilyPolicy) {
    case "SingleStack":
      return [fams[0]];
    case "PreferDualStack":
      return svc.ipFamilies.length > 0 ? fams : [4, 6];
    case "RequireDualStack":
      return fams.length === 2 ? fams : [fams[0], fams[0] === 4 ? 6 : 4];
  }
}

/** Reads the addresses a Service asks for, in its family order, or why they cannot be read. */
export function readRequest(svc: LbServiceRecord): AddressRequest {
  const key = serviceKey(svc);
  const annotated = svc.requestedIPs !== undefined && svc.requestedIPs.trim() !== "";
  const field = annotated ? ANNOTATION_IPS : "spec.loadBalancerIP";
  const text = annotated ? svc.requestedIPs! : svc.loadBalancerIP ?? "";
  const items = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (items.length === 0) return { kind: "none" };
  const bad = (message: string): AddressRequest => ({
    kind: "bad",
    failure: { reason: "bad_annotation", message: `Service ${key}: ${field}: ${message}` },
  });
  if (items.length > 2) return bad(`${shown(text)} lists more than one address per family`);
  const ips: Ip[] = [];
  for (const item of items) {
    const parsed = parseIp(item);
    if (!parsed.ok) {
      const hint = parsed.canonical ? ` (did you mean "${parsed.canonical}"?)` : "";
      return bad(`${shown(item)} is not a canonical IP address${hint}`);
    }
    const special = specialRangeOf(parsed.ip);
    if (special) return bad(`${shown(item)} is in the ${special.replace("_", "-")} range`);
    if (ips.some((ip) => ip.family === parsed.ip.family)) {
      return bad(`${shown(text)} lists more than one ${familyName(parsed.ip.family)} address`);
    }
    ips.push(parsed.ip);
  }
  if (svc.ipFamilyPolicy === "RequireDualStack" && ips.length < 2) {
    return bad(`${shown(text)}: RequireDualStack needs one address of each family`);
  }
  if (svc.ipFamilyPolicy === "SingleStack" && ips.length > 1) {
    return bad(`${shown(text)}: a SingleStack Service takes one address`);
  }
  for (const ip of ips) {
    if (svc.ipFamilies.length > 0 && !svc.ipFamilies.includes(ip.family)) {
      return bad(
        `${shown(ip.text)} is ${familyName(ip.family)} but spec.ipFamilies is [${
          svc.ipFamilies.map(familyName).join(", ")
        }]`,
      );
    }
  }
  if (svc.ipFamilies.length > 0) {
    ips.sort((a, b) => svc.ipFamilies.indexOf(a.family) - svc.ipFamilies.indexOf(b.family));
  }
  return { kind: "ips", ips, field };
}
