/**
 * A collection of the Kubernetes API: its path ({@linkcode collectionPath}),
 * and one page of its LIST, checked to be a list of the expected kind before
 * anything in it is believed ({@linkcode readListPage}). Pure.
 *
 * @module
 */

import { ApiError } from "./errors.ts";

/** The parts of an API path to a collection. */
export interface CollectionRef {
  /** The API group; `""` or undefined for the core group (`/api/v1`). */
  readonly group?: string;
  readonly version: string;
  /** The plural resource name, e.g. `services`, `endpointslices`. */
  readonly resource: string;
}

/**
 * The API path of a collection in one namespace, or in all when `namespace`
 * is undefined: `/api/v1/namespaces/web/services`,
 * `/apis/discovery.k8s.io/v1/endpointslices`.
 */
export function collectionPath(ref: CollectionRef, namespace?: string): string {
  const base = ref.group ? `/apis/${ref.group}/${ref.version}` : `/api/${ref.version}`;
  const ns = namespace === undefined ? "" : `/namespaces/${encodeURIComponent(namespace)}`;
  return `${base}${ns}/${ref.resource}`;
}

/** The parts of one LIST page the engine uses, after checking it is a list. */
export interface ListPage {
  readonly items: readonly unknown[];
  readonly resourceVersion: string;
  readonly continue?: string;
}

/**
 * Checks that a LIST answer is a list of `kind`: `kind` (if present) is
 * `<kind>List`, `items` an array or null, `metadata.resourceVersion` a string.
 *
 * @throws {ApiError} naming the request and what is wrong.
 */
export function readListPage(body: unknown, kind: string, request: string): ListPage {
  const what = (problem: string) =>
    new ApiError(`${request}: the answer is not a ${kind}List (${problem}); kept what was known`);
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw what("not a JSON object");
  }
  const b = body as { kind?: unknown; items?: unknown; metadata?: unknown };
  if (b.kind !== undefined && b.kind !== `${kind}List`) {
    const k = typeof b.kind === "string" ? JSON.stringify(b.kind.slice(0, 64)) : typeof b.kind;
    throw what(`kind ${k}`);
  }
  if (b.items !== null && !Array.isArray(b.items)) {
    throw what(b.items === undefined ? "no items" : `items is ${typeof b.items}`);
  }
  const md = (typeof b.metadata === "object" && b.metadata !== null ? b.metadata : {}) as {
    resourceVersion?: unknown;
    continue?: unknown;
  };
  if (typeof md.resourceVersion !== "string" || md.resourceVersion === "") {
    throw what("no metadata.resourceVersion");
  }
  return {
    items: b.items ?? [],
    resourceVersion: md.resourceVersion,
    continue: typeof md.continue === "string" && md.continue ? md.continue : undefined,
  };
}

/** The resource version of a watch event's object, if it has one. */
export function resourceVersionOf(obj: Record<string, unknown>): string | undefined {
  const md = obj.metadata as { resourceVersion?: unknown } | undefined;
  return typeof md?.resourceVersion === "string" ? md.resourceVersion : undefined;
}

/** `namespace/name` of a raw object as far as it can be read, for the warned set. */
export function looseName(obj: unknown): string | undefined {
  const md = (obj as { metadata?: { namespace?: unknown; name?: unknown } } | null)?.metadata;
  if (typeof md !== "object" || md === null) return undefined;
  return `${String(md.namespace ?? "")}/${String(md.name ?? "")}`.slice(0, 320);
}
