/**
 * The table `kube-gw plan` prints: one row per address, desired or on the
 * interface, sorted by address: what the plan does with it (add, remove,
 * keep, or nothing while withheld), where it comes from (externalIP or
 * LoadBalancer status), and its state with its Services (announced, or
 * withheld with the reason). Pure.
 *
 * @module
 */

import type { AddressStatus } from "./status_report.ts";
import { type Plan } from "../kernel/address_store.ts";
import { type AddressSource } from "../service/eligibility.ts";
import { boundText, escapeControl } from "../base/text.ts";

const SOURCE_COLUMN: Readonly<Record<AddressSource, string>> = {
  externalIP: "externalIP",
  loadBalancer: "LoadBalancer",
};

/** The longest STATE cell printed (it names the Services of the address). */
const MAX_STATE = 2048;

/**
 * Formats a plan as the table `kube-gw plan` prints. `statuses` explains each
 * desired address (`Reconciler.status().addresses`); an address the plan
 * removes that no Service claims reads "not claimed by any Service". Every
 * cell is bounded and has its control and bidirectional characters escaped.
 */
export function formatPlan(p: Plan, statuses: readonly AddressStatus[]): string {
  const adds = new Set(p.add);
  const removes = new Set(p.remove);
  const rows: string[][] = [];
  let withheld = 0;
  for (const s of statuses) {
    const action = adds.has(s.address)
      ? "add"
      : removes.has(s.address)
      ? "remove"
      : s.state === "announced"
      ? "keep"
      : "-";
    if (s.state !== "announced") withheld++;
    const state = s.line.startsWith(`${s.address} `) ? s.line.slice(s.address.length + 1) : s.line;
    rows.push([
      action,
      s.address,
      s.sources.map((x) => SOURCE_COLUMN[x]).join(",") || "-",
      // Names come from the API: a terminal must not read a control or bidi character in them.
      escapeControl(boundText(state, MAX_STATE)),
    ]);
  }
  const explained = new Set(statuses.map((s) => s.address));
  for (const r of p.remove) {
    if (!explained.has(r)) rows.push(["remove", r, "-", "not claimed by any Service"]);
  }
  rows.sort((x, y) => x[1].localeCompare(y[1], "en", { numeric: true }));
  const header = ["ACTION", "ADDRESS", "SOURCE", "STATE"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r.map((c, i) => i < r.length - 1 ? c.padEnd(widths[i]) : c).join("  ");
  return [
    line(header),
    ...rows.map(line),
    `${p.add.length} to add, ${p.remove.length} to remove, ${withheld} withheld`,
  ].join("\n") + "\n";
}
