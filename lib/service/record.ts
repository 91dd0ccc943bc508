/**
 * The part of a Kubernetes Service that the agent needs, projected out of the
 * API's JSON so whole objects are never kept: its addresses (externalIPs and
 * LoadBalancer status), what decides whether it is kube-gw's (type, class),
 * and what the announce decision needs (traffic policy, proxy label). The one
 * decoder of Services for the agent.
 *
 * @module
 */

import { isObject, objectName } from "../base/shape.ts";

/** Services with this label are served by another proxy; kube-proxy skips them. */
export const SERVICE_PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name";

/** Longest `spec.loadBalancerClass` kept (a qualified name is at most 316 characters). */
const MAX_CLASS_LENGTH = 316;

/** What kube-gw keeps of one Service. */
export interface ServiceRecord {
  readonly namespace: string;
  readonly name: string;
  /** `spec.type`; the API defaults it to `ClusterIP`. */
  readonly type: string;
  /** `spec.clusterIP`; `None` for a headless Service. */
  readonly clusterIP: string;
  /** Raw `spec.externalIPs` (non-strings as their JSON text). */
  readonly externalIPs: readonly string[];
  /**
   * Raw `status.loadBalancer.ingress[].ip` (entries without `ip` skipped,
   * non-strings as their JSON text).
   * @default []
   */
  readonly ingressIPs?: readonly string[];
  /** `spec.loadBalancerClass`; absent means no class. */
  readonly loadBalancerClass?: string;
  /** `Local` only when `spec.externalTrafficPolicy` is exactly `Local`. @default "Cluster" */
  readonly trafficPolicy?: TrafficPolicy;
  /** Whether the label {@linkcode SERVICE_PROXY_NAME_LABEL} is present (any value). @default false */
  readonly proxySkipped?: boolean;
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

function texts(v: unknown): string[] {
  if (!Array.isArray(v)) return [];
  return v.map((ip) => typeof ip === "string" ? ip : JSON.stringify(ip));
}

/** The parts of a Service object every decoder of it reads; absent ones are empty. */
export interface ServiceParts {
  readonly namespace: string;
  readonly name: string;
  readonly meta: Record<string, unknown>;
  readonly spec: Record<string, unknown>;
  /** `status.loadBalancer`. */
  readonly lb: Record<string, unknown>;
}

/**
 * Splits a Service object from the API into the parts both programs'
 * decoders read, each an object (empty when missing or not an object).
 *
 * @throws {ShapeError} when metadata.name or metadata.namespace is missing or too long.
 */
export function serviceParts(obj: unknown): ServiceParts {
  const { namespace, name } = objectName(obj, "Service");
  const o = obj as Record<string, unknown>;
  const meta = o.metadata as Record<string, unknown>;
  const spec = isObject(o.spec) ? o.spec : {};
  const status = isObject(o.status) ? o.status : {};
  const lb = isObject(status.loadBalancer) ? status.loadBalancer : {};
  return { namespace, name, meta, spec, lb };
}

/**
 * Projects a Service object from the API into a {@linkcode ServiceRecord}.
 * Non-string addresses are kept as their JSON text so that they are reported
 * and refused rather than silently dropped. A missing or odd policy field
 * reads as kube-proxy reads it (`Cluster`, not skipped).
 *
 * @throws {ShapeError} when metadata.name or metadata.namespace is missing.
 */
export function decodeService(obj: unknown): ServiceRecord {
  const { namespace, name, meta, spec, lb } = serviceParts(obj);
  const labels = isObject(meta.labels) ? meta.labels : {};
  const ingress = Array.isArray(lb.ingress) ? lb.ingress.slice(0, MAX_EXTERNAL_IPS + 1) : [];
  const ingressIPs = texts(
    ingress.filter((i) => isObject(i) && i.ip !== undefined && i.ip !== "").map((i) => i.ip),
  );
  const cls = spec.loadBalancerClass;
  return {
    namespace,
    name,
    type: typeof spec.type === "string" ? spec.type : "ClusterIP",
    clusterIP: typeof spec.clusterIP === "string" ? spec.clusterIP : "",
    externalIPs: texts(
      Array.isArray(spec.externalIPs) ? spec.externalIPs.slice(0, MAX_EXTERNAL_IPS + 1) : [],
    ),
    ingressIPs,
    ...(typeof cls === "string" && cls !== ""
      ? {
        loadBalancerClass: cls.length > MAX_CLASS_LENGTH
          ? `${cls.slice(0, MAX_CLASS_LENGTH)}…`
          : cls,
      }
      : {}),
    trafficPolicy: spec.externalTrafficPolicy === "Local" ? "Local" : "Cluster",
    proxySkipped: Object.hasOwn(labels, SERVICE_PROXY_NAME_LABEL),
  };
}

const SERVED_TYPES = new Set(["ClusterIP", "NodePort", "LoadBalancer"]);

/** Why kube-proxy would not serve a Service's external IPs, if it would not. */
export function unservedReason(
  s: Pick<ServiceRecord, "type" | "clusterIP">,
): "external_name" | "headless" | "unsupported_type" | undefined {
  if (s.type === "ExternalName") return "external_name";
  if (!SERVED_TYPES.has(s.type)) return "unsupported_type";
  if (s.clusterIP === "None") return "headless";
  return undefined;
}

/** `spec.externalTrafficPolicy`, as kube-proxy reads it. */
export type TrafficPolicy = "Cluster" | "Local";
