/**
 * The test fabric's addresses (see fabric.ts): the IPv4 plan every fabric
 * has, and the IPv6 plan a fabric started with `ipv6: true` adds beside it
 * (dual stack, from the documentation prefix 2001:db8::/32). On each IPv6
 * link the first side (leaf; gateway towards a pod or its peer) is `::1`, the
 * other `::2`.
 *
 * @module
 */

/** The fabric's addresses. */
export const FABRIC = {
  serviceNetwork: "10.0.100.0/24",
  asn: { leaf: "65000", gateways: "65001" },
  leaf: { loopback: "10.0.0.10", toGw1: "10.0.1.0", toGw2: "10.0.1.2", client: "10.0.2.1" },
  gw1: {
    loopback: "10.0.0.20",
    uplink: "10.0.1.1",
    toPod1: "10.0.3.0",
    toPod2: "10.0.3.2",
    toPeer: "10.0.4.0",
  },
  gw2: {
    loopback: "10.0.0.21",
    uplink: "10.0.1.3",
    toPod1: "10.0.3.4",
    toPod2: "10.0.3.6",
    toPeer: "10.0.4.1",
  },
  client: { address: "10.0.2.10", network: "10.0.2.0/24" },
  pods: { pod1: "10.244.1.10", pod2: "10.244.2.10" },
  /** The node each pod runs on (EndpointSlice `nodeName`; the agents' `--node-name`). */
  podNode: { pod1: "gw1", pod2: "gw2" },
  /** A LoadBalancer pool inside the service network, for `kube-gw controller --pool`. */
  lbPool: {
    cidr: "10.0.100.40/30",
    addresses: ["10.0.100.40", "10.0.100.41", "10.0.100.42", "10.0.100.43"],
  },
} as const;

/** A pod of the fabric. */
export type PodName = keyof typeof FABRIC.pods;

/** The fabric's IPv6 addresses (`ipv6: true`), beside {@linkcode FABRIC}'s. */
export const FABRIC6 = {
  /** Managed beside {@linkcode FABRIC}.serviceNetwork; the network the route-mode snippets name. */
  serviceNetwork: "2001:db8:100::/64",
  /** Service addresses the fabric's client may send to (its `--allow-net`). */
  vips: ["2001:db8:100::30", "2001:db8:100::31"],
  leaf: { toGw1: "2001:db8:1:1::1", toGw2: "2001:db8:1:2::1", client: "2001:db8:2::1" },
  gw1: {
    uplink: "2001:db8:1:1::2",
    toPod1: "2001:db8:3:11::1",
    toPod2: "2001:db8:3:12::1",
    toPeer: "2001:db8:4::1",
  },
  gw2: {
    uplink: "2001:db8:1:2::2",
    toPod1: "2001:db8:3:21::1",
    toPod2: "2001:db8:3:22::1",
    toPeer: "2001:db8:4::2",
  },
  client: { address: "2001:db8:2::10", network: "2001:db8:2::/64" },
  pods: { pod1: "2001:db8:244:1::10", pod2: "2001:db8:244:2::10" },
} as const;

/** The other side of an IPv6 link of {@linkcode FABRIC6}: `…::1` → `…::2`. */
export function otherEnd6(address: string): string {
  if (!address.endsWith("::1")) throw new Error(`${address} is no first side of a link`);
  return address.replace(/::1$/, "::2");
}

/** A gateway's name. */
export type GatewayName = "gw1" | "gw2";

/** The gateways, in order. */
export const GATEWAYS: readonly GatewayName[] = ["gw1", "gw2"];

/**
 * Which gateway masqueraded a request, from the source address a pod saw
 * (either family: a gateway's address on its link to the pod).
 */
export function gatewayOf(podSawFrom: string): GatewayName | undefined {
  for (const gw of GATEWAYS) {
    const seen = [FABRIC[gw].toPod1, FABRIC[gw].toPod2, FABRIC6[gw].toPod1, FABRIC6[gw].toPod2];
    if (seen.includes(podSawFrom as never)) return gw;
  }
  return undefined;
}
