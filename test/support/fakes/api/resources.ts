/**
 * The resources the fake serves and how a URL path maps onto them:
 * `/api/v1/...` for the core group, `/apis/GROUP/VERSION/...` for the others,
 * each namespaced, listed across namespaces or in one, one object by name, and
 * the `status` subresource where the real server has one.
 *
 * @module
 */

/** A resource the fake serves. */
export interface ResourceType {
  /** Plural, as in the URL: `services`. */
  readonly resource: string;
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  /** Whether writes to the main resource keep `status`, and `/status` changes only it. */
  readonly statusSubresource: boolean;
  /** Cluster-scoped: no namespace in the path; stored under the namespace `""`. */
  readonly clusterScoped?: boolean;
  /** Whether `metadata.generation` starts at 1 and grows with each change of the spec (a CRD's). */
  readonly generation?: boolean;
}

/** Names the tests use for each resource. */
export type ResourceName =
  | "services"
  | "endpointslices"
  | "configmaps"
  | "leases"
  | "events"
  | "addresspools";

/** Every resource served, by its name. */
export const RESOURCES: Readonly<Record<ResourceName, ResourceType>> = {
  services: {
    resource: "services",
    group: "",
    version: "v1",
    kind: "Service",
    statusSubresource: true,
  },
  endpointslices: {
    resource: "endpointslices",
    group: "discovery.k8s.io",
    version: "v1",
    kind: "EndpointSlice",
    statusSubresource: false,
  },
  configmaps: {
    resource: "configmaps",
    group: "",
    version: "v1",
    kind: "ConfigMap",
    statusSubresource: false,
  },
  leases: {
    resource: "leases",
    group: "coordination.k8s.io",
    version: "v1",
    kind: "Lease",
    statusSubresource: false,
  },
  events: {
    resource: "events",
    group: "events.k8s.io",
    version: "v1",
    kind: "Event",
    statusSubresource: false,
  },
  addresspools: {
    resource: "addresspools",
    group: "kube-gw.io",
    version: "v1alpha1",
    kind: "AddressPool",
    statusSubresource: true,
    clusterScoped: true,
    generation: true,
  },
};

/** The namespace an object of `name` is stored under: `""` for a cluster-scoped resource. */
export function storedNamespace(name: ResourceName, namespace: string): string {
  return RESOURCES[name].clusterScoped ? "" : namespace;
}

/** `v1` or `group/version`. */
export function apiVersion(t: ResourceType): string {
  return t.group ? `${t.group}/${t.version}` : t.version;
}

/** A request path resolved to a resource. */
export interface Route {
  readonly name: ResourceName;
  readonly type: ResourceType;
  readonly namespace?: string;
  readonly object?: string;
  readonly subresource?: string;
}

const SEGMENT = "[a-z0-9]([-a-z0-9.]*[a-z0-9])?";
const PATH = new RegExp(
  `^/(?:api/(v1)|apis/([a-z0-9.-]+)/([a-z0-9]+))(?:/namespaces/(${SEGMENT}))?/([a-z]+)(?:/(${SEGMENT})(?:/([a-z]+))?)?$`,
);

/** Resolves a path, or undefined when the fake serves nothing there. */
export function route(path: string): Route | undefined {
  const m = PATH.exec(path);
  if (!m) return undefined;
  const [, coreVersion, group = "", groupVersion, namespace, , resource, object, , subresource] = m;
  const version = coreVersion ?? groupVersion;
  for (const [name, type] of Object.entries(RESOURCES) as [ResourceName, ResourceType][]) {
    if (type.resource === resource && type.group === group && type.version === version) {
      if (namespace && type.clusterScoped) return undefined;
      if (object && !namespace && !type.clusterScoped) return undefined;
      return { name, type, namespace, object, subresource };
    }
  }
  return undefined;
}
