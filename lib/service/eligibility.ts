/**
 * Which addresses of a Service may become host addresses, by the agents'
 * rules: syntax, canonical form, special ranges, the managed networks, the
 * Service's type, and how many it lists. Both programs read it: the agent to
 * build its desired state, the controller to refuse externalIPs no agent would
 * take. Pure.
 *
 * @module
 */

import { type Cidr, cidrContains, specialRangeOf } from "../base/cidr.ts";
import { parseIp } from "../base/ip.ts";
import { type ClassOptions, isOurs } from "./class.ts";
import { boundText } from "../base/text.ts";
import { MAX_EXTERNAL_IPS, serviceKey, type ServiceRecord, unservedReason } from "./record.ts";

/** Where a Service's address comes from: `spec.externalIPs` or `status.loadBalancer.ingress`. */
export type AddressSource = "externalIP" | "loadBalancer";

/** The words each source goes by in messages and in `kube-gw plan`. */
export const SOURCE_TEXT: Readonly<Record<AddressSource, string>> = {
  externalIP: "externalIP",
  loadBalancer: "LoadBalancer address",
};

/** Which of a Service's addresses the agent takes. */
export interface AddressOptions {
  /**
   * Take `status.loadBalancer.ingress[].ip` of the Services of this class
   * (`--class`, `--default-class`); undefined: take none (the controller's
   * view of externalIPs).
   */
  readonly classes?: ClassOptions;
  /** Take `spec.externalIPs` (`--external-ips`). @default true */
  readonly externalIPs?: boolean;
}

/** What a Service's evaluation needs of it. */
export type ServiceAddresses = Pick<
  ServiceRecord,
  "namespace" | "name" | "type" | "clusterIP" | "externalIPs" | "ingressIPs" | "loadBalancerClass"
>;

/** Why an external IP is not taken. */
export type RejectReason =
  | "invalid"
  | "non_canonical"
  | "ipv4_mapped"
  | "unspecified"
  | "loopback"
  | "multicast"
  | "link_local"
  | "broadcast"
  | "outside_networks"
  | "external_name"
  | "headless"
  | "unsupported_type"
  | "too_many";

/** An address of a Service that kube-gw refuses, with the reason. */
export interface Rejection {
  readonly service: string;
  /** The value as given, bounded to 256 characters with its length noted. */
  readonly ip: string;
  readonly reason: RejectReason;
  /** Where the value comes from. */
  readonly source: AddressSource;
  /** One line for the log, naming the Service, the value and the reason. */
  readonly message: string;
}

/** The verdict on one Service: the addresses it claims and what is refused. */
export interface ServiceVerdict {
  readonly addresses: readonly string[];
  readonly rejections: readonly Rejection[];
}

/** Bits of {@linkcode AddressSource} as stored per address. */
export const FROM_EXTERNAL = 1;
/** The bit of `loadBalancer`. */
export const FROM_LB = 2;

/** The sources a set of bits names, in order. */
export function sourcesOfBits(bits: number): AddressSource[] {
  const out: AddressSource[] = [];
  if (bits & FROM_EXTERNAL) out.push("externalIP");
  if (bits & FROM_LB) out.push("loadBalancer");
  return out;
}

/** Why a value is refused, for every reason but `too_many`, which names its source. */
const REASON_TEXT: Record<Exclude<RejectReason, "too_many">, string> = {
  invalid: "is not an IP address",
  non_canonical: "is not in canonical form",
  ipv4_mapped: "is an IPv4-mapped IPv6 address",
  unspecified: "is the unspecified address",
  loopback: "is a loopback address",
  multicast: "is a multicast address",
  link_local: "is a link-local address",
  broadcast: "is the broadcast address",
  outside_networks: "is outside the managed networks",
  external_name: "belongs to an ExternalName Service, which kube-proxy does not serve",
  headless: "belongs to a headless Service (clusterIP: None), which kube-proxy does not serve",
  unsupported_type: "belongs to a Service of a type kube-proxy does not serve",
};

/** The plural each source goes by in a `too_many` refusal. */
const SOURCE_PLURAL: Readonly<Record<AddressSource, string>> = {
  externalIP: "externalIPs",
  loadBalancer: "LoadBalancer addresses",
};

function reject(
  service: string,
  raw: string,
  reason: RejectReason,
  source: AddressSource,
  hint?: string,
): Rejection {
  const ip = boundText(raw);
  return {
    service,
    ip,
    reason,
    source,
    // Built when read: only new rejections are logged, and a hostile Service resent by every
    // event would otherwise build thousands of lines to drop them.
    get message() {
      const meant = hint ? ` (did you mean "${boundText(hint)}"?)` : "";
      const why = reason === "too_many"
        ? `belongs to a Service with more than ${MAX_EXTERNAL_IPS} ${
          SOURCE_PLURAL[source]
        }, which kube-gw refuses whole`
        : REASON_TEXT[reason];
      return `refusing ${SOURCE_TEXT[source]} ${
        JSON.stringify(ip)
      } of Service ${service}: it ${why}${meant}`;
    },
  };
}

/**
 * Decides which addresses of one Service become host addresses: its
 * externalIPs (unless `options.externalIPs` is false) and, when it is of
 * kube-gw's class (`options.classes`), its LoadBalancer status addresses, by
 * the same rules. The returned addresses are canonical texts, unique, in the
 * Service's order (externalIPs first).
 *
 * @default options externalIPs only (no class: LoadBalancer status is not read)
 */
export function evaluateService(
  svc: ServiceAddresses,
  networks: readonly Cidr[],
  options: AddressOptions = {},
): ServiceVerdict {
  const { addresses, rejections } = evaluateSources(svc, networks, options);
  return { addresses: [...addresses.keys()], rejections };
}

/** {@linkcode evaluateService} with the addresses as an insertion-ordered Map to source bits. */
export function evaluateSources(
  svc: ServiceAddresses,
  networks: readonly Cidr[],
  options: AddressOptions,
): { addresses: Map<string, number>; rejections: Rejection[] } {
  const key = serviceKey(svc);
  const unserved = unservedReason(svc);
  const addresses = new Map<string, number>();
  const rejections: Rejection[] = [];
  const take = (raws: readonly string[], source: AddressSource, bit: number) => {
    if (raws.length > MAX_EXTERNAL_IPS) {
      // One warning for the Service, none per value: the value shown is a count.
      rejections.push(reject(key, `(more than ${MAX_EXTERNAL_IPS} values)`, "too_many", source));
      return;
    }
    for (const raw of raws) {
      if (unserved) {
        rejections.push(reject(key, raw, unserved, source));
        continue;
      }
      const parsed = parseIp(raw);
      if (!parsed.ok) {
        rejections.push(reject(key, raw, parsed.problem, source, parsed.canonical));
        continue;
      }
      const special = specialRangeOf(parsed.ip);
      if (special) {
        rejections.push(reject(key, raw, special, source));
      } else if (!networks.some((n) => cidrContains(n, parsed.ip))) {
        rejections.push(reject(key, raw, "outside_networks", source));
      } else {
        addresses.set(parsed.ip.text, (addresses.get(parsed.ip.text) ?? 0) | bit);
      }
    }
  };
  if (options.externalIPs ?? true) take(svc.externalIPs, "externalIP", FROM_EXTERNAL);
  if (options.classes && svc.ingressIPs && isOurs(svc, options.classes)) {
    take(svc.ingressIPs, "loadBalancer", FROM_LB);
  }
  return { addresses, rejections };
}
