/**
 * Create, update, merge-patch and delete with the real server's rules: names
 * and namespaces must agree with the URL, 409 AlreadyExists on create, 409
 * Conflict when a resourceVersion precondition (in the body, the patch or
 * DELETE's preconditions) no longer holds, `uid` and `creationTimestamp`
 * kept, and the status subresource: a write to the main resource keeps the
 * stored `status`, a write to `/status` changes only `status`.
 *
 * @module
 */

import { mergePatch } from "./merge_patch.ts";
import { apiVersion, type ResourceName, RESOURCES, storedNamespace } from "./resources.ts";
import { ClusterIpAllocator, defaultService } from "./services.ts";
import * as S from "./status.ts";
import type { K8sObject, Store } from "./store.ts";

/** What a write did: the object and HTTP code, or a `Status` to answer with. */
export type WriteResult =
  | { readonly ok: true; readonly code: number; readonly object: K8sObject }
  | { readonly ok: false; readonly status: S.StatusBody };

/** Options of a write. */
export interface WriteOptions {
  /** `"status"` for the status subresource. */
  readonly subresource?: string;
  /** Check the resourceVersion in the body or patch (tests' own writes skip it). */
  readonly preconditions?: boolean;
}

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const GENERATE = "bcdfghjklmnpqrstvwxz2456789";

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isStatus(x: K8sObject | S.StatusBody): x is S.StatusBody {
  return x.kind === "Status";
}

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}

/**
 * Applies writes to a {@linkcode Store}. Bodies become stored objects: the
 * caller hands over a body it will not touch again (parsed JSON, or a copy).
 */
export class Writer {
  readonly #store: Store;
  readonly #ips = new ClusterIpAllocator();

  constructor(store: Store) {
    this.#store = store;
  }

  #fail(status: S.StatusBody): WriteResult {
    return { ok: false, status };
  }

  /** Checks a body and gives it the resource's kind and apiVersion and the URL's namespace. */
  #shape(
    resource: ResourceName,
    namespace: string,
    body: unknown,
    name?: string,
  ): K8sObject | S.StatusBody {
    const t = RESOURCES[resource];
    if (!isObject(body)) return S.badRequest("the body of the request must be a JSON object");
    if (body.kind !== undefined && body.kind !== t.kind) {
      return S.badRequest(`the kind of the object (${String(body.kind)}) must be ${t.kind}`);
    }
    if (body.apiVersion !== undefined && body.apiVersion !== apiVersion(t)) {
      return S.badRequest(
        `the apiVersion of the object (${String(body.apiVersion)}) must be ${apiVersion(t)}`,
      );
    }
    const meta = isObject(body.metadata) ? body.metadata : {};
    if (meta.namespace !== undefined && meta.namespace !== namespace) {
      return S.badRequest(
        "the namespace of the provided object does not match the namespace sent on the request",
      );
    }
    if (name !== undefined && meta.name !== undefined && meta.name !== name) {
      return S.badRequest(
        `the name of the object (${
          String(meta.name)
        }) does not match the name on the URL (${name})`,
      );
    }
    const obj = body as K8sObject;
    obj.kind = t.kind;
    obj.apiVersion = apiVersion(t);
    obj.metadata = { ...meta, namespace } as K8sObject["metadata"];
    if (name !== undefined) obj.metadata.name = name;
    return obj;
  }

  /** Creates an object in `namespace` (POST). */
  create(resource: ResourceName, ns: string, body: unknown): WriteResult {
    const t = RESOURCES[resource];
    const namespace = storedNamespace(resource, ns);
    const obj = this.#shape(resource, namespace, body);
    if (isStatus(obj)) return this.#fail(obj);
    const meta = obj.metadata;
    if (!meta.name && typeof meta.generateName === "string" && meta.generateName) {
      let suffix = "";
      for (let i = 0; i < 5; i++) suffix += GENERATE[Math.floor(Math.random() * GENERATE.length)];
      meta.name = `${meta.generateName}${suffix}`;
    }
    if (typeof meta.name !== "string" || !meta.name) {
      return this.#fail(
        S.invalid(t.kind, t.group, "", "metadata.name", "name or generateName is required"),
      );
    }
    if (meta.name.length > 253 || !NAME.test(meta.name)) {
      return this.#fail(
        S.invalid(
          t.kind,
          t.group,
          meta.name,
          "metadata.name",
          "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'",
        ),
      );
    }
    if (this.#store.get(resource, namespace, meta.name)) {
      return this.#fail(S.alreadyExists(t.resource, t.group, meta.name));
    }
    meta.uid = this.#store.uid();
    meta.creationTimestamp = now();
    meta.resourceVersion = "";
    if (t.generation) meta.generation = 1;
    if (t.statusSubresource) delete obj.status;
    if (resource === "services") {
      obj.status = { loadBalancer: {} };
      const err = defaultService(obj, undefined, this.#ips);
      if (err) return this.#fail(S.invalid(t.kind, t.group, meta.name, err.field, err.message));
    }
    this.#store.commit(resource, "ADDED", obj);
    return { ok: true, code: 201, object: obj };
  }

  /** Replaces an object (PUT), or only its status with `subresource: "status"`. */
  update(
    resource: ResourceName,
    ns: string,
    name: string,
    body: unknown,
    opts: WriteOptions = {},
  ): WriteResult {
    const t = RESOURCES[resource];
    const namespace = storedNamespace(resource, ns);
    const obj = this.#shape(resource, namespace, body, name);
    if (isStatus(obj)) return this.#fail(obj);
    const prior = this.#store.get(resource, namespace, name);
    if (!prior) return this.#fail(S.notFound(t.resource, t.group, name));
    const asked = obj.metadata.resourceVersion;
    if (
      opts.preconditions !== false && asked !== undefined && asked !== "" &&
      asked !== prior.metadata.resourceVersion
    ) {
      return this.#fail(S.conflict(t.resource, t.group, name));
    }
    let next: K8sObject;
    if (opts.subresource === "status") {
      // Stored objects are never changed in place, so the new one may share their parts.
      next = { ...prior, metadata: { ...prior.metadata }, status: obj.status };
      if (obj.status === undefined) delete next.status;
    } else {
      next = obj;
      next.metadata.uid = prior.metadata.uid;
      next.metadata.creationTimestamp = prior.metadata.creationTimestamp;
      if (t.generation) {
        const changed = JSON.stringify(next.spec) !== JSON.stringify(prior.spec);
        next.metadata.generation = Number(prior.metadata.generation ?? 1) + (changed ? 1 : 0);
      }
      if (t.statusSubresource) {
        if (prior.status !== undefined) next.status = prior.status;
        else delete next.status;
      }
      if (resource === "services") {
        const err = defaultService(next, prior, this.#ips);
        if (err) return this.#fail(S.invalid(t.kind, t.group, name, err.field, err.message));
      }
    }
    this.#store.commit(resource, "MODIFIED", next, prior);
    return { ok: true, code: 200, object: next };
  }

  /** Applies a JSON merge patch (PATCH `application/merge-patch+json`). */
  patch(
    resource: ResourceName,
    ns: string,
    name: string,
    patch: unknown,
    opts: WriteOptions = {},
  ): WriteResult {
    const t = RESOURCES[resource];
    const namespace = storedNamespace(resource, ns);
    if (!isObject(patch)) return this.#fail(S.badRequest("the patch must be a JSON object"));
    const prior = this.#store.get(resource, namespace, name);
    if (!prior) return this.#fail(S.notFound(t.resource, t.group, name));
    const asked = isObject(patch.metadata) ? patch.metadata.resourceVersion : undefined;
    if (
      opts.preconditions !== false && typeof asked === "string" &&
      asked !== prior.metadata.resourceVersion
    ) {
      return this.#fail(S.conflict(t.resource, t.group, name));
    }
    const merged = mergePatch(structuredClone(prior), patch) as K8sObject;
    if (isObject(merged.metadata)) merged.metadata.resourceVersion = "";
    return this.update(resource, namespace, name, merged, { ...opts, preconditions: false });
  }

  /** Deletes an object, checking DELETE's `preconditions` when given. */
  delete(
    resource: ResourceName,
    ns: string,
    name: string,
    preconditions?: { uid?: unknown; resourceVersion?: unknown },
  ): WriteResult {
    const t = RESOURCES[resource];
    const namespace = storedNamespace(resource, ns);
    const prior = this.#store.get(resource, namespace, name);
    if (!prior) return this.#fail(S.notFound(t.resource, t.group, name));
    if (preconditions?.uid !== undefined && preconditions.uid !== prior.metadata.uid) {
      return this.#fail(
        S.failure(
          409,
          "Conflict",
          `Operation cannot be fulfilled on ${t.resource} "${name}": Precondition failed: UID in precondition: ${
            String(preconditions.uid)
          }, UID in object meta: ${prior.metadata.uid}`,
          { name, kind: t.resource },
        ),
      );
    }
    if (
      preconditions?.resourceVersion !== undefined &&
      preconditions.resourceVersion !== prior.metadata.resourceVersion
    ) {
      return this.#fail(S.conflict(t.resource, t.group, name));
    }
    const gone = { ...prior, metadata: { ...prior.metadata } };
    this.#store.commit(resource, "DELETED", gone, prior);
    return { ok: true, code: 200, object: gone };
  }

  /** Stores objects as an existing cluster has them (no events, history compacted). */
  seed(resource: ResourceName, bodies: Iterable<unknown>): void {
    const t = RESOURCES[resource];
    const objs: K8sObject[] = [];
    const created = now();
    for (const body of bodies) {
      const b = body as { metadata?: { namespace?: string } };
      const ns = storedNamespace(resource, b.metadata?.namespace ?? "default");
      const obj = this.#shape(resource, ns, body);
      if (isStatus(obj)) throw new Error(String(obj.message));
      obj.metadata.uid = this.#store.uid();
      obj.metadata.creationTimestamp = created;
      if (t.generation) obj.metadata.generation = 1;
      if (resource === "services") {
        obj.status ??= { loadBalancer: {} };
        defaultService(obj, undefined, this.#ips);
      }
      if (!obj.metadata.name) throw new Error(`${t.kind} without a name`);
      objs.push(obj);
    }
    this.#store.load(resource, objs);
  }
}
