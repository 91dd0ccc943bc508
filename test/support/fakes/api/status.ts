/**
 * `Status` objects shaped as kube-apiserver sends them (`kind: Status`,
 * `apiVersion: v1`, `status: Failure`, `message`, `reason`, `details`,
 * `code`), one constructor per reason the fake answers with.
 *
 * @module
 */

/** A Kubernetes `Status` body. */
export type StatusBody = Record<string, unknown> & { code: number; reason: string };

/** Builds a failure `Status` with `code`, `reason` and `message`, and `details` when given. */
export function failure(
  code: number,
  reason: string,
  message: string,
  details?: Record<string, unknown>,
): StatusBody {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
}

/** A success `Status`, as some DELETEs answer. */
export function success(details?: Record<string, unknown>): Record<string, unknown> {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Success",
    ...(details ? { details } : {}),
  };
}

const res = (resource: string, group: string) => group ? `${resource}.${group}` : resource;

/** 404 `services "x" not found`. */
export function notFound(resource: string, group: string, name: string): StatusBody {
  return failure(404, "NotFound", `${res(resource, group)} "${name}" not found`, {
    name,
    ...(group ? { group } : {}),
    kind: resource,
  });
}

/** 404 for a path the server does not serve. */
export function noSuchPath(): StatusBody {
  return failure(404, "NotFound", "the server could not find the requested resource", {});
}

/** 409 `services "x" already exists`. */
export function alreadyExists(resource: string, group: string, name: string): StatusBody {
  return failure(409, "AlreadyExists", `${res(resource, group)} "${name}" already exists`, {
    name,
    ...(group ? { group } : {}),
    kind: resource,
  });
}

/** 409 Conflict on a resourceVersion precondition that no longer holds. */
export function conflict(resource: string, group: string, name: string): StatusBody {
  return failure(
    409,
    "Conflict",
    `Operation cannot be fulfilled on ${
      res(resource, group)
    } "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name, ...(group ? { group } : {}), kind: resource },
  );
}

/** 422 Invalid, with one cause naming the field. */
export function invalid(
  kind: string,
  group: string,
  name: string,
  field: string,
  message: string,
): StatusBody {
  return failure(422, "Invalid", `${kind} "${name}" is invalid: ${field}: ${message}`, {
    name,
    ...(group ? { group } : {}),
    kind,
    causes: [{ reason: "FieldValueInvalid", message, field }],
  });
}

/** 400 BadRequest. */
export function badRequest(message: string): StatusBody {
  return failure(400, "BadRequest", message);
}

/** 401 as the authenticator answers it. */
export function unauthorized(): StatusBody {
  return failure(401, "Unauthorized", "Unauthorized");
}

/** 405 MethodNotAllowed. */
export function methodNotAllowed(): StatusBody {
  return failure(
    405,
    "MethodNotAllowed",
    "the server does not allow this method on the requested resource",
    {},
  );
}

/** 415 for a patch type the fake does not implement. */
export function unsupportedMediaType(type: string): StatusBody {
  return failure(
    415,
    "UnsupportedMediaType",
    `the body of the request was in an unknown format - accepted media types include: application/merge-patch+json (got ${type})`,
  );
}

/** 410 Expired for a watch from a compacted resourceVersion. */
export function tooOldResourceVersion(asked: number, oldest: number): StatusBody {
  return failure(410, "Expired", `too old resource version: ${asked} (${oldest})`);
}

/** 410 Expired for a continue token that is too old; `next` is the inconsistent continue. */
export function continueExpired(next?: string): StatusBody {
  return {
    ...failure(
      410,
      "Expired",
      "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
    ),
    metadata: next ? { continue: next } : {},
  };
}

/** 504 "Too large resource version", as the watch cache answers a resourceVersion it has not reached. */
export function tooLargeResourceVersion(asked: number, current: number): StatusBody {
  return failure(
    504,
    "Timeout",
    `Timeout: Too large resource version: ${asked}, current: ${current}`,
    {
      causes: [{ reason: "ResourceVersionTooLarge", message: "Too large resource version" }],
      retryAfterSeconds: 1,
    },
  );
}

/** 429 as API Priority and Fairness sends it. */
export function tooManyRequests(retryAfterSeconds: number): StatusBody {
  return failure(429, "TooManyRequests", "Too many requests, please try again later.", {
    retryAfterSeconds,
  });
}

const REASONS: Record<number, string> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  409: "Conflict",
  410: "Expired",
  429: "TooManyRequests",
  500: "InternalError",
  503: "ServiceUnavailable",
  504: "Timeout",
};

/** A failure for an injected status code, with the reason the real server uses for it. */
export function injected(code: number): StatusBody {
  return failure(code, REASONS[code] ?? "InternalError", `injected failure ${code}`);
}
