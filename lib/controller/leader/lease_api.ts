/**
 * The Lease of leader election over the API: GET it (absent is `undefined`),
 * create it (POST), and update it (PUT with the read resourceVersion as
 * precondition). Decisions are `decision.ts`'s; the loop is `elector.ts`'s.
 *
 * @module
 */

import type { JsonApi } from "../../kube/ports.ts";
import { decodeLease, type LeaseBody, type LeaseRecord } from "./decision.ts";
import { ApiError } from "../../kube/errors.ts";

/** The Lease's name. */
export const LEASE_NAME = "kube-gw-controller";

/** Reads and writes one Lease. */
export interface LeaseClient {
  /** The Lease, or `undefined` when it does not exist. */
  get(signal: AbortSignal): Promise<LeaseRecord | undefined>;
  /** Creates (POST) or updates (PUT) the Lease; returns the new resourceVersion. @throws {ApiError} 409 when someone else wrote first. */
  write(kind: "create" | "update", body: LeaseBody, signal: AbortSignal): Promise<string>;
}

function leasesPath(namespace: string): string {
  return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
}

/** The {@linkcode LeaseClient} of the Lease `name` in `namespace` on the API server. */
export function leaseClient(api: JsonApi, namespace: string, name = LEASE_NAME): LeaseClient {
  const path = `${leasesPath(namespace)}/${encodeURIComponent(name)}`;
  return {
    async get(signal) {
      try {
        return decodeLease(await api.json("GET", path, undefined, signal));
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) return undefined;
        throw err;
      }
    },
    async write(kind, body, signal) {
      const out = kind === "create"
        ? await api.json("POST", leasesPath(namespace), body, signal)
        : await api.json("PUT", path, body, signal);
      const rv = (out as { metadata?: { resourceVersion?: unknown } } | undefined)?.metadata
        ?.resourceVersion;
      return typeof rv === "string" ? rv : "";
    },
  };
}
