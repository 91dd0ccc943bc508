/**
 * Result rows and the table the benchmark prints. Pure.
 *
 * @module
 */

import type { AcrossRuns } from "./stats.ts";

/** Units a figure can have; times are kept in milliseconds, sizes in bytes. */
export type Unit = "ms" | "bytes" | "count" | "requests" | "ratio" | "percent";

/** A target from the issue, and whether the measured figure meets it. */
export interface Target {
  readonly text: string;
  readonly met: boolean;
}

/** A comparison figure: the prototype's, the kernel floor's, or address mode's beside route mode. */
export interface Comparison {
  readonly label: "prototype" | "floor" | "address mode";
  readonly value: AcrossRuns;
  /** How the ratio reads, e.g. "prototype / kube-gw". */
  readonly ratioText: string;
  readonly ratio: number;
}

/** One line of the results table. */
export interface Row {
  readonly scenario: string;
  readonly metric: string;
  readonly unit: Unit;
  readonly value: AcrossRuns;
  readonly compare?: Comparison;
  readonly target?: Target;
  /** How the figure was obtained when that is not plain measurement. */
  readonly note?: string;
}

/** What a scenario hands back. */
export interface ScenarioResult {
  readonly id: string;
  readonly title: string;
  readonly rows: Row[];
  /** Raw per-run data for bench-results.json. */
  readonly details: Record<string, unknown>;
  /** Set when the scenario could not complete or verify its outcome. */
  broken?: string;
}

/** Formats a figure for the table. */
export function formatValue(v: number, unit: Unit): string {
  if (!Number.isFinite(v)) return "-";
  switch (unit) {
    case "ms":
      if (v >= 10_000) return `${(v / 1000).toFixed(1)} s`;
      if (v >= 1000) return `${(v / 1000).toFixed(2)} s`;
      if (v >= 100) return `${v.toFixed(0)} ms`;
      return `${v.toFixed(1)} ms`;
    case "bytes":
      if (v < 1024 * 1024) return `${(v / 1024).toFixed(1)} KB`;
      return `${(v / 1024 / 1024).toFixed(1)} MB`;
    case "ratio":
      return `${v.toFixed(2)}×`;
    case "percent":
      return `${v.toFixed(0)} %`;
    case "count":
    case "requests":
      return Number.isInteger(v) ? String(v) : v.toFixed(1);
  }
}

function formatRatio(r: number): string {
  if (!Number.isFinite(r)) return "-";
  return r >= 100 ? `${r.toFixed(0)}×` : `${r.toFixed(2)}×`;
}

/** The results table as Markdown (also readable as plain text). */
export function formatTable(rows: readonly Row[]): string {
  const header = [
    "scenario",
    "metric",
    "kube-gw median",
    "kube-gw worst",
    "baseline median",
    "ratio",
    "target",
  ];
  const body = rows.map((r) => [
    r.scenario,
    r.metric + (r.note ? ` (${r.note})` : ""),
    formatValue(r.value.median, r.unit),
    formatValue(r.value.worst, r.unit),
    r.compare ? `${formatValue(r.compare.value.median, r.unit)} ${r.compare.label}` : "",
    r.compare && Number.isFinite(r.compare.ratio)
      ? `${formatRatio(r.compare.ratio)} ${r.compare.ratioText}`
      : "",
    r.target ? `${r.target.met ? "met" : "MISSED"}: ${r.target.text}` : "",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [
    line(header),
    `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`,
    ...body.map(line),
  ].join("\n");
}
