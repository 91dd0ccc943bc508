import assert from "node:assert/strict";
import { formatPlan } from "../../lib/plan_table.ts";

Deno.test("formatPlan prints a table sorted by address with the claiming Services", () => {
  const out = formatPlan(
    { add: ["10.0.100.31", "10.0.100.30"], remove: ["10.0.100.9"] },
    (a) => a === "10.0.100.30" ? ["default/nginx", "web/front"] : ["default/nginx"],
  );
  assert.equal(
    out,
    [
      "ACTION  ADDRESS      CLAIMED BY",
      "remove  10.0.100.9   -",
      "add     10.0.100.30  default/nginx,web/front",
      "add     10.0.100.31  default/nginx",
      "2 to add, 1 to remove",
      "",
    ].join("\n"),
  );
});
