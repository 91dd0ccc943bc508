import assert from "node:assert/strict";
import { parseAddressLifetime, renewalIntervalMs } from "../../../lib/agent/address_lifetime.ts";
import { UsageError } from "../../../lib/base/flags.ts";
import { renewalScript } from "../../../lib/kernel/iproute2.ts";

Deno.test("--address-lifetime is off by default and takes whole seconds from 3s", () => {
  assert.equal(parseAddressLifetime(undefined), undefined);
  assert.equal(parseAddressLifetime("off"), undefined);
  assert.equal(parseAddressLifetime("0"), undefined);
  assert.equal(parseAddressLifetime("90s"), 90);
  assert.equal(parseAddressLifetime("1m30s"), 90);
  assert.equal(parseAddressLifetime("3s"), 3);
  for (const bad of ["2s", "1500ms", "soon", "-5s", "200000000h"]) {
    assert.throws(() => parseAddressLifetime(bad), (e: Error) => {
      assert.ok(e instanceof UsageError);
      assert.match(e.message, /^--address-lifetime: /);
      return true;
    });
  }
});

Deno.test("renewal replaces every address with its lifetime in one batch, at a third of the lifetime", () => {
  assert.equal(
    renewalScript(["10.0.100.30", "2001:db8:100::30"], "lo", 90),
    "address replace 10.0.100.30/32 dev lo valid_lft 90 preferred_lft 90\n" +
      "address replace 2001:db8:100::30/128 dev lo valid_lft 90 preferred_lft 90\n",
  );
  assert.equal(renewalScript([], "lo", 90), "");
  assert.equal(renewalIntervalMs(90), 30_000);
  assert.equal(renewalIntervalMs(3), 1000);
});
