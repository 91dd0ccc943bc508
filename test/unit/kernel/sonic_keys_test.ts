import assert from "node:assert/strict";
import {
  addressKey,
  addressPattern,
  escapeGlob,
  interfaceKey,
  parseAddressKey,
  SONIC_LOOPBACK,
} from "../../../lib/kernel/sonic_keys.ts";

Deno.test("keys are laid out as sonic-loopback-interface.yang and `config interface ip add` write them", () => {
  assert.equal(interfaceKey("Loopback1000"), "LOOPBACK_INTERFACE|Loopback1000");
  assert.equal(
    addressKey("Loopback1000", "10.0.100.30"),
    "LOOPBACK_INTERFACE|Loopback1000|10.0.100.30/32",
  );
  assert.equal(
    addressKey("Loopback1000", "2001:db8::1"),
    "LOOPBACK_INTERFACE|Loopback1000|2001:db8::1/128",
  );
});

Deno.test("the SCAN pattern matches the loopback's entries only: glob characters are escaped", () => {
  assert.equal(addressPattern("Loopback1000"), "LOOPBACK_INTERFACE|Loopback1000|*");
  assert.equal(escapeGlob("a*b?c[d]e\\f"), "a\\*b\\?c\\[d\\]e\\\\f");
});

Deno.test("an entry's key reads back as a canonical address; other keys are not the loopback's", () => {
  assert.deepEqual(
    parseAddressKey("Loopback1000", "LOOPBACK_INTERFACE|Loopback1000|10.0.100.30/32"),
    {
      family: 4,
      local: "10.0.100.30",
      prefixlen: 32,
    },
  );
  assert.deepEqual(
    parseAddressKey("Loopback1000", "LOOPBACK_INTERFACE|Loopback1000|2001:DB8:0::1/128"),
    { family: 6, local: "2001:db8::1", prefixlen: 128 },
  );
  assert.deepEqual(parseAddressKey("Loopback1000", "LOOPBACK_INTERFACE|Loopback1000|10.0.1.1/24"), {
    family: 4,
    local: "10.0.1.1",
    prefixlen: 24,
  });
  for (
    const key of [
      "LOOPBACK_INTERFACE|Loopback1000",
      "LOOPBACK_INTERFACE|Loopback10000|10.0.100.30/32",
      "LOOPBACK_INTERFACE|Loopback0|10.1.0.1/32",
      "INTERFACE|Loopback1000|10.0.100.30/32",
      "LOOPBACK_INTERFACE|Loopback1000|10.0.100.30/33",
      "LOOPBACK_INTERFACE|Loopback1000|not-an-ip/32",
      "LOOPBACK_INTERFACE|Loopback1000|10.0.100.30",
    ]
  ) assert.equal(parseAddressKey("Loopback1000", key), undefined, key);
});

Deno.test("a SONiC loopback name is Loopback and a number", () => {
  for (const ok of ["Loopback0", "Loopback1000", "Loopback9999999"]) {
    assert.ok(SONIC_LOOPBACK.test(ok));
  }
  for (const bad of ["lo", "Loopback", "Loopback*", "loopback1", "Loopback12345678", "Ethernet0"]) {
    assert.ok(!SONIC_LOOPBACK.test(bad), bad);
  }
});
