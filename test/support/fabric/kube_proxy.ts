/**
 * A stand-in for kube-proxy in nftables mode: renders the `ip kube-proxy`
 * table that kube-proxy programs for Services with external IPs and
 * LoadBalancer ingress addresses (services verdict map, per-port
 * service/external/local/endpoint chains, `numgen random` endpoint choice, the
 * masquerade mark), from a Service object as the API serves it and the
 * settings of a KubeProxyConfiguration file.
 *
 * As kube-proxy does: a LoadBalancer ingress address (`ipMode` VIP or unset)
 * goes into the same `service-ips` map as an external IP, to the external
 * chain; with `externalTrafficPolicy: Local` the external chain keeps the
 * client's source address and sends only to this node's endpoints, and drops
 * when this node has none.
 *
 * In a dual-stack cluster kube-proxy runs one proxier per family, each with
 * its own table (`ip kube-proxy`, `ip6 kube-proxy`) holding the Service
 * addresses and endpoints of that family only: `family` chooses which.
 *
 * @module
 */

import yaml from "js-yaml";

/** The KubeProxyConfiguration fields the rules depend on. */
export interface KubeProxySettings {
  readonly mode: string;
  readonly clusterCIDR: string;
  /** The packet mark bit that asks for masquerading (kube-proxy's default: 14). */
  readonly masqueradeBit: number;
}

/** Reads the fields the stand-in needs from a KubeProxyConfiguration YAML text. */
export function parseKubeProxyConfig(text: string): KubeProxySettings {
  const doc = yaml.load(text) as Record<string, unknown> | null;
  if (doc?.kind !== "KubeProxyConfiguration") {
    throw new SyntaxError("not a KubeProxyConfiguration");
  }
  const mode = String(doc.mode ?? "");
  const section = (doc[mode] ?? {}) as Record<string, unknown>;
  return {
    mode,
    clusterCIDR: String(doc.clusterCIDR ?? ""),
    masqueradeBit: Number(section.masqueradeBit ?? 14),
  };
}

/** A Service port as the API serves it. */
interface ServicePort {
  readonly name?: string;
  readonly port: number;
  readonly protocol?: string;
  readonly targetPort?: number | string;
}

/** The parts of a Service object the rules are made from. */
export interface ServiceObject {
  readonly metadata: { readonly name: string; readonly namespace: string };
  readonly spec: {
    readonly clusterIP?: string;
    readonly externalIPs?: readonly string[];
    readonly ports?: readonly ServicePort[];
    readonly externalTrafficPolicy?: string;
  };
  readonly status?: {
    readonly loadBalancer?: {
      readonly ingress?: readonly { readonly ip?: string; readonly ipMode?: string }[];
    };
  };
}

/** The addresses kube-proxy programs for a LoadBalancer Service's status: `ipMode` VIP or unset. */
export function loadBalancerIPs(service: ServiceObject): string[] {
  return (service.status?.loadBalancer?.ingress ?? [])
    .filter((i) => i.ip && (i.ipMode === undefined || i.ipMode === "VIP"))
    .map((i) => i.ip!);
}

/** One Service to program: its endpoints (pod IPs), and those on this node for a Local policy. */
export interface ServiceEndpoints {
  readonly service: ServiceObject;
  readonly endpoints: readonly string[];
  /** The endpoints on this node (only used with `externalTrafficPolicy: Local`). @default [] */
  readonly localEndpoints?: readonly string[];
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** RFC 4648 base32 of `bytes`, as Go's `base32.StdEncoding` (without padding). */
export function base32(bytes: Uint8Array): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

async function hash8(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return base32(new Uint8Array(digest)).slice(0, 8);
}

/** An nftables address family of kube-proxy's table: `ip` (IPv4) or `ip6`. */
export type KubeProxyFamily = "ip" | "ip6";

function ofFamily(family: KubeProxyFamily, address: string): boolean {
  return address.includes(":") === (family === "ip6");
}

/**
 * The `nft -f` script that replaces the `ip kube-proxy` table (`family`
 * `ip6`: `ip6 kube-proxy`) with the rules for the addresses of that family of
 * `services`, each sending to the `endpoints` (pod IPs) of that family on the
 * target port (external traffic of a Local Service: to `localEndpoints`
 * only). `clusterCIDR` may name one CIDR per family, comma-separated.
 */
export async function kubeProxyRuleset(
  settings: KubeProxySettings,
  services: readonly ServiceEndpoints[],
  family: KubeProxyFamily = "ip",
): Promise<string> {
  const mark = `0x${(1 << settings.masqueradeBit).toString(16)}`;
  const clusterCIDR = settings.clusterCIDR.split(",").map((c) => c.trim())
    .find((c) => c !== "" && ofFamily(family, c));
  const elements: string[] = [];
  const chains: string[] = [];
  for (const service0 of services) {
    const { service } = service0;
    const endpoints = service0.endpoints.filter((e) => ofFamily(family, e));
    const localEndpoints = (service0.localEndpoints ?? []).filter((e) => ofFamily(family, e));
    const { namespace, name } = service.metadata;
    const local = service.spec.externalTrafficPolicy === "Local";
    for (const p of service.spec.ports ?? []) {
      const proto = (p.protocol ?? "TCP").toLowerCase();
      const portName = `${namespace}/${name}:${p.name ?? ""}`;
      const base = `${await hash8(portName + proto)}-${namespace}/${name}/${proto}/${p.name ?? ""}`;
      const target = Number(p.targetPort ?? p.port);
      const svcChain = `service-${base}`;
      const extChain = `external-${base}`;
      const epChains: string[] = [];
      const localChains: string[] = [];
      for (const ep of endpoints) {
        // A chain name takes no ":" unquoted: an IPv6 endpoint's colons become dots.
        const epBase = `${await hash8(
          portName + proto + `${ep}:${target}`,
        )}-${namespace}/${name}/${proto}/${p.name ?? ""}__${ep.replaceAll(":", ".")}/${target}`;
        const chain = `endpoint-${epBase}`;
        epChains.push(chain);
        if (localEndpoints.includes(ep)) localChains.push(chain);
        const to = family === "ip6" ? `[${ep}]:${target}` : `${ep}:${target}`;
        chains.push(
          `\tchain ${chain} {\n` +
            `\t\t${family} saddr ${ep} jump mark-for-masquerade\n` +
            `\t\tmeta l4proto ${proto} dnat to ${to}\n` +
            `\t}`,
        );
      }
      const pickOf = (list: readonly string[], none: string) =>
        list.length === 0
          ? `\t\t${none}`
          : `\t\tnumgen random mod ${list.length} vmap { ${
            list.map((c, i) => `${i} : goto ${c}`).join(", ")
          } }`;
      const pick = pickOf(epChains, "reject");
      const clusterIP = service.spec.clusterIP && ofFamily(family, service.spec.clusterIP)
        ? service.spec.clusterIP
        : undefined;
      chains.push(
        `\tchain ${svcChain} {\n` +
          (clusterIP && clusterCIDR
            ? `\t\t${family} daddr ${clusterIP} ${proto} dport ${p.port} ${family} saddr != ${clusterCIDR} jump mark-for-masquerade\n`
            : "") +
          `${pick}\n\t}`,
      );
      if (local) {
        // Local: the client's address is kept; pods and the node itself go the Cluster way;
        // no endpoint on this node drops (kube-proxy's no-endpoint-services map says drop).
        const localChain = `local-${base}`;
        chains.push(
          `\tchain ${extChain} {\n` +
            (clusterCIDR ? `\t\t${family} saddr ${clusterCIDR} goto ${svcChain}\n` : "") +
            `\t\tfib saddr type local jump mark-for-masquerade\n` +
            `\t\tfib saddr type local goto ${svcChain}\n` +
            `\t\tgoto ${localChain}\n\t}`,
        );
        chains.push(`\tchain ${localChain} {\n${pickOf(localChains, "drop")}\n\t}`);
      } else {
        chains.push(
          `\tchain ${extChain} {\n\t\tjump mark-for-masquerade\n\t\tgoto ${svcChain}\n\t}`,
        );
      }
      if (clusterIP) elements.push(`${clusterIP} . ${proto} . ${p.port} : goto ${svcChain}`);
      const external = [...service.spec.externalIPs ?? [], ...loadBalancerIPs(service)];
      for (const ip of external.filter((a) => ofFamily(family, a))) {
        elements.push(`${ip} . ${proto} . ${p.port} : goto ${extChain}`);
      }
    }
  }
  return [
    `add table ${family} kube-proxy`,
    `delete table ${family} kube-proxy`,
    `table ${family} kube-proxy {`,
    '\tcomment "rules for kube-proxy"',
    "\tmap service-ips {",
    `\t\ttype ${
      family === "ip6" ? "ipv6_addr" : "ipv4_addr"
    } . inet_proto . inet_service : verdict`,
    '\t\tcomment "ClusterIP, ExternalIP and LoadBalancer IP traffic"',
    ...(elements.length ? [`\t\telements = { ${elements.join(",\n\t\t\t")} }`] : []),
    "\t}",
    "\tchain nat-prerouting {",
    "\t\ttype nat hook prerouting priority dstnat; policy accept;",
    "\t\tjump services",
    "\t}",
    "\tchain nat-output {",
    "\t\ttype nat hook output priority -100; policy accept;",
    "\t\tjump services",
    "\t}",
    "\tchain nat-postrouting {",
    "\t\ttype nat hook postrouting priority srcnat; policy accept;",
    "\t\tjump masquerading",
    "\t}",
    "\tchain mark-for-masquerade {",
    `\t\tmeta mark set meta mark | ${mark}`,
    "\t}",
    "\tchain masquerading {",
    `\t\tmeta mark & ${mark} == 0 return`,
    `\t\tmeta mark set meta mark ^ ${mark}`,
    "\t\tmasquerade fully-random",
    "\t}",
    "\tchain services {",
    `\t\t${family} daddr . meta l4proto . th dport vmap @service-ips`,
    "\t}",
    ...chains,
    "}",
    "",
  ].join("\n");
}
