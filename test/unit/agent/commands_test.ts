import assert from "node:assert/strict";
import { parseCidr } from "../../../lib/base/cidr.ts";
import { drain } from "../../../lib/agent/commands.ts";
import { FakeAddressStore } from "../../support/fakes/address_store.ts";

Deno.test("drain removes every managed host address and nothing else", async () => {
  const store = new FakeAddressStore([
    { family: 4, local: "127.0.0.1", prefixlen: 8 },
    "10.0.0.20",
    "10.0.100.30",
    "2001:db8::30",
  ]);
  const p = await drain([parseCidr("10.0.100.0/24"), parseCidr("2001:db8::/64")], store);
  assert.deepEqual(p.remove, ["10.0.100.30", "2001:db8::30"]);
  assert.deepEqual(store.plans, [{ add: [], remove: ["10.0.100.30", "2001:db8::30"] }]);
  assert.deepEqual(store.hosts(), ["10.0.0.20"]);
  store.assertNoViolations();
});
