import assert from "node:assert/strict";
import { parseAddressLine } from "../../support/procs/address_monitor.ts";

Deno.test("parseAddressLine: added, changed and deleted addresses of both families; other lines", () => {
  assert.deepEqual(
    parseAddressLine(
      "1: lo    inet 10.0.100.30/32 scope global lo\\       valid_lft forever preferred_lft forever",
    ),
    { deleted: false, dev: "lo", address: "10.0.100.30", prefixLength: 32 },
  );
  assert.deepEqual(
    parseAddressLine(
      "1: lo    inet6 2001:db8::5/128 scope global tentative \\       valid_lft forever preferred_lft forever",
    ),
    { deleted: false, dev: "lo", address: "2001:db8::5", prefixLength: 128 },
  );
  assert.deepEqual(
    parseAddressLine(
      "Deleted 1: lo    inet 10.0.100.30/32 scope global dynamic lo\\       valid_lft 30sec preferred_lft 30sec",
    ),
    { deleted: true, dev: "lo", address: "10.0.100.30", prefixLength: 32 },
  );
  assert.deepEqual(
    parseAddressLine("4: gw1@if5    inet 10.0.1.1/31 scope global gw1"),
    { deleted: false, dev: "gw1", address: "10.0.1.1", prefixLength: 31 },
  );
  assert.equal(parseAddressLine(""), undefined);
  assert.equal(parseAddressLine("Deleted 3: eth0    link/ether 00:11:22:33:44:55"), undefined);
});
