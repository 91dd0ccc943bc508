/**
 * The agent's permissions, defined once: the `agent` permission set in
 * deno.json. `deno task start` loads it with `-P=agent`; the compiled binary
 * and the tests that run the bundle (`deno run --no-config`) get it as the
 * explicit flags this module derives from the same set. A test compiles with
 * both and checks that Deno bakes the same permissions.
 *
 * @module
 */

import config from "../deno.json" with { type: "json" };

/** The long form of a permission: what is allowed, denied, ignored. */
export interface PermissionRule {
  readonly allow?: boolean | readonly string[];
  readonly deny?: boolean | readonly string[];
  readonly ignore?: boolean | readonly string[];
}

/** One permission of a set, as deno.json writes it. */
export type PermissionValue = boolean | readonly string[] | PermissionRule;

/** A permission set from deno.json. */
export type PermissionSet = Readonly<Record<string, PermissionValue>>;

/** Raised when a set holds something the translation does not know or refuses. */
export class PermissionSetError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PermissionSetError";
  }
}

/** Permission names and the `--ignore-*` flags each supports. */
const KINDS: Readonly<Record<string, { readonly ignore: boolean }>> = {
  read: { ignore: true },
  write: { ignore: false },
  net: { ignore: false },
  env: { ignore: true },
  run: { ignore: false },
  ffi: { ignore: false },
  sys: { ignore: false },
  import: { ignore: false },
};

function flag(
  mode: string,
  kind: string,
  value: boolean | readonly string[] | undefined,
): string[] {
  if (value === undefined || value === false) return [];
  if (value === true) return [`--${mode}-${kind}`];
  if (!Array.isArray(value)) {
    throw new PermissionSetError(`${kind}.${mode}: expected a boolean or a list`);
  }
  if (value.length === 0) return [];
  for (const v of value) {
    if (typeof v !== "string" || v === "" || v.includes(",")) {
      throw new PermissionSetError(`${kind}.${mode}: ${JSON.stringify(v)} cannot be a flag value`);
    }
  }
  return [`--${mode}-${kind}=${value.join(",")}`];
}

/**
 * Translates a permission set into `deno run`/`deno compile` flags, always
 * with `--no-prompt`. Refuses `all` (that is `-A`) and any key it does not
 * know, so nothing in the set is silently dropped.
 *
 * @throws {PermissionSetError}
 */
export function permissionFlags(set: PermissionSet): string[] {
  const flags: string[] = ["--no-prompt"];
  for (const [kind, value] of Object.entries(set)) {
    if (kind === "all") throw new PermissionSetError("all: kube-gw never runs with -A");
    const known = KINDS[kind];
    if (!known) throw new PermissionSetError(`${kind}: unknown permission`);
    if (typeof value === "boolean" || Array.isArray(value)) {
      flags.push(...flag("allow", kind, value as boolean | readonly string[]));
      continue;
    }
    const { allow, deny, ignore, ...rest } = value as PermissionRule;
    const extra = Object.keys(rest);
    if (extra.length > 0) throw new PermissionSetError(`${kind}.${extra[0]}: unknown key`);
    if (ignore !== undefined && ignore !== false && !known.ignore) {
      throw new PermissionSetError(`${kind}.ignore: Deno has no --ignore-${kind}`);
    }
    flags.push(...flag("allow", kind, allow), ...flag("deny", kind, deny));
    flags.push(...flag("ignore", kind, ignore));
  }
  return flags;
}

/** The name of the shipped permission set in deno.json. */
export const AGENT_SET = "agent";

/** The shipped permission set, as deno.json holds it. */
export function agentPermissionSet(): PermissionSet {
  const sets = (config as unknown as { permissions?: Record<string, PermissionSet> }).permissions;
  const set = sets?.[AGENT_SET];
  if (!set) throw new PermissionSetError(`deno.json has no permission set "${AGENT_SET}"`);
  return set;
}

/** The flags the compiled binary bakes in and the tests run the bundle with. */
export function agentFlags(): string[] {
  return permissionFlags(agentPermissionSet());
}

/**
 * The V8 settings kube-gw runs with, wherever it runs (the binary, `deno task
 * start`, the tests' and benchmarks' bundle), for the agent and the controller
 * alike (one binary): semi-spaces of 2 MB keep the young generation small, so
 * a burst of short-lived objects is collected as it goes, and a heap growing
 * factor of 1.3 starts a full collection when the old generation has grown by
 * 30 % since the last one, instead of V8's up to 4× for small heaps (the
 * controller promotes tens of MB of records and in-flight requests per 10,000
 * status writes). Measured in docs/benchmarks.md.
 */
export const AGENT_V8_FLAG = "--v8-flags=--max-semi-space-size=2,--heap-growing-percent=30";

/** The environment variables the agent may read, from its permission set. */
export function agentEnvAllowList(): string[] {
  const env = agentPermissionSet().env;
  if (Array.isArray(env)) return [...env];
  if (typeof env === "object" && env !== null && !Array.isArray(env)) {
    const allow = (env as { allow?: unknown }).allow;
    if (Array.isArray(allow)) return [...allow];
  }
  throw new PermissionSetError("the agent set must list its environment variables");
}
