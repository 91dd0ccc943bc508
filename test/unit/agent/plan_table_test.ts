import assert from "node:assert/strict";
import { formatPlan } from "../../../lib/agent/plan_table.ts";
import type { AddressStatus } from "../../../lib/agent/status_report.ts";

function status(
  address: string,
  state: AddressStatus["state"],
  sources: AddressStatus["sources"],
  rest: string,
): AddressStatus {
  return { address, state, sources, services: [], line: `${address} ${rest}` };
}

Deno.test("formatPlan prints one row per address: action, source, state with its Services", () => {
  const out = formatPlan(
    { add: ["10.0.100.31", "10.0.100.30"], remove: ["10.0.100.9", "10.0.100.40"] },
    [
      status("10.0.100.30", "announced", ["externalIP", "loadBalancer"], 'announced ["a/b"]'),
      status("10.0.100.31", "announced", ["loadBalancer"], 'announced ["a/c"]'),
      status("10.0.100.40", "no_usable_endpoint", ["externalIP"], "withheld: no usable endpoint"),
      status("10.0.100.50", "hold_down", ["externalIP"], "withheld: in hold-down (2s left)"),
      status("10.0.100.60", "announced", ["externalIP"], "announced"),
    ],
  );
  assert.equal(
    out,
    [
      "ACTION  ADDRESS      SOURCE                   STATE",
      "remove  10.0.100.9   -                        not claimed by any Service",
      'add     10.0.100.30  externalIP,LoadBalancer  announced ["a/b"]',
      'add     10.0.100.31  LoadBalancer             announced ["a/c"]',
      "remove  10.0.100.40  externalIP               withheld: no usable endpoint",
      "-       10.0.100.50  externalIP               withheld: in hold-down (2s left)",
      "keep    10.0.100.60  externalIP               announced",
      "2 to add, 2 to remove, 2 withheld",
      "",
    ].join("\n"),
  );
});

Deno.test("formatPlan escapes C0, C1 and bidirectional characters in names and bounds the STATE cell", () => {
  const hostile = `a/x\u009b31m\u202eevil\u001b[2J${"n".repeat(10_000)}`;
  const out = formatPlan({ add: ["10.0.100.30"], remove: [] }, [
    status("10.0.100.30", "announced", ["externalIP"], `announced [${JSON.stringify(hostile)}]`),
  ]);
  // deno-lint-ignore no-control-regex -- the point: none of these may reach a terminal raw
  assert.doesNotMatch(out, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
  assert.match(out, /a\/x\\x9b31m\\u202eevil\\u001b\[2J/);
  assert.ok(out.length < 2300, `${out.length} characters`);
});
