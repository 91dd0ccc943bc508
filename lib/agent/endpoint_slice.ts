/**
 * The part of a `discovery.k8s.io/v1` EndpointSlice that the announce decision
 * needs, projected out of the API's JSON so whole objects are never kept.
 *
 * What is kept follows kube-proxy (`pkg/proxy/endpointslicecache.go`): an
 * endpoint is identified by its first address; `conditions.ready` and
 * `conditions.serving` count as true when unset, `conditions.terminating` as
 * false when unset; a slice without any numbered port programs no rule, so its
 * endpoints are not kept. Pure: no I/O.
 *
 * @module
 */

import { normalizeTrustedIp } from "../base/ip.ts";
import { isObject, objectName } from "../base/shape.ts";

/** The label that links a slice to its Service. */
export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

/**
 * Endpoints kept per slice. The API refuses slices with more than 1000
 * endpoints, so a real API server never reaches the cap; a hostile one cannot
 * make one slice cost more than this.
 *
 * @default 1000
 */
export const MAX_ENDPOINTS_PER_SLICE = 1000;

/** Longest endpoint address kept (an IPv6 text is at most 45 characters). */
const MAX_ADDRESS_LENGTH = 45;
/** Longest node name kept (a DNS subdomain is at most 253 characters). */
const MAX_NODE_NAME_LENGTH = 253;

/** What the decision keeps of one endpoint. */
export interface EndpointRecord {
  /** The first address: the dedupe key across the slices of one Service. */
  readonly address: string;
  /** `conditions.ready`, true when unset. */
  readonly ready: boolean;
  /** `conditions.serving`, true when unset. */
  readonly serving: boolean;
  /** `conditions.terminating`, false when unset. */
  readonly terminating: boolean;
  /** `nodeName`, when set and sane. */
  readonly nodeName?: string;
}

/** The address family of a slice: what kube-proxy serves, or ignored. */
export type SliceFamily = 4 | 6 | "ignored";

/** What kube-gw keeps of one EndpointSlice. */
export interface EndpointSliceRecord {
  readonly namespace: string;
  /** The slice's own name. */
  readonly name: string;
  /**
   * The Service's name from the `kubernetes.io/service-name` label; undefined
   * when the label is missing, and then the slice counts for no Service.
   */
  readonly service: string | undefined;
  /** 4 for `IPv4`, 6 for `IPv6`; `ignored` for `FQDN` or anything else. */
  readonly family: SliceFamily;
  /**
   * The endpoints kube-proxy would use, at most
   * {@linkcode MAX_ENDPOINTS_PER_SLICE}; empty for an ignored family, a slice
   * without a Service or a slice without a numbered port.
   */
  readonly endpoints: readonly EndpointRecord[];
}

function sliceFamily(addressType: unknown): SliceFamily {
  if (addressType === "IPv4") return 4;
  if (addressType === "IPv6") return 6;
  return "ignored";
}

function hasNumberedPort(ports: unknown): boolean {
  if (!Array.isArray(ports)) return false;
  return ports.some((p) => isObject(p) && typeof p.port === "number");
}

/**
 * One endpoint, or undefined when its first address is not an IP address of
 * the slice's family (kube-proxy could program no rule for it).
 */
function decodeEndpoint(raw: unknown, family: 4 | 6): EndpointRecord | undefined {
  if (!isObject(raw) || !Array.isArray(raw.addresses)) return undefined;
  const address = raw.addresses[0];
  if (typeof address !== "string" || address === "" || address.length > MAX_ADDRESS_LENGTH) {
    return undefined;
  }
  if (normalizeTrustedIp(address)?.family !== family) return undefined;
  const c = isObject(raw.conditions) ? raw.conditions : {};
  const node = raw.nodeName;
  return {
    address,
    ready: c.ready !== false,
    serving: c.serving !== false,
    terminating: c.terminating === true,
    ...(typeof node === "string" && node !== "" && node.length <= MAX_NODE_NAME_LENGTH
      ? { nodeName: node }
      : {}),
  };
}

/**
 * Projects an EndpointSlice from the API into an {@linkcode EndpointSliceRecord}.
 *
 * A slice without the `kubernetes.io/service-name` label is not an error: it is
 * decoded with `service: undefined` and no endpoints, so that a slice whose
 * label is removed withdraws what it counted for before (a {@linkcode
 * ShapeError} would make the engine skip the update and keep the stale count).
 * Endpoints without a usable first address (missing, too long, or not an IP
 * address of the slice's family) are skipped; conditions that are not
 * booleans read as unset.
 *
 * @throws {ShapeError} when metadata.name or metadata.namespace is missing.
 */
export function decodeEndpointSlice(obj: unknown): EndpointSliceRecord {
  const { namespace, name } = objectName(obj, "EndpointSlice");
  const o = obj as Record<string, unknown>;
  const labels = isObject((o.metadata as Record<string, unknown>).labels)
    ? (o.metadata as { labels: Record<string, unknown> }).labels
    : {};
  const label = labels[SERVICE_NAME_LABEL];
  const service = typeof label === "string" && label !== "" && label.length <= 253
    ? label
    : undefined;
  const family = sliceFamily(o.addressType);
  const endpoints: EndpointRecord[] = [];
  if (service !== undefined && family !== "ignored" && hasNumberedPort(o.ports)) {
    const raw = Array.isArray(o.endpoints) ? o.endpoints : [];
    const n = Math.min(raw.length, MAX_ENDPOINTS_PER_SLICE);
    for (let i = 0; i < n; i++) {
      const e = decodeEndpoint(raw[i], family);
      if (e) endpoints.push(e);
    }
  }
  return { namespace, name, service, family, endpoints };
}
