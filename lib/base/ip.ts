/**
 * Strict parsing of single IP addresses.
 *
 * Only the canonical text of an address is accepted: dotted-quad IPv4 without
 * leading zeros, and RFC 5952 IPv6 (lower case, no leading zeros, the longest
 * run of two or more zero groups compressed, no embedded dotted quad). The
 * canonical text is what `ip -json` prints for most addresses; what it prints
 * otherwise (`::10.0.100.5`) goes through {@linkcode normalizeTrustedIp}, so
 * desired and observed addresses compare as plain strings.
 *
 * @module
 */

/** An IP address in canonical text form with its numeric value. */
export interface Ip {
  readonly family: 4 | 6;
  /** The address as an unsigned integer (32 or 128 bits). */
  readonly value: bigint;
  /** The canonical text (`10.0.100.30`, `2001:db8::1`). */
  readonly text: string;
}

/** Why a string is not an acceptable address text. */
export type IpSyntaxProblem = "invalid" | "non_canonical" | "ipv4_mapped";

/** The result of {@linkcode parseIp}: an address, or the reason it was refused. */
export type ParseIpResult =
  | { readonly ok: true; readonly ip: Ip }
  | { readonly ok: false; readonly problem: IpSyntaxProblem; readonly canonical?: string };

const V4_OCTET = /^(0|[1-9][0-9]{0,2})$/;
const V4_LOOSE = /^[0-9]{1,3}(\.[0-9]{1,3}){3}$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** Width in bits of an address family. */
export function familyBits(family: 4 | 6): number {
  return family === 4 ? 32 : 128;
}

function parseV4Numeric(text: string): { value: bigint; canonical: boolean } | undefined {
  if (!V4_LOOSE.test(text)) return undefined;
  // In a Number (exact below 2^53), one BigInt at the end: this runs for every address of a list.
  let value = 0;
  let canonical = true;
  for (const part of text.split(".")) {
    const n = Number(part);
    if (n > 255) return undefined;
    if (canonical && !V4_OCTET.test(part)) canonical = false;
    value = value * 256 + n;
  }
  return { value: BigInt(value), canonical };
}

/** Formats a 32-bit value as dotted-quad IPv4 text. */
export function formatV4(value: bigint): string {
  const v = Number(value & 0xffffffffn);
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** Formats a 128-bit value as RFC 5952 canonical IPv6 text. */
export function formatV6(value: bigint): string {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  // Longest run of at least two zero groups; the first one wins a tie.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  const head = hex.slice(0, bestStart).join(":");
  const tail = hex.slice(bestStart + bestLen).join(":");
  return `${head}::${tail}`;
}

function parseV6Numeric(text: string): bigint | undefined {
  if (text.length < 2 || text.length > 45) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const toGroups = (s: string): number[] | undefined => {
    if (s === "") return [];
    const out: number[] = [];
    const parts = s.split(":");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (i === parts.length - 1 && p.includes(".")) {
        const v4 = parseV4Numeric(p);
        if (!v4) return undefined;
        out.push(Number(v4.value >> 16n), Number(v4.value & 0xffffn));
      } else if (HEX_GROUP.test(p)) {
        out.push(parseInt(p, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = toGroups(halves[0]);
  const tail = halves.length === 2 ? toGroups(halves[1]) : [];
  if (!head || !tail) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return undefined;
    groups = [...head, ...new Array(missing).fill(0), ...tail];
  } else {
    groups = head;
  }
  if (groups.length !== 8) return undefined;
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(g);
  return value;
}

const V4_MAPPED_PREFIX = 0xffffn << 32n;

/**
 * Parses an IPv4 or IPv6 address that must be written in canonical form.
 *
 * @example
 * ```ts
 * parseIp("10.0.100.30"); // { ok: true, ip: { family: 4, ... } }
 * parseIp("010.0.100.30"); // { ok: false, problem: "non_canonical", canonical: "10.0.100.30" }
 * ```
 */
export function parseIp(text: string): ParseIpResult {
  const strict = parseStrict(text);
  if (strict.ok || strict.problem !== "invalid") return strict;
  // Recognise the usual near misses so the warning can say what was meant.
  const stripped = text.trim().replace(/%[^%]*$/, "").replace(/\/[0-9]{1,3}$/, "");
  if (stripped !== text) {
    const retry = parseStrict(stripped);
    if (retry.ok) return { ok: false, problem: "non_canonical", canonical: retry.ip.text };
    if (retry.problem !== "invalid") return retry;
  }
  return strict;
}

function parseStrict(text: string): ParseIpResult {
  if (text.includes(":")) {
    const value = parseV6Numeric(text);
    if (value === undefined) return { ok: false, problem: "invalid" };
    if (value >> 32n === V4_MAPPED_PREFIX >> 32n) {
      return { ok: false, problem: "ipv4_mapped", canonical: formatV4(value & 0xffffffffn) };
    }
    const canonical = formatV6(value);
    if (canonical !== text) return { ok: false, problem: "non_canonical", canonical };
    return { ok: true, ip: { family: 6, value, text } };
  }
  const v4 = parseV4Numeric(text);
  if (!v4) return { ok: false, problem: "invalid" };
  if (!v4.canonical) {
    return { ok: false, problem: "non_canonical", canonical: formatV4(v4.value) };
  }
  return { ok: true, ip: { family: 4, value: v4.value, text } };
}

/**
 * Normalises an address from a trusted source (iproute2's own output) to the
 * canonical text the rest of kube-gw compares: unlike {@linkcode parseIp},
 * every textual form of a valid address is accepted, among them an embedded
 * dotted quad (`::10.0.100.5`, which inet_ntop prints for any address inside
 * `::/96`; `::ffff:10.0.100.5`), upper case, leading zeros in groups and
 * uncompressed groups. Never use it on values from the API.
 *
 * @returns the address with its canonical text, or `undefined` when `text` is no address at all.
 * @example
 * ```ts
 * normalizeTrustedIp("::10.0.100.5")?.text; // "::a00:6405"
 * ```
 */
export function normalizeTrustedIp(text: string): Ip | undefined {
  if (text.includes(":")) {
    const value = parseV6Numeric(text);
    return value === undefined ? undefined : { family: 6, value, text: formatV6(value) };
  }
  const v4 = parseV4Numeric(text);
  return v4 ? { family: 4, value: v4.value, text: formatV4(v4.value) } : undefined;
}

/** Returns the family of a canonical address text without parsing it fully. */
export function familyOf(text: string): 4 | 6 {
  return text.includes(":") ? 6 : 4;
}
