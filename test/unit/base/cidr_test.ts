import assert from "node:assert/strict";
import {
  cidrContains,
  cidrOf,
  cidrsOverlap,
  CidrSyntaxError,
  parseCidr,
  specialRangeOf,
} from "../../../lib/base/cidr.ts";
import { type Ip, parseIp } from "../../../lib/base/ip.ts";

function ip(text: string): Ip {
  const r = parseIp(text);
  if (!r.ok) throw new Error(`bad test address ${text}`);
  return r.ip;
}

Deno.test("parseCidr reads IPv4 and IPv6 networks", () => {
  const v4 = parseCidr("10.0.100.0/24");
  assert.equal(v4.family, 4);
  assert.equal(v4.prefix, 24);
  const v6 = parseCidr("2001:db8::/32");
  assert.equal(v6.family, 6);
  assert.equal(v6.prefix, 32);
  assert.equal(parseCidr("0.0.0.0/0").prefix, 0);
});

Deno.test("parseCidr explains what is wrong", () => {
  const cases: [string, RegExp][] = [
    ["10.0.100.0/33", /prefix length must be 0 to 32/],
    ["2001:db8::/129", /prefix length must be 0 to 128/],
    ["10.0.100.0", /missing \/prefix length/],
    ["10.0.100.1/24", /host bits are set \(did you mean "10.0.100.0\/24"\?\)/],
    ["010.0.100.0/24", /not a canonical IP address \(did you mean "10.0.100.0"\?\)/],
    ["10.0.100.0/024", /prefix length/],
    ["10.0.100.0/", /prefix length/],
    ["banana/8", /not a canonical IP address/],
  ];
  for (const [text, re] of cases) {
    assert.throws(
      () => parseCidr(text),
      (e: unknown) => e instanceof CidrSyntaxError && re.test(e.message),
      text,
    );
  }
});

Deno.test("cidrContains checks membership within one family", () => {
  const net = parseCidr("10.0.100.0/24");
  assert.ok(cidrContains(net, ip("10.0.100.0")));
  assert.ok(cidrContains(net, ip("10.0.100.255")));
  assert.ok(!cidrContains(net, ip("10.0.101.0")));
  assert.ok(!cidrContains(net, ip("2001:db8::1")));
  assert.ok(cidrContains(parseCidr("2001:db8::/32"), ip("2001:db8:ffff::1")));
  assert.ok(cidrContains(parseCidr("0.0.0.0/0"), ip("192.0.2.1")));
});

Deno.test("cidrsOverlap finds nesting in both directions and ignores other families", () => {
  assert.ok(cidrsOverlap(parseCidr("10.0.0.0/8"), parseCidr("10.0.100.0/24")));
  assert.ok(cidrsOverlap(parseCidr("10.0.100.0/24"), parseCidr("10.0.0.0/8")));
  assert.ok(!cidrsOverlap(parseCidr("10.0.100.0/24"), parseCidr("10.0.101.0/24")));
  assert.ok(!cidrsOverlap(parseCidr("0.0.0.0/0"), parseCidr("::/0")));
});

Deno.test("cidrOf masks the host bits of an address", () => {
  assert.equal(cidrOf(ip("10.1.2.3"), 8).text, "10.0.0.0/8");
  assert.equal(cidrOf(ip("2001:db8::1"), 64).text, "2001:db8::/64");
});

Deno.test("specialRangeOf names the ranges a Service address must never use", () => {
  assert.equal(specialRangeOf(ip("0.0.0.0")), "unspecified");
  assert.equal(specialRangeOf(ip("::")), "unspecified");
  assert.equal(specialRangeOf(ip("127.0.0.53")), "loopback");
  assert.equal(specialRangeOf(ip("::1")), "loopback");
  assert.equal(specialRangeOf(ip("239.1.1.1")), "multicast");
  assert.equal(specialRangeOf(ip("ff02::1")), "multicast");
  assert.equal(specialRangeOf(ip("169.254.1.1")), "link_local");
  assert.equal(specialRangeOf(ip("fe80::1")), "link_local");
  assert.equal(specialRangeOf(ip("255.255.255.255")), "broadcast");
  assert.equal(specialRangeOf(ip("10.0.100.30")), undefined);
  assert.equal(specialRangeOf(ip("2001:db8::1")), undefined);
});
