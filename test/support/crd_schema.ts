/**
 * A custom resource checked against its CustomResourceDefinition as the API
 * server checks it at `kubectl apply`, without a cluster: the structural
 * OpenAPI schema (types, required, unknown fields as kubectl's strict field
 * validation reports them, list sizes, string lengths, patterns, enums, sets)
 * and the `x-kubernetes-validations` CEL rules, parsed and evaluated by a CEL
 * evaluator (`@marcbachmann/cel-js`) with the functions of Kubernetes' CEL
 * `cidr` and `ip` libraries that the rules use registered in TypeScript, with
 * Kubernetes' semantics (netip: no leading zeros in IPv4, no IPv4-mapped
 * IPv6, any textual IPv6 form; `cidr()` of a non-CIDR is an error).
 *
 * Messages are shaped as the API server's (`spec.cidrs[0]: Invalid value:
 * "string": must be a CIDR ...`).
 *
 * @module
 */

import { Environment } from "@marcbachmann/cel-js";
import { familyBits, formatV4, formatV6, parseIp } from "../../lib/base/ip.ts";

type Obj = Record<string, unknown>;

/** The parts of an OpenAPI v3 schema a CRD uses. */
export interface Schema {
  readonly type?: string;
  readonly properties?: Record<string, Schema>;
  readonly required?: readonly string[];
  readonly items?: Schema;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  readonly enum?: readonly unknown[];
  readonly "x-kubernetes-list-type"?: string;
  readonly "x-kubernetes-validations"?: readonly {
    rule: string;
    message?: string;
    messageExpression?: string;
  }[];
}

/** A CIDR as Kubernetes' CEL `cidr` library holds it (not necessarily masked). */
interface CelCidr {
  readonly family: 4 | 6;
  readonly value: bigint;
  readonly prefix: number;
}

/** `cidr(s)` of Kubernetes' CEL library, or undefined where `isCIDR(s)` is false. */
export function celCidr(s: string): CelCidr | undefined {
  const m = /^([^/]+)\/([0-9]{1,3})$/.exec(s);
  if (!m) return undefined;
  const parsed = parseIp(m[1]);
  let family: 4 | 6;
  let text: string;
  if (parsed.ok) {
    family = parsed.ip.family;
    text = parsed.ip.text;
  } else if (parsed.problem === "non_canonical" && m[1].includes(":") && parsed.canonical) {
    // Any textual IPv6 form is an address to netip (upper case, zeros, no compression).
    family = 6;
    text = parsed.canonical;
  } else {
    return undefined; // IPv4 with leading zeros, IPv4-mapped IPv6, zones, garbage.
  }
  const prefix = Number(m[2]);
  if (prefix > familyBits(family) || (m[2].length > 1 && m[2].startsWith("0"))) return undefined;
  const ip = parseIp(text);
  if (!ip.ok) return undefined;
  return { family, value: ip.ip.value, prefix };
}

function masked(c: CelCidr): CelCidr {
  const bits = BigInt(familyBits(c.family));
  const all = (1n << bits) - 1n;
  const mask = (all << (bits - BigInt(c.prefix))) & all;
  return { ...c, value: c.value & mask };
}

function cidrText(c: CelCidr): string {
  return `${c.family === 4 ? formatV4(c.value) : formatV6(c.value)}/${c.prefix}`;
}

/** `a.containsCIDR(b)`: b's address lies in a, and b is no larger. */
function containsCidr(a: CelCidr, b: CelCidr): boolean {
  if (a.family !== b.family || a.prefix > b.prefix) return false;
  return masked(a).value === masked({ ...b, prefix: a.prefix }).value;
}

/** Kubernetes' `net.CIDR` (not necessarily masked). */
class NetCidr {
  constructor(readonly c: CelCidr) {}
}
/** Kubernetes' `net.IP`. */
class NetIp {
  constructor(readonly family: 4 | 6, readonly value: bigint) {}
}

/** A CEL environment with `self` and the functions of Kubernetes' `cidr` and `ip` libraries the CRDs use. */
export function kubernetesCel(): Environment {
  return new Environment()
    .registerType("net.CIDR", NetCidr)
    .registerType("net.IP", NetIp)
    .registerVariable("self", "dyn")
    .registerFunction("isCIDR(string): bool", (s: string) => celCidr(s) !== undefined)
    .registerFunction("cidr(string): net.CIDR", (s: string) => {
      const c = celCidr(s);
      if (!c) throw new Error(`network address parse error during conversion from string: ${s}`);
      return new NetCidr(c);
    })
    .registerFunction("net.CIDR.masked(): net.CIDR", (c: NetCidr) => new NetCidr(masked(c.c)))
    .registerFunction("net.CIDR.prefixLength(): int", (c: NetCidr) => BigInt(c.c.prefix))
    .registerFunction("net.CIDR.ip(): net.IP", (c: NetCidr) => new NetIp(c.c.family, c.c.value))
    .registerFunction("net.IP.family(): int", (ip: NetIp) => BigInt(ip.family))
    .registerFunction(
      "net.CIDR.containsCIDR(net.CIDR): bool",
      (a: NetCidr, b: NetCidr) => containsCidr(a.c, b.c),
    )
    .registerFunction("string(net.CIDR): string", (c: NetCidr) => cidrText(c.c));
}

const CEL = kubernetesCel();

/** Evaluates one CEL expression with `self`. */
export function celEvaluate(expression: string, self: unknown): unknown {
  return CEL.evaluate(expression, { self });
}

function typeName(v: unknown): string {
  if (Array.isArray(v)) return "array";
  if (v === null) return "null";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

const shown = (v: unknown) => typeof v === "string" ? JSON.stringify(v) : String(v);

/**
 * The errors the API server gives for `value` under `schema` at `path`
 * (empty when it accepts it). CEL rules run only where the schema holds, as
 * the API server runs them only on values of the declared type.
 */
export function checkSchema(value: unknown, schema: Schema, path: string): string[] {
  const at = path || "<root>";
  const t = schema.type;
  if (t !== undefined) {
    const actual = typeName(value);
    const ok = t === actual || (t === "number" && actual === "integer");
    if (!ok) return [`${at}: Invalid value: "${actual}": ${at} in body must be of type ${t}`];
  }
  const errors: string[] = [];
  if (schema.enum && !schema.enum.includes(value)) {
    errors.push(
      `${at}: Unsupported value: ${shown(value)}: supported values: ${
        schema.enum.map(shown).join(", ")
      }`,
    );
  }
  if (typeof value === "string") {
    if (schema.maxLength !== undefined && value.length > schema.maxLength) {
      errors.push(`${at}: Too long: may not be more than ${schema.maxLength} bytes`);
    }
    if (schema.minLength !== undefined && value.length < schema.minLength) {
      errors.push(
        `${at}: Invalid value: ${shown(value)}: should be at least ${schema.minLength} chars long`,
      );
    }
    if (schema.pattern && !new RegExp(schema.pattern).test(value)) {
      errors.push(
        `${at}: Invalid value: ${shown(value)}: ${at} in body should match '${schema.pattern}'`,
      );
    }
  }
  if (Array.isArray(value)) {
    if (schema.maxItems !== undefined && value.length > schema.maxItems) {
      errors.push(`${at}: Too many: ${value.length}: must have at most ${schema.maxItems} items`);
    }
    if (schema.minItems !== undefined && value.length < schema.minItems) {
      errors.push(
        `${at}: Invalid value: ${value.length}: ${at} in body should have at least ${schema.minItems} items`,
      );
    }
    if (schema["x-kubernetes-list-type"] === "set") {
      const seen = new Set<string>();
      for (const [i, v] of value.entries()) {
        const key = JSON.stringify(v);
        if (seen.has(key)) errors.push(`${at}[${i}]: Duplicate value: ${shown(v)}`);
        seen.add(key);
      }
    }
    if (schema.items) {
      for (const [i, v] of value.entries()) {
        errors.push(...checkSchema(v, schema.items, `${path}[${i}]`));
      }
    }
  }
  if (typeName(value) === "object" && schema.properties) {
    const o = value as Obj;
    for (const key of schema.required ?? []) {
      if (o[key] === undefined) errors.push(`${path ? `${path}.` : ""}${key}: Required value`);
    }
    for (const [key, v] of Object.entries(o)) {
      const sub = schema.properties[key];
      const where = path ? `${path}.${key}` : key;
      if (!sub) errors.push(`unknown field "${where}"`);
      else if (key !== "metadata" || path !== "") errors.push(...checkSchema(v, sub, where));
    }
  }
  if (errors.length > 0) return errors;
  for (const v of schema["x-kubernetes-validations"] ?? []) {
    if (celEvaluate(v.rule, value) === true) continue;
    const message = v.messageExpression
      ? String(celEvaluate(v.messageExpression, value))
      : v.message ?? "failed rule";
    errors.push(`${at}: Invalid value: "${typeName(value)}": ${message}`);
  }
  return errors;
}

/** Every CEL rule and message expression of a schema. */
export function celRules(schema: Schema): string[] {
  const out: string[] = [];
  for (const v of schema["x-kubernetes-validations"] ?? []) {
    out.push(v.rule);
    if (v.messageExpression) out.push(v.messageExpression);
  }
  for (const sub of Object.values(schema.properties ?? {})) out.push(...celRules(sub));
  if (schema.items) out.push(...celRules(schema.items));
  return out;
}
