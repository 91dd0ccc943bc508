/**
 * EndpointSlice objects as the EndpointSlice controller writes them, for the
 * fake API server (`createObject("endpointslices", ...)`).
 *
 * @module
 */

/** One endpoint: its address, node and readiness. */
export interface EndpointSpec {
  readonly address: string;
  /** @default "worker1" */
  readonly nodeName?: string;
  /** @default true */
  readonly ready?: boolean;
}

/** An EndpointSlice (IPv4 unless told) of Service `service` with port 80 and `endpoints`. */
export function endpointSlice(
  service: string,
  endpoints: readonly EndpointSpec[],
  options: { namespace?: string; name?: string; addressType?: "IPv4" | "IPv6" } = {},
): Record<string, unknown> {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      namespace: options.namespace ?? "default",
      name: options.name ?? `${service}-abcde`,
      labels: {
        "kubernetes.io/service-name": service,
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
      },
    },
    addressType: options.addressType ?? "IPv4",
    ports: [{ name: "port1", port: 80, protocol: "TCP" }],
    endpoints: endpoints.map((e) => ({
      addresses: [e.address],
      conditions: { ready: e.ready ?? true, serving: e.ready ?? true, terminating: false },
      nodeName: e.nodeName ?? "worker1",
    })),
  };
}

/** The demo Service's slice: two ready pods (the fabric's pod1 and pod2). */
export function demoSlice(nodes: readonly [string, string] = ["gw1", "gw2"]): Record<
  string,
  unknown
> {
  return endpointSlice("nginx", [
    { address: "10.244.1.10", nodeName: nodes[0] },
    { address: "10.244.2.10", nodeName: nodes[1] },
  ]);
}
