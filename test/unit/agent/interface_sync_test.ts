import assert from "node:assert/strict";
import { parseCidr } from "../../../lib/base/cidr.ts";
import { InterfaceSync } from "../../../lib/agent/interface_sync.ts";
import { quietObserver } from "../../../lib/agent/observer.ts";
import { FakeAddressStore } from "../../support/fakes/address_store.ts";
import { FakeClock } from "../../support/fakes/clock.ts";
import { withLogs } from "../../support/fakes/log_capture.ts";

const NETS = [parseCidr("10.0.100.0/24"), parseCidr("2001:db8::/64")];
/** What a router's loopback holds besides Service addresses. */
const BASE = [{ family: 4 as const, local: "127.0.0.1", prefixlen: 8 }, "10.0.0.20"];

Deno.test("drain removes every managed host address and leaves the rest, conflicts included", async () => {
  const store = new FakeAddressStore([...BASE, "10.0.100.30", "2001:db8::30", "192.0.2.1"]);
  const held: Record<number, number> = {};
  const sync = new InterfaceSync({
    store,
    networks: NETS,
    clock: new FakeClock(),
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

Deno.test("a small plan logs each address at info; a large one logs one summary line at info and each address at debug", async () => {
  const store = new FakeAddressStore([...BASE, "10.0.100.250"]);
  const sync = new InterfaceSync({
    store,
    networks: NETS,
    clock: new FakeClock(),
    observer: quietObserver,
  });
  const lines = (records: { level: string; message: readonly unknown[] }[], level: string) =>
    records.filter((r) => r.level === level).map((r) => r.message.join(""));
  await withLogs("info", async (records) => {
    await sync.sync(() => new Set(["10.0.100.1", "10.0.100.2"]));
    assert.deepEqual(lines(records, "info"), [
      "assuming address 10.0.100.1",
      "assuming address 10.0.100.2",
      "forfeiting address 10.0.100.250",
    ]);
  });
  const many = new Set(Array.from({ length: 100 }, (_, i) => `10.0.100.${i + 1}`));
  await withLogs("debug", async (records) => {
    // Re-reads of the interface: the plan covers every address.
    sync.reread();
    await sync.sync(() => new Set([...many, "2001:db8::1"]));
    sync.reread();
    await sync.sync(() => new Set());
    assert.deepEqual(lines(records, "info"), [
      "assuming 99 addresses and forfeiting 0 (each at debug level)",
      "assuming 0 addresses and forfeiting 101 (each at debug level)",
    ]);
    assert.equal(lines(records, "debug").length, 99 + 101);
    assert.ok(lines(records, "debug").includes("assuming address 2001:db8::1"));
  });
  store.assertNoViolations();
});

Deno.test("what a store keeps beside the addresses, found missing by the check, is put back by the next sync", async () => {
  const store = new FakeAddressStore(["10.0.100.30"], { owned: true, localAccess: true });
  const sync = new InterfaceSync({
    store,
    networks: NETS,
    clock: new FakeClock(),
    observer: quietObserver,
  });
  const desired = new Set(["10.0.100.30"]);
  assert.deepEqual(await sync.sync(() => desired), { add: [], remove: [] });
  assert.deepEqual(store.plans, [], "nothing to change: no plan");
  assert.equal(await sync.verify(), true);
  store.removeLocalAccess();
  assert.equal(await sync.verify(), false, "the check counts it as drift");
  sync.reread();
  await withLogs("info", async (records) => {
    assert.deepEqual(await sync.sync(() => desired), { add: [], remove: [] });
    assert.deepEqual(records.map((r) => r.message.join("")), [
      "put in place local access: the rule iif lo lookup 200 (IPv4)",
    ]);
  });
  assert.equal(store.localAccess, true);
  assert.deepEqual(store.plans, [{ add: [], remove: [] }], "one run of the store, for no address");
  assert.equal(await sync.verify(), true, "clean again");
  // A drain with nothing to withdraw runs nothing, even with local access gone.
  await sync.drain();
  store.removeLocalAccess();
  await sync.drain();
  assert.equal(store.localAccess, false);
  assert.equal(
    store.plans.length,
    2,
    "the first drain withdrew 10.0.100.30; the second ran nothing",
  );
  store.assertNoViolations();
});
