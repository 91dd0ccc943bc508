/**
 * The part of a Kubernetes Service that kube-gw needs, projected out of the
 * API's JSON so whole objects are never kept.
 *
 * @module
 */

import { isObject, objectName } from "./shape.ts";

/** What kube-gw keeps of one Service. */
export interface ServiceRecord {
  readonly namespace: string;
  readonly name: string;
  /** `spec.type`; the API defaults it to `ClusterIP`. */
  readonly type: string;
  /** `spec.clusterIP`; `None` for a headless Service. */
  readonly clusterIP: string;
  readonly externalIPs: readonly string[];
}

/**
 * The most externalIPs kube-gw takes from one Service; a Service with more is
 * refused whole, with one warning (a bound on the memory and the `ip -batch`
 * one object can cost). The decoder keeps one more than this, to tell.
 */
export const MAX_EXTERNAL_IPS = 1000;

/** The key that identifies a Service: `namespace/name`. */
export function serviceKey(s: { namespace: string; name: string }): string {
  return `${s.namespace}/${s.name}`;
}

/**
 * Projects a Service object from the API into a {@linkcode ServiceRecord}.
 * Non-string external IPs are kept as their JSON text so that they are
 * reported and refused rather than silently dropped.
 *
 * @throws {ShapeError} when metadata.name or metadata.namespace is missing.
 */
export function projectService(obj: unknown): ServiceRecord {
  const { namespace, name } = objectName(obj, "Service");
  const spec = isObject((obj as Record<string, unknown>).spec)
    ? (obj as { spec: Record<string, unknown> }).spec
    : {};
  const raw = Array.isArray(spec.externalIPs)
    ? spec.externalIPs.slice(0, MAX_EXTERNAL_IPS + 1)
    : [];
  return {
    namespace,
    name,
    type: typeof spec.type === "string" ? spec.type : "ClusterIP",
    clusterIP: typeof spec.clusterIP === "string" ? spec.clusterIP : "",
    externalIPs: raw.map((ip) => typeof ip === "string" ? ip : JSON.stringify(ip)),
  };
}

const SERVED_TYPES = new Set(["ClusterIP", "NodePort", "LoadBalancer"]);

/** Why kube-proxy would not serve a Service's external IPs, if it would not. */
export function unservedReason(
  s: ServiceRecord,
): "external_name" | "headless" | "unsupported_type" | undefined {
  if (s.type === "ExternalName") return "external_name";
  if (!SERVED_TYPES.has(s.type)) return "unsupported_type";
  if (s.clusterIP === "None") return "headless";
  return undefined;
}
