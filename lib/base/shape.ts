/**
 * Reading objects from the Kubernetes API. Every value from the API is hostile
 * until parsed: a decoder takes `unknown`, keeps only the small record its
 * consumer needs, and throws {@linkcode ShapeError} for an object it cannot
 * read (the list-watch engine skips such an object with one warning).
 *
 * @module
 */

/** Raised when an API object is not of the shape a decoder can read. */
export class ShapeError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ShapeError";
  }
}

/** Whether `v` is a plain JSON object (not null, not an array). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The namespace and name of an object, which every namespaced decoder needs. */
export interface ObjectName {
  readonly namespace: string;
  readonly name: string;
}

/**
 * Reads `metadata.namespace` and `metadata.name`.
 *
 * @throws {ShapeError} naming `kind` when either is missing or not a string.
 */
export function objectName(obj: unknown, kind: string): ObjectName {
  if (!isObject(obj) || !isObject(obj.metadata)) {
    throw new ShapeError(`Cannot read ${kind}: metadata is missing`);
  }
  const { name, namespace } = obj.metadata;
  if (typeof name !== "string" || typeof namespace !== "string" || !name || !namespace) {
    throw new ShapeError(`Cannot read ${kind}: metadata.name or metadata.namespace is missing`);
  }
  return { namespace, name };
}
