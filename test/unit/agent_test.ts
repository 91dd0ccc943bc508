import assert from "node:assert/strict";
import { drain, formatPlan } from "../../lib/agent.ts";
import { parseCidr } from "../../lib/cidr.ts";
import type { AddressBackend } from "../../lib/iproute2.ts";
import type { InterfaceAddress, Plan } from "../../lib/plan.ts";

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

Deno.test("drain removes every managed host address and nothing else", async () => {
  const plans: Plan[] = [];
  const backend: AddressBackend = {
    spawned: 0,
    read: () =>
      Promise.resolve<InterfaceAddress[]>([
        { family: 4, local: "127.0.0.1", prefixlen: 8 },
        { family: 4, local: "10.0.0.20", prefixlen: 32 },
        { family: 4, local: "10.0.100.30", prefixlen: 32 },
        { family: 6, local: "2001:db8::30", prefixlen: 128 },
      ]),
    apply: (p) => {
      plans.push(p);
      return Promise.resolve();
    },
  };
  const p = await drain([parseCidr("10.0.100.0/24"), parseCidr("2001:db8::/64")], backend);
  assert.deepEqual(p.remove, ["10.0.100.30", "2001:db8::30"]);
  assert.deepEqual(plans, [{ add: [], remove: ["10.0.100.30", "2001:db8::30"] }]);
});
