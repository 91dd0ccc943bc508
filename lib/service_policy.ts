/**
 * What the announce decision needs of a Service beyond its addresses: its
 * `externalTrafficPolicy` and whether kube-proxy skips it. A decoder of the
 * API's JSON, meant to be folded into the Service record by the wiring. Pure.
 *
 * @module
 */

import type { TrafficPolicy } from "./announce.ts";
import { isObject } from "./shape.ts";

/** Services with this label are served by another proxy; kube-proxy skips them. */
export const SERVICE_PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name";

/** The announce-relevant policy of one Service. */
export interface ServicePolicy {
  /** `Local` only when `spec.externalTrafficPolicy` is exactly `Local`. @default "Cluster" */
  readonly trafficPolicy: TrafficPolicy;
  /** Whether the label {@linkcode SERVICE_PROXY_NAME_LABEL} is present (any value). */
  readonly proxySkipped: boolean;
}

/**
 * Reads a Service's traffic policy and proxy label. Never throws: a missing or
 * odd field reads as kube-proxy reads it (`Cluster`, not skipped), since the
 * Service's own decoder already refused objects without metadata.
 */
export function decodeServicePolicy(obj: unknown): ServicePolicy {
  const o = isObject(obj) ? obj : {};
  const spec = isObject(o.spec) ? o.spec : {};
  const labels = isObject(o.metadata) && isObject(o.metadata.labels) ? o.metadata.labels : {};
  return {
    trafficPolicy: spec.externalTrafficPolicy === "Local" ? "Local" : "Cluster",
    proxySkipped: Object.hasOwn(labels, SERVICE_PROXY_NAME_LABEL),
  };
}
