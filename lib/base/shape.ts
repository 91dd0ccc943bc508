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

/** The longest name the API server accepts (a DNS subdomain). */
export const MAX_NAME_LENGTH = 253;
/** The longest namespace the API server accepts (a DNS label). */
export const MAX_NAMESPACE_LENGTH = 63;

/**
 * Reads `metadata.namespace` and `metadata.name`. Longer names than the API
 * server accepts are refused, so that every name kube-gw keeps, logs or
 * prints is bounded.
 *
 * @throws {ShapeError} naming `kind` when either is missing, not a string, or too long.
 */
export function objectName(obj: unknown, kind: string): ObjectName {
  if (!isObject(obj) || !isObject(obj.metadata)) {
    throw new ShapeError(`Cannot read ${kind}: metadata is missing`);
  }
  const { name, namespace } = obj.metadata;
  if (typeof name !== "string" || typeof namespace !== "string" || !name || !namespace) {
    throw new ShapeError(`Cannot read ${kind}: metadata.name or metadata.namespace is missing`);
  }
  if (name.length > MAX_NAME_LENGTH || namespace.length > MAX_NAMESPACE_LENGTH) {
    throw new ShapeError(
      `Cannot read ${kind}: metadata.name or metadata.namespace is too long (${name.length} and ${namespace.length} characters; at most ${MAX_NAME_LENGTH} and ${MAX_NAMESPACE_LENGTH})`,
    );
  }
  return { namespace, name };
}
