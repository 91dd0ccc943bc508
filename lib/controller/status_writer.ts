/**
 * Writes `status.loadBalancer` of one Service through the status subresource,
 * as a JSON merge patch that carries the resourceVersion the decision was
 * made on: the API server answers 409 Conflict when the Service changed
 * meanwhile (changed its class, say), and the controller decides again from
 * its watch cache (it has no `get` on Services). A record without a
 * resourceVersion is never written.
 *
 * @module
 */

import type { StatusWriter } from "./ports.ts";
import type { JsonApi } from "../kube/ports.ts";
import { loadBalancerStatus } from "./lb_service.ts";

/** The path of a Service's status subresource. */
export function statusPath(namespace: string, name: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/services/${
    encodeURIComponent(name)
  }/status`;
}

/**
 * The merge patch that sets the ingress list to `addresses` (an empty list
 * clears it), with `resourceVersion` as precondition.
 */
export function statusPatch(
  resourceVersion: string,
  addresses: readonly string[],
): Record<string, unknown> {
  return {
    metadata: { resourceVersion },
    status: loadBalancerStatus(addresses),
  };
}

/** The {@linkcode StatusWriter} on the API server. */
export function statusWriter(api: JsonApi): StatusWriter {
  return {
    async write(svc, addresses, signal) {
      // Without a version the patch would carry no precondition, and might land on any version.
      if (svc.resourceVersion === "") {
        throw new Error(`Service ${svc.namespace}/${svc.name} has no resourceVersion to write on`);
      }
      const out = await api.json(
        "PATCH",
        statusPath(svc.namespace, svc.name),
        statusPatch(svc.resourceVersion, addresses),
        signal,
      ) as { metadata?: { resourceVersion?: unknown } } | undefined;
      const rv = out?.metadata?.resourceVersion;
      return typeof rv === "string" ? rv : "";
    },
  };
}
