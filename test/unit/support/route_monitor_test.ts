import assert from "node:assert/strict";
import { parseRouteLine } from "../../support/fabric/route_monitor.ts";

Deno.test("parseRouteLine: ECMP, single next hop, deletion, and other tables", () => {
  assert.deepEqual(
    parseRouteLine(
      "10.0.100.30 nhid 22 proto bgp metric 20 \\\tnexthop via 10.0.1.3 dev gw2 weight 1 \\\tnexthop via 10.0.1.1 dev gw1 weight 1 ",
    ),
    {
      deleted: false,
      type: "unicast",
      dst: "10.0.100.30/32",
      table: "main",
      via: ["10.0.1.1", "10.0.1.3"],
    },
  );
  assert.deepEqual(
    parseRouteLine("10.0.100.30 nhid 18 via 10.0.1.3 dev gw2 proto bgp metric 20 "),
    {
      deleted: false,
      type: "unicast",
      dst: "10.0.100.30/32",
      table: "main",
      via: ["10.0.1.3"],
    },
  );
  assert.deepEqual(
    parseRouteLine("Deleted 10.0.2.0/24 nhid 6 via 10.0.1.0 dev leaf proto bgp metric 20"),
    {
      deleted: true,
      type: "unicast",
      dst: "10.0.2.0/24",
      table: "main",
      via: ["10.0.1.0"],
    },
  );
  assert.deepEqual(
    parseRouteLine("local 10.0.0.20 dev lo table local proto kernel scope host src 10.0.0.20"),
    { deleted: false, type: "local", dst: "10.0.0.20/32", table: "local", via: [] },
  );
  assert.deepEqual(parseRouteLine("Deleted blackhole 192.0.2.255 "), {
    deleted: true,
    type: "blackhole",
    dst: "192.0.2.255/32",
    table: "main",
    via: [],
  });
  assert.deepEqual(parseRouteLine(""), undefined);
  assert.deepEqual(parseRouteLine("Deleted"), undefined);
});
