import assert from "node:assert/strict";
import { parseCidr } from "../../../lib/base/cidr.ts";
import { InterfaceSync } from "../../../lib/agent/interface_sync.ts";
import { quietObserver } from "../../../lib/agent/observer.ts";
import { FakeAddressStore } from "../../support/fakes/address_store.ts";

const NETS = [parseCidr("10.0.100.0/24"), parseCidr("2001:db8::/64")];
/** What a router's loopback holds besides Service addresses. */
const BASE = [{ family: 4 as const, local: "127.0.0.1", prefixlen: 8 }, "10.0.0.20"];

Deno.test("drain removes every managed host address and leaves the rest, conflicts included", async () => {
  const store = new FakeAddressStore([...BASE, "10.0.100.30", "2001:db8::30", "192.0.2.1"]);
  const held: Record<number, number> = {};
  const sync = new InterfaceSync({
    store,
    networks: NETS,
    observer: { ...quietObserver, held: (family, n) => held[family] = n },
  });
  store.put({ family: 4, local: "10.0.100.1", prefixlen: 24 });
  const p = await sync.drain();
  assert.deepEqual(p, { add: [], remove: ["10.0.100.30", "2001:db8::30"] });
  assert.deepEqual(store.plans, [p]);
  assert.deepEqual(store.hosts(), ["10.0.0.20", "192.0.2.1"]);
  assert.deepEqual(held, { 4: 0, 6: 0 });
  store.assertNoViolations();
});
