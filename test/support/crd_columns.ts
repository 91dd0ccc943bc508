/**
 * `kubectl get` for a custom resource without a cluster: the CRD's
 * `additionalPrinterColumns` evaluated on objects as the API server's table
 * converter does (a JSONPath per column, the first result; a list or map as
 * JSON; nothing as `<none>`; a date as an age), printed as kubectl prints a
 * table. The JSONPath subset the CRDs use: `.field.field` and
 * `[?(@.key=="value")]` filters.
 *
 * @module
 */

type Obj = Record<string, unknown>;

/** One printer column of a CRD version. */
export interface PrinterColumn {
  readonly name: string;
  readonly type: string;
  readonly jsonPath: string;
}

/** The results of a JSONPath of the subset on `obj`. */
export function jsonPath(obj: unknown, path: string): unknown[] {
  let values: unknown[] = [obj];
  const steps = path.match(/\.[A-Za-z0-9_]+|\[\?\(@\.[A-Za-z0-9_]+=="[^"]*"\)\]/g) ?? [];
  if (steps.join("") !== path) throw new Error(`JSONPath ${path} is outside the subset`);
  for (const step of steps) {
    const filter = /^\[\?\(@\.([A-Za-z0-9_]+)=="([^"]*)"\)\]$/.exec(step);
    values = values.flatMap((v): unknown[] => {
      if (filter) {
        return Array.isArray(v)
          ? v.filter((item) => (item as Obj | null)?.[filter[1]] === filter[2])
          : [];
      }
      const next = (v as Obj | null)?.[step.slice(1)];
      return next === undefined ? [] : [next];
    });
  }
  return values;
}

function age(created: string, nowMs: number): string {
  const s = Math.max(0, Math.floor((nowMs - Date.parse(created)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 600) return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ""}`;
  if (s < 3 * 3600) return `${Math.floor(s / 60)}m`;
  return `${Math.floor(s / 3600)}h`;
}

/** One cell as kubectl shows it. */
function cell(column: PrinterColumn, obj: unknown, nowMs: number): string {
  const [value] = jsonPath(obj, column.jsonPath);
  if (value === undefined || value === null) return "<none>";
  if (column.type === "date" && typeof value === "string") return age(value, nowMs);
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** The table `kubectl get` prints: NAME, then each column, left-aligned, three spaces apart. */
export function printerTable(
  columns: readonly PrinterColumn[],
  objects: readonly unknown[],
  nowMs = Date.now(),
): string {
  const rows = [
    ["NAME", ...columns.map((c) => c.name.toUpperCase())],
    ...objects.map((o) => [
      String(((o as Obj).metadata as Obj).name),
      ...columns.map((c) => cell(c, o, nowMs)),
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("   ").trimEnd()).join("\n");
}
