/**
 * SONiC's CONFIG_DB layout for loopback interfaces, as
 * `sonic-loopback-interface.yang` defines it and `config interface ip add`
 * writes it: the interface is the hash `LOOPBACK_INTERFACE|LoopbackN` and each
 * of its addresses the hash `LOOPBACK_INTERFACE|LoopbackN|A.B.C.D/32` (or an
 * IPv6 prefix); a hash with no attribute holds the field `NULL` = `NULL`,
 * since Redis has no empty hash. Pure.
 *
 * @module
 */

import { hostPrefix } from "../base/cidr.ts";
import { familyOf, normalizeTrustedIp } from "../base/ip.ts";
import type { InterfaceAddress } from "./address_store.ts";

/** SONiC's Redis socket on a single-ASIC switch (the host's `database` container). */
export const DEFAULT_SONIC_SOCKET = "/var/run/redis/redis.sock";

/** CONFIG_DB's index in SONiC's `database_config.json`. */
export const CONFIG_DB = 4;

/** The CONFIG_DB table of loopback interfaces. */
export const LOOPBACK_TABLE = "LOOPBACK_INTERFACE";

/** The field and value of an attribute-less entry. */
export const NULL_FIELD = ["NULL", "NULL"] as const;

/** SONiC's loopback names: `Loopback` and a number, at most 15 characters (an interface name). */
export const SONIC_LOOPBACK = /^Loopback\d{1,7}$/;

/** The key of the interface entry: `LOOPBACK_INTERFACE|Loopback1000`. */
export function interfaceKey(loopback: string): string {
  return `${LOOPBACK_TABLE}|${loopback}`;
}

/** The key of one host address of the interface: `LOOPBACK_INTERFACE|Loopback1000|10.0.0.1/32`. */
export function addressKey(loopback: string, address: string): string {
  return `${interfaceKey(loopback)}|${address}/${hostPrefix(familyOf(address))}`;
}

/** Escapes Redis glob characters (`* ? [ ] \`), so that a pattern matches the text only. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}

/** The SCAN pattern that matches the address entries of `loopback` and nothing else. */
export function addressPattern(loopback: string): string {
  return `${escapeGlob(interfaceKey(loopback))}|*`;
}

/**
 * Reads an address entry's key back as an interface address (canonical text),
 * or `undefined` when the key is not an address of `loopback`.
 */
export function parseAddressKey(loopback: string, key: string): InterfaceAddress | undefined {
  const prefix = `${interfaceKey(loopback)}|`;
  if (!key.startsWith(prefix)) return undefined;
  const m = /^([^/|]+)\/(\d{1,3})$/.exec(key.slice(prefix.length));
  if (!m) return undefined;
  const ip = normalizeTrustedIp(m[1]);
  const prefixlen = Number(m[2]);
  if (!ip || prefixlen > (ip.family === 4 ? 32 : 128)) return undefined;
  return { family: ip.family, local: ip.text, prefixlen };
}
