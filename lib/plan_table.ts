/**
 * The table `kube-gw plan` prints: one row per address to add or remove,
 * sorted by address, with the Services that claim each added one. Pure.
 *
 * @module
 */

import type { Plan } from "./ports.ts";

/** Formats a plan as the table `kube-gw plan` prints. */
export function formatPlan(p: Plan, claimants: (address: string) => string[]): string {
  const rows = [
    ...p.add.map((a) => ["add", a, claimants(a).join(",")]),
    ...p.remove.map((a) => ["remove", a, "-"]),
  ].sort((x, y) => x[1].localeCompare(y[1], "en", { numeric: true }));
  const header = ["ACTION", "ADDRESS", "CLAIMED BY"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r.map((c, i) => i < r.length - 1 ? c.padEnd(widths[i]) : c).join("  ");
  return [line(header), ...rows.map(line), `${p.add.length} to add, ${p.remove.length} to remove`]
    .join("\n") + "\n";
}
