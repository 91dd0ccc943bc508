/**
 * The part of a Kubernetes Service that kube-gw needs, projected out of the
 * API's JSON so whole objects are never kept.
 *
 * @module
 */

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

/** Raised when an API object is not a Service kube-gw can read. */
export class ServiceShapeError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ServiceShapeError";
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The key that identifies a Service: `namespace/name`. */
export function serviceKey(s: { namespace: string; name: string }): string {
  return `${s.namespace}/${s.name}`;
}

/**
 * Projects a Service object from the API into a {@linkcode ServiceRecord}.
 * Non-string external IPs are kept as their JSON text so that they are
 * reported and refused rather than silently dropped.
 *
 * @throws {ServiceShapeError} when metadata.name or metadata.namespace is missing.
 */
export function projectService(obj: unknown): ServiceRecord {
  if (!isObject(obj) || !isObject(obj.metadata)) {
    throw new ServiceShapeError("Cannot read Service: metadata is missing");
  }
  const { name, namespace } = obj.metadata;
  if (typeof name !== "string" || typeof namespace !== "string" || !name || !namespace) {
    throw new ServiceShapeError(
      "Cannot read Service: metadata.name or metadata.namespace is missing",
    );
  }
  const spec = isObject(obj.spec) ? obj.spec : {};
  const raw = Array.isArray(spec.externalIPs) ? spec.externalIPs : [];
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
