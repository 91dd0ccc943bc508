import assert from "node:assert/strict";
import fc from "fast-check";
import { formatV4, formatV6, normalizeTrustedIp, parseIp } from "../../../lib/base/ip.ts";

Deno.test("parseIp accepts canonical IPv4 and IPv6", () => {
  for (
    const text of [
      "10.0.100.30",
      "0.0.0.0",
      "255.255.255.255",
      "2001:db8::1",
      "::",
      "::1",
      "fe80::1:2",
    ]
  ) {
    const r = parseIp(text);
    assert.ok(r.ok, text);
    assert.equal(r.ip.text, text);
  }
});

Deno.test("parseIp refuses IPv4 with leading zeros and names the canonical form", () => {
  assert.deepEqual(parseIp("010.0.100.41"), {
    ok: false,
    problem: "non_canonical",
    canonical: "10.0.100.41",
  });
  assert.deepEqual(parseIp("10.0.100.00"), {
    ok: false,
    problem: "non_canonical",
    canonical: "10.0.100.0",
  });
});

Deno.test("parseIp refuses spaces, a /len suffix and a %zone as non-canonical", () => {
  for (
    const [text, meant] of [
      [" 10.0.100.30", "10.0.100.30"],
      ["10.0.100.30 ", "10.0.100.30"],
      ["10.0.100.30/32", "10.0.100.30"],
      ["2001:db8::1/128", "2001:db8::1"],
      ["fe80::1%eth0", "fe80::1"],
    ]
  ) {
    assert.deepEqual(
      parseIp(text),
      { ok: false, problem: "non_canonical", canonical: meant },
      text,
    );
  }
});

Deno.test("parseIp refuses non-canonical IPv6 text", () => {
  for (
    const [text, meant] of [
      ["2001:DB8::1", "2001:db8::1"],
      ["2001:0db8::1", "2001:db8::1"],
      ["2001:db8:0:0:0:0:0:1", "2001:db8::1"],
      ["2001:db8::0:1", "2001:db8::1"],
      ["2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"],
      ["::0", "::"],
    ]
  ) {
    assert.deepEqual(
      parseIp(text),
      { ok: false, problem: "non_canonical", canonical: meant },
      text,
    );
  }
});

Deno.test("parseIp refuses IPv4-mapped IPv6 in either notation", () => {
  assert.equal((parseIp("::ffff:10.0.100.30") as { problem: string }).problem, "ipv4_mapped");
  assert.equal((parseIp("::ffff:a00:641e") as { problem: string }).problem, "ipv4_mapped");
});

Deno.test("parseIp refuses text that is no address at all", () => {
  for (
    const text of [
      "",
      "10.0.100.40; touch /tmp/x",
      "-batch",
      "10.0.100",
      "10.0.100.256",
      "1.2.3.4.5",
      "0x0a.0.0.1",
      "1e1.0.0.1",
      ":::",
      "1::2::3",
      "1:2:3:4:5:6:7:8:9",
      "12345::",
      "g::1",
      "10.0.100.30\n",
      "10.0.100.30\u0000",
      "１０.0.0.1",
    ]
  ) {
    const r = parseIp(text);
    assert.ok(!r.ok, JSON.stringify(text));
  }
});

Deno.test("formatV6 and parseIp round-trip every 128-bit value", () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), (v) => {
      const text = formatV6(v);
      const r = parseIp(text);
      if (!r.ok) return r.problem === "ipv4_mapped"; // ::ffff:0:0/96 is refused by design
      return r.ip.value === v && r.ip.family === 6 && r.ip.text === text;
    }),
    { numRuns: 2000 },
  );
});

Deno.test("formatV6 compresses the longest zero run, the first on a tie, never a single group", () => {
  assert.equal(formatV6(0x20010db8000000000001000000000001n), "2001:db8::1:0:0:1");
  assert.equal(formatV6(0x20010db8000000010000000000000000n), "2001:db8:0:1::");
  assert.equal(formatV6(0x20010db8000100010001000100010001n), "2001:db8:1:1:1:1:1:1");
  assert.equal(formatV6(0x20010000000100000000000000010000n), "2001:0:1::1:0");
});

Deno.test("formatV4 and parseIp round-trip every 32-bit value", () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: 0xffffffffn }), (v) => {
      const r = parseIp(formatV4(v));
      return r.ok && r.ip.value === v && r.ip.family === 4;
    }),
  );
});

Deno.test("normalizeTrustedIp reads every textual form of an address to its canonical text", () => {
  assert.equal(normalizeTrustedIp("::10.0.100.5")?.text, "::a00:6405");
  assert.equal(normalizeTrustedIp("::ffff:10.0.100.6")?.text, "::ffff:a00:6406");
  assert.equal(normalizeTrustedIp("2001:0DB8:0:0:0:0:0:0010")?.text, "2001:db8::10");
  assert.equal(normalizeTrustedIp("10.0.100.5")?.text, "10.0.100.5");
  assert.equal(normalizeTrustedIp("10.0.100.5")?.family, 4);
  for (const bad of ["", "::g", "1.2.3.256", "1:2:3:4:5:6:7:8:9", "::1::", "10.0.100.5/32"]) {
    assert.equal(normalizeTrustedIp(bad), undefined, bad);
  }
  const hex = (g: number, pad: boolean) => g.toString(16).padStart(pad ? 4 : 1, "0");
  fc.assert(
    fc.property(
      fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }),
      fc.boolean(),
      fc.boolean(),
      (v, pad, upper) => {
        const groups = Array.from(
          { length: 8 },
          (_, i) => Number((v >> BigInt((7 - i) * 16)) & 0xffffn),
        );
        const full = groups.map((g) => hex(g, pad)).join(":");
        const dotted = `${groups.slice(0, 6).map((g) => hex(g, pad)).join(":")}:${
          formatV4(v & 0xffffffffn)
        }`;
        for (const form of [full, dotted, formatV6(v)]) {
          const text = upper ? form.toUpperCase() : form;
          const ip = normalizeTrustedIp(text);
          assert.equal(ip?.text, formatV6(v), text);
          assert.equal(ip?.value, v);
          assert.equal(ip?.family, 6);
        }
      },
    ),
  );
});
