/**
 * What the real server does to Services beyond storing them: a ClusterIP is
 * allocated on create and immutable after, `type`, `sessionAffinity` and port
 * protocols are defaulted, status starts empty; and the short `ServiceSpec`
 * the tests write Services in.
 *
 * @module
 */

import type { K8sObject } from "./store.ts";

/** A Service as the tests write it: the fields that matter. */
export interface ServiceSpec {
  readonly namespace?: string;
  readonly name: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
  readonly type?: string;
  readonly clusterIP?: string;
  readonly externalIPs?: readonly unknown[];
  readonly ports?: readonly Record<string, unknown>[];
  readonly selector?: Record<string, string>;
  readonly loadBalancerClass?: string;
  readonly loadBalancerIP?: string;
  readonly externalTrafficPolicy?: string;
  readonly ipFamilies?: readonly string[];
  readonly ipFamilyPolicy?: string;
  /** Any other `spec` fields, merged last. */
  readonly spec?: Record<string, unknown>;
  /** `status`; without it a new Service has `{loadBalancer: {}}` and an update keeps the stored one. */
  readonly status?: Record<string, unknown>;
}

/** The Service object for `spec` (metadata the server maintains is filled in by the writer). */
export function serviceObject(spec: ServiceSpec): K8sObject {
  const s = spec;
  return {
    kind: "Service",
    apiVersion: "v1",
    metadata: {
      name: s.name,
      namespace: s.namespace ?? "default",
      uid: "",
      resourceVersion: "",
      ...(s.labels ? { labels: { ...s.labels } } : {}),
      ...(s.annotations ? { annotations: { ...s.annotations } } : {}),
    },
    spec: {
      type: s.type ?? "ClusterIP",
      ...(s.clusterIP ? { clusterIP: s.clusterIP } : {}),
      ...(s.externalIPs ? { externalIPs: [...s.externalIPs] } : {}),
      ports: s.ports
        ? s.ports.map((p) => ({ ...p }))
        : [{ port: 80, protocol: "TCP", targetPort: 80 }],
      ...(s.selector ? { selector: { ...s.selector } } : {}),
      ...(s.loadBalancerClass ? { loadBalancerClass: s.loadBalancerClass } : {}),
      ...(s.loadBalancerIP ? { loadBalancerIP: s.loadBalancerIP } : {}),
      ...(s.externalTrafficPolicy ? { externalTrafficPolicy: s.externalTrafficPolicy } : {}),
      ...(s.ipFamilies ? { ipFamilies: [...s.ipFamilies] } : {}),
      ...(s.ipFamilyPolicy ? { ipFamilyPolicy: s.ipFamilyPolicy } : {}),
      ...structuredClone(s.spec ?? {}),
    },
    ...(s.status ? { status: structuredClone(s.status) } : {}),
  };
}

/** Allocates ClusterIPs from 10.96.0.0/16 in order, as the tests expect (10.96.0.10 first). */
export class ClusterIpAllocator {
  #next = 10;
  next(): string {
    const n = this.#next++;
    return `10.96.${(n >> 8) & 255}.${n & 255}`;
  }
}

type Spec = Record<string, unknown>;

/**
 * Defaults a Service being created or updated, as the real server does.
 * Returns an error message naming the field, or undefined.
 */
export function defaultService(
  obj: K8sObject,
  prior: K8sObject | undefined,
  ips: ClusterIpAllocator,
): { field: string; message: string } | undefined {
  if (typeof obj.spec !== "object" || obj.spec === null || Array.isArray(obj.spec)) {
    obj.spec = {};
  }
  const spec = obj.spec as Spec;
  const old = prior?.spec as Spec | undefined;
  spec.type ??= "ClusterIP";
  spec.sessionAffinity ??= "None";
  if (Array.isArray(spec.ports)) {
    for (const p of spec.ports) {
      if (p && typeof p === "object" && !("protocol" in p)) (p as Spec).protocol = "TCP";
    }
  }
  if (spec.type === "ExternalName") return undefined;
  if (old) {
    if (spec.clusterIP === undefined || spec.clusterIP === "") {
      if (old.clusterIP !== undefined) spec.clusterIP = old.clusterIP;
      if (old.clusterIPs !== undefined) spec.clusterIPs = old.clusterIPs;
    } else if (old.clusterIP !== undefined && spec.clusterIP !== old.clusterIP) {
      return { field: "spec.clusterIP", message: "field is immutable" };
    }
  }
  if (spec.clusterIP === undefined || spec.clusterIP === "") spec.clusterIP = ips.next();
  if (spec.clusterIP !== "None") spec.clusterIPs ??= [spec.clusterIP];
  return undefined;
}
