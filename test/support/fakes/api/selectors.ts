/**
 * Label selectors (equality- and set-based, as the API accepts them) and
 * field selectors (`metadata.name` and `metadata.namespace`, with `=`, `==`
 * and `!=`; any other field is refused as the real server refuses it).
 *
 * @module
 */

/** One parsed selector: true when an object matches. */
export type Matcher = (obj: { metadata: Record<string, unknown> }) => boolean;

type Requirement = (labels: Record<string, string>) => boolean;

function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of text) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      parts.push(cur);
      cur = "";
    } else cur += ch;
  }
  parts.push(cur);
  return parts;
}

/** Parses a label selector into requirements on a label map; throws on a malformed one. */
export function parseSelector(text: string | null): Requirement[] {
  if (!text) return [];
  return splitTopLevel(text).map((raw) => {
    const p = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/.exec(p))) {
      const [, k, op, v] = m;
      return op === "!=" ? (l) => l[k] !== v : (l) => l[k] === v;
    }
    if ((m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(p))) {
      const [, k, op, list] = m;
      const values = list.split(",").map((s) => s.trim());
      return op === "in" ? (l) => values.includes(l[k]) : (l) => !values.includes(l[k]);
    }
    if ((m = /^!([\w./-]+)$/.exec(p))) {
      const k = m[1];
      return (l) => !(k in l);
    }
    if ((m = /^([\w./-]+)$/.exec(p))) {
      const k = m[1];
      return (l) => k in l;
    }
    throw new Error(`unable to parse requirement: ${p}`);
  });
}

/** Parses a field selector; throws with the real server's message on an unsupported field. */
export function parseFieldSelector(text: string | null): Requirement[] {
  if (!text) return [];
  return splitTopLevel(text).map((raw) => {
    const m = /^\s*([\w.]+)\s*(==|=|!=)\s*([^,]*?)\s*$/.exec(raw);
    if (!m) throw new Error(`invalid selector: '${text}'; can't understand '${raw}'`);
    const [, field, op, value] = m;
    if (field !== "metadata.name" && field !== "metadata.namespace") {
      throw new Error(`field label not supported: ${field}`);
    }
    return op === "!=" ? (f) => f[field] !== value : (f) => f[field] === value;
  });
}

/** A matcher for a label selector and a field selector together. */
export function matcher(labelSelector: string | null, fieldSelector: string | null): Matcher {
  const labels = parseSelector(labelSelector);
  const fields = parseFieldSelector(fieldSelector);
  if (labels.length === 0 && fields.length === 0) return () => true;
  return (obj) => {
    const l = (obj.metadata.labels ?? {}) as Record<string, string>;
    if (!labels.every((r) => r(l))) return false;
    if (fields.length === 0) return true;
    const f = {
      "metadata.name": String(obj.metadata.name),
      "metadata.namespace": String(obj.metadata.namespace ?? ""),
    };
    return fields.every((r) => r(f));
  };
}
