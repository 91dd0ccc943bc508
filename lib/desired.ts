/**
 * Desired state: which host addresses the Services claim inside the managed
 * networks. Pure: no I/O, no clock.
 *
 * @module
 */

import { type Cidr, cidrContains, specialRangeOf } from "./cidr.ts";
import { parseIp } from "./ip.ts";
import { boundText } from "./log.ts";
import { MAX_EXTERNAL_IPS, serviceKey, type ServiceRecord, unservedReason } from "./service.ts";

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

/** An external IP of a Service that kube-gw refuses, with the reason. */
export interface Rejection {
  readonly service: string;
  /** The value as given, bounded to 256 characters with its length noted. */
  readonly ip: string;
  readonly reason: RejectReason;
  /** One line for the log, naming the Service, the value and the reason. */
  readonly message: string;
}

/** The verdict on one Service: the addresses it claims and what is refused. */
export interface ServiceVerdict {
  readonly addresses: readonly string[];
  readonly rejections: readonly Rejection[];
}

const REASON_TEXT: Record<RejectReason, string> = {
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
  too_many:
    `belongs to a Service with more than ${MAX_EXTERNAL_IPS} externalIPs, which kube-gw refuses whole`,
};

function reject(service: string, raw: string, reason: RejectReason, hint?: string): Rejection {
  const ip = boundText(raw);
  return {
    service,
    ip,
    reason,
    // Built when read: only new rejections are logged, and a hostile Service resent by every
    // event would otherwise build thousands of lines to drop them.
    get message() {
      const meant = hint ? ` (did you mean "${boundText(hint)}"?)` : "";
      return `refusing externalIP ${JSON.stringify(ip)} of Service ${service}: it ${
        REASON_TEXT[reason]
      }${meant}`;
    },
  };
}

/**
 * Decides which external IPs of one Service become host addresses.
 * The returned addresses are canonical texts, unique, in the Service's order.
 */
export function evaluateService(svc: ServiceRecord, networks: readonly Cidr[]): ServiceVerdict {
  const { addresses, rejections } = evaluate(svc, networks);
  return { addresses: [...addresses], rejections };
}

/** {@linkcode evaluateService} with the addresses as an insertion-ordered Set. */
function evaluate(
  svc: ServiceRecord,
  networks: readonly Cidr[],
): { addresses: Set<string>; rejections: Rejection[] } {
  const key = serviceKey(svc);
  const unserved = unservedReason(svc);
  const addresses = new Set<string>();
  const rejections: Rejection[] = [];
  if (svc.externalIPs.length > MAX_EXTERNAL_IPS) {
    // One warning for the Service, none per value: the value shown is a count.
    rejections.push(reject(key, `(more than ${MAX_EXTERNAL_IPS} values)`, "too_many"));
    return { addresses, rejections };
  }
  for (const raw of svc.externalIPs) {
    if (unserved) {
      rejections.push(reject(key, raw, unserved));
      continue;
    }
    const parsed = parseIp(raw);
    if (!parsed.ok) {
      rejections.push(reject(key, raw, parsed.problem, parsed.canonical));
      continue;
    }
    const special = specialRangeOf(parsed.ip);
    if (special) {
      rejections.push(reject(key, raw, special));
    } else if (!networks.some((n) => cidrContains(n, parsed.ip))) {
      rejections.push(reject(key, raw, "outside_networks"));
    } else {
      addresses.add(parsed.ip.text);
    }
  }
  return { addresses, rejections };
}

const EMPTY: ReadonlySet<string> = new Set();

interface Entry {
  readonly addresses: ReadonlySet<string>;
  /** `ip reason` of each rejection already reported for this Service. */
  readonly reported: ReadonlySet<string>;
}

/** What a change to the desired state did. */
export interface DesiredChange {
  /** Rejections not reported before for this Service; report each once. */
  readonly newRejections: readonly Rejection[];
  /** Addresses whose claim count changed between zero and non-zero. */
  readonly touched: readonly string[];
}

/**
 * The desired set of host addresses, kept up to date one Service at a time.
 * An address claimed by several Services is one address; it stays desired
 * until the last claim goes. Each refused (Service, IP, reason) is reported
 * once while it persists, not once per event.
 */
export class DesiredState {
  readonly #networks: readonly Cidr[];
  readonly #services = new Map<string, Entry>();
  readonly #claims = new Map<string, number>();

  constructor(networks: readonly Cidr[]) {
    this.#networks = networks;
  }

  /** The desired addresses (canonical texts) and their claim counts. */
  get addresses(): ReadonlyMap<string, number> {
    return this.#claims;
  }

  /** The Services that claim an address (for `kube-gw plan`). */
  claimants(address: string): string[] {
    const out: string[] = [];
    for (const [key, entry] of this.#services) if (entry.addresses.has(address)) out.push(key);
    return out;
  }

  /** Adds or replaces one Service. */
  upsert(svc: ServiceRecord): DesiredChange {
    const key = serviceKey(svc);
    const verdict = evaluate(svc, this.#networks);
    const old = this.#services.get(key);
    const reported = new Set<string>();
    const newRejections: Rejection[] = [];
    for (const r of verdict.rejections) {
      const id = `${r.ip} ${r.reason}`;
      if (reported.has(id)) continue;
      reported.add(id);
      if (!old?.reported.has(id)) newRejections.push(r);
    }
    const addresses = verdict.addresses;
    const touched = this.#retarget(old?.addresses ?? EMPTY, addresses);
    this.#services.set(key, { addresses, reported });
    return { newRejections, touched };
  }

  /** Forgets one Service. */
  delete(namespace: string, name: string): DesiredChange {
    const key = serviceKey({ namespace, name });
    const old = this.#services.get(key);
    if (!old) return { newRejections: [], touched: [] };
    this.#services.delete(key);
    return { newRejections: [], touched: this.#retarget(old.addresses, EMPTY) };
  }

  /**
   * Replaces every Service in scope with a complete list (after a LIST).
   * `namespace` limits the scope to one namespace; `undefined` means all.
   */
  replace(services: readonly ServiceRecord[], namespace?: string): DesiredChange {
    const listed = new Set(services.map(serviceKey));
    const newRejections: Rejection[] = [];
    const touched: string[] = [];
    for (const key of [...this.#services.keys()]) {
      if (listed.has(key)) continue;
      if (namespace !== undefined && !key.startsWith(`${namespace}/`)) continue;
      const [ns, name] = [key.slice(0, key.indexOf("/")), key.slice(key.indexOf("/") + 1)];
      for (const t of this.delete(ns, name).touched) touched.push(t);
    }
    for (const svc of services) {
      const change = this.upsert(svc);
      // Loops, not push(...): a spread of a huge Service would overflow the stack.
      for (const r of change.newRejections) newRejections.push(r);
      for (const t of change.touched) touched.push(t);
    }
    return { newRejections, touched };
  }

  /** Moves claims from `before` to `after`: linear in their sizes, constant per address. */
  #retarget(before: ReadonlySet<string>, after: ReadonlySet<string>): string[] {
    const touched: string[] = [];
    for (const a of after) {
      if (before.has(a)) continue;
      const n = this.#claims.get(a) ?? 0;
      this.#claims.set(a, n + 1);
      if (n === 0) touched.push(a);
    }
    for (const b of before) {
      if (after.has(b)) continue;
      const n = this.#claims.get(b) ?? 0;
      if (n <= 1) {
        this.#claims.delete(b);
        touched.push(b);
      } else {
        this.#claims.set(b, n - 1);
      }
    }
    return touched;
  }
}
