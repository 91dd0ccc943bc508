/**
 * IP networks (CIDR blocks): strict parsing, membership and overlap.
 *
 * @module
 */

import { familyBits, formatV4, formatV6, type Ip, parseIp } from "./ip.ts";

/** An IP network such as `10.0.100.0/24` or `2001:db8::/32`. */
export interface Cidr {
  readonly family: 4 | 6;
  /** The network address as an unsigned integer; host bits are zero. */
  readonly base: bigint;
  readonly prefix: number;
  /** The canonical text. */
  readonly text: string;
}

/** Raised when a string is not a CIDR block. */
export class CidrSyntaxError extends Error {
  constructor(readonly input: string, readonly detail: string) {
    super(`Cannot parse CIDR "${input}": ${detail}`);
    this.name = "CidrSyntaxError";
  }
}

const PREFIX = /^(0|[1-9][0-9]{0,2})$/;

function computeMask(family: 4 | 6, prefix: number): bigint {
  const bits = BigInt(familyBits(family));
  const all = (1n << bits) - 1n;
  return (all << (bits - BigInt(prefix))) & all;
}

/** Every mask, computed once: containment runs for each address of every list. */
const MASKS = {
  4: Array.from({ length: 33 }, (_, p) => computeMask(4, p)),
  6: Array.from({ length: 129 }, (_, p) => computeMask(6, p)),
};

function mask(family: 4 | 6, prefix: number): bigint {
  return MASKS[family][prefix] ?? computeMask(family, prefix);
}

function formatAddress(family: 4 | 6, value: bigint): string {
  return family === 4 ? formatV4(value) : formatV6(value);
}

/**
 * Parses a CIDR block in canonical form: the address part must be a canonical
 * address with no host bits set, the prefix a decimal within the family's width.
 *
 * @throws {CidrSyntaxError} when the text is not such a block.
 */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf("/");
  if (slash < 0) throw new CidrSyntaxError(text, "missing /prefix length");
  const addrText = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  const parsed = parseIp(addrText);
  if (!parsed.ok) {
    const hint = parsed.canonical ? ` (did you mean "${parsed.canonical}"?)` : "";
    throw new CidrSyntaxError(text, `"${addrText}" is not a canonical IP address${hint}`);
  }
  const { family, value } = parsed.ip;
  if (!PREFIX.test(prefixText) || Number(prefixText) > familyBits(family)) {
    throw new CidrSyntaxError(text, `prefix length must be 0 to ${familyBits(family)}`);
  }
  const prefix = Number(prefixText);
  const base = value & mask(family, prefix);
  if (base !== value) {
    const meant = `${formatAddress(family, base)}/${prefix}`;
    throw new CidrSyntaxError(text, `host bits are set (did you mean "${meant}"?)`);
  }
  return { family, base, prefix, text };
}

/** The network of `prefix` bits that holds `ip`, e.g. `10.0.0.0/8` for `10.1.2.3` and 8. */
export function cidrOf(ip: Ip, prefix: number): Cidr {
  const base = ip.value & mask(ip.family, prefix);
  return { family: ip.family, base, prefix, text: `${formatAddress(ip.family, base)}/${prefix}` };
}

/** Whether `ip` lies inside `cidr`. */
export function cidrContains(cidr: Cidr, ip: Ip): boolean {
  return cidr.family === ip.family && (ip.value & mask(cidr.family, cidr.prefix)) === cidr.base;
}

/** Whether two networks share at least one address. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const shorter = Math.min(a.prefix, b.prefix);
  const m = mask(a.family, shorter);
  return (a.base & m) === (b.base & m);
}

/** The host route for an address: `/32` for IPv4, `/128` for IPv6. */
export function hostPrefix(family: 4 | 6): number {
  return familyBits(family);
}

/** Address ranges that must never be assigned as a Service address. */
export type SpecialRange = "unspecified" | "loopback" | "multicast" | "link_local" | "broadcast";

const SPECIAL: ReadonlyArray<readonly [SpecialRange, Cidr]> = [
  ["unspecified", parseCidr("0.0.0.0/32")],
  ["unspecified", parseCidr("::/128")],
  ["loopback", parseCidr("127.0.0.0/8")],
  ["loopback", parseCidr("::1/128")],
  ["multicast", parseCidr("224.0.0.0/4")],
  ["multicast", parseCidr("ff00::/8")],
  ["link_local", parseCidr("169.254.0.0/16")],
  ["link_local", parseCidr("fe80::/10")],
  ["broadcast", parseCidr("255.255.255.255/32")],
];

/** The special range an address falls in, if any. */
export function specialRangeOf(ip: Ip): SpecialRange | undefined {
  for (const [name, cidr] of SPECIAL) if (cidrContains(cidr, ip)) return name;
  return undefined;
}

/**
 * The special range that holds every address of `cidr`, if any: a managed
 * network inside one could never hold an address.
 */
export function specialRangeCovering(
  cidr: Cidr,
): { readonly name: SpecialRange; readonly cidr: Cidr } | undefined {
  for (const [name, range] of SPECIAL) {
    if (range.prefix <= cidr.prefix && cidrsOverlap(range, cidr)) return { name, cidr: range };
  }
  return undefined;
}

/** The loopback networks; a managed network must not overlap them. */
export const LOOPBACK_NETWORKS: readonly Cidr[] = SPECIAL
  .filter(([name]) => name === "loopback")
  .map(([, cidr]) => cidr);
