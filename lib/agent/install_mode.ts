/**
 * How the agent holds the Service addresses (`--install-as`): as host
 * addresses on an interface (`address`, the default, announced by
 * `redistribute connected`), as kernel routes of kube-gw's protocol number
 * (`route`, announced by `redistribute kernel`; see kernel/route_store.ts),
 * or as entries of one dedicated SONiC loopback in CONFIG_DB (`sonic`, which
 * SONiC turns into addresses the ASIC sends to the CPU; docs/sonic.md). This
 * file parses the flags of each and checks them against each other. Pure.
 *
 * @module
 */

import { badValue, type RawOptions, sourceOf, UsageError } from "../base/flags.ts";
import { SONIC_LOOPBACK } from "../kernel/sonic_keys.ts";

/** The three ways to hold an address. */
export type InstallAs = "address" | "route" | "sonic";

/** Where the SONiC store writes (`--install-as sonic`). */
export interface SonicSettings {
  /** The dedicated loopback (`--sonic-loopback`). */
  readonly loopback: string;
  /** SONiC's Redis socket (`--sonic-redis-socket`). */
  readonly socket: string;
  /** CONFIG_DB's index (`--sonic-db`). */
  readonly db: number;
}

/** Route mode's settings. */
export interface RouteSettings {
  /** kube-gw's protocol number (`--route-protocol`), 1 to 255. */
  readonly protocol: number;
  /** The table (`--route-table`): `main` or a number. */
  readonly table: string;
}

/**
 * Protocol numbers kube-gw refuses: the kernel's own (unspec, redirect,
 * kernel, boot, static), and those FRR (zebra 11, babel 42, 186–198) and
 * BIRD (12) take as theirs. A routing daemon removes routes of its own
 * protocol it did not install, so kube-gw's routes must never carry one.
 */
export const CLAIMED_PROTOCOLS: ReadonlyMap<number, string> = new Map([
  [0, "unspec"],
  [1, "the kernel's (redirect)"],
  [2, "the kernel's"],
  [3, "the kernel's (boot: ip route's default)"],
  [4, "the kernel's (static)"],
  [11, "FRR's zebra"],
  [12, "BIRD's"],
  [42, "FRR's babeld"],
  ...Array.from({ length: 13 }, (_, i) => [186 + i, "FRR's"] as [number, string]),
]);

/** Tables that hold no routes of their own to give kube-gw: unspec, default, local. */
const RESERVED_TABLES: ReadonlyMap<number, string> = new Map([
  [0, "unspec"],
  [253, "the default table"],
  [255, "the local table"],
]);

/** Parses `--install-as`. @default "address" @throws {UsageError} */
export function parseInstallAs(source: string, text: string): InstallAs {
  const t = text.trim();
  if (t !== "address" && t !== "route" && t !== "sonic") {
    throw badValue(source, t, "is not address, route or sonic");
  }
  return t;
}

/**
 * Parses `--route-protocol`: a number from 1 to 255 that neither the kernel,
 * FRR nor BIRD claims ({@linkcode CLAIMED_PROTOCOLS}).
 *
 * @throws {UsageError}
 */
export function parseRouteProtocol(source: string, text: string): number {
  const t = text.trim();
  const n = /^[0-9]{1,3}$/.test(t) ? Number(t) : NaN;
  if (!(n >= 1 && n <= 255)) throw badValue(source, t, "is not a protocol number (1 to 255)");
  const owner = CLAIMED_PROTOCOLS.get(n);
  if (owner) throw badValue(source, t, `is ${owner}; kube-gw needs a number of its own`);
  return n;
}

/**
 * Parses `--route-table`: `main` (or 254), or a table number from 1 to
 * 4294967295 other than the default (253) and local (255) tables.
 *
 * @throws {UsageError}
 */
export function parseRouteTable(source: string, text: string): string {
  const t = text.trim();
  if (t === "main" || t === "254") return "main";
  const n = /^[0-9]{1,10}$/.test(t) ? Number(t) : NaN;
  if (!(n >= 1 && n <= 0xffffffff)) {
    throw badValue(source, t, "is not main or a table number (1 to 4294967295)");
  }
  const reserved = RESERVED_TABLES.get(n);
  if (reserved) throw badValue(source, t, `is ${reserved}`);
  return String(n);
}

/** The raw values and where each came from (flag or environment variable). */
export interface InstallOptionsInput {
  readonly installAs: { readonly source: string; readonly text: string };
  readonly routeProtocol: { readonly source: string; readonly text: string };
  readonly routeTable: { readonly source: string; readonly text: string };
  /** `--address-lifetime` is on, and where it was set. */
  readonly addressLifetime?: { readonly source: string };
}

/**
 * Validates the install options together. Route mode refuses
 * `--address-lifetime` (a route has no lifetime), and a table equal to the
 * protocol number (that table holds the router's own way to the addresses).
 *
 * @throws {UsageError} one line naming the flags.
 */
export function parseInstallOptions(
  input: InstallOptionsInput,
): { installAs: InstallAs; route?: RouteSettings } {
  const installAs = parseInstallAs(input.installAs.source, input.installAs.text);
  const protocol = parseRouteProtocol(input.routeProtocol.source, input.routeProtocol.text);
  const table = parseRouteTable(input.routeTable.source, input.routeTable.text);
  // The SONiC store's settings are checked by parseSonicSettings.
  if (installAs !== "route") return { installAs };
  if (input.addressLifetime) {
    throw new UsageError(
      `${input.addressLifetime.source} cannot be used with ${input.installAs.source} route: a route has no lifetime`,
    );
  }
  if (table === String(protocol)) {
    throw new UsageError(
      `${input.routeTable.source}: table ${table} is the table route mode keeps the router's own way to the addresses in (the ${input.routeProtocol.source} number); choose another`,
    );
  }
  return { installAs, route: { protocol, table } };
}

/** The defaults of the SONiC options, as flag texts (`AGENT_DEFAULTS`'s). */
export type SonicDefaults = Readonly<
  Record<"sonicLoopback" | "sonicRedisSocket" | "sonicDb", string>
>;

/**
 * Validates the SONiC store's settings (`--install-as sonic`). It refuses
 * `--address-lifetime` (CONFIG_DB entries have no lifetime) and `--netns` (a
 * namespace's CONFIG_DB is reached through its own socket).
 *
 * @throws {UsageError} one line naming the flag or environment variable.
 */
export function parseSonicSettings(
  raw: RawOptions,
  defaults: SonicDefaults,
  others: { readonly addressLifetimeSeconds?: number; readonly netns?: string },
): SonicSettings {
  const src = (key: "addressLifetime" | "netns" | keyof SonicDefaults, flag: string) =>
    sourceOf(raw, key, flag);
  if (others.addressLifetimeSeconds !== undefined) {
    throw new UsageError(
      `${
        src("addressLifetime", "--address-lifetime")
      }: CONFIG_DB entries have no lifetime; --install-as sonic needs --address-lifetime off`,
    );
  }
  if (others.netns !== undefined) {
    throw new UsageError(
      `${
        src("netns", "--netns")
      }: --install-as sonic writes no interface itself; reach an ASIC namespace's CONFIG_DB with --sonic-redis-socket (docs/sonic.md)`,
    );
  }
  const loopback = (raw.sonicLoopback ?? defaults.sonicLoopback).trim();
  if (!SONIC_LOOPBACK.test(loopback) || loopback === "Loopback0") {
    throw badValue(
      src("sonicLoopback", "--sonic-loopback"),
      loopback,
      "is not a dedicated SONiC loopback (LoopbackN, not the router's Loopback0)",
    );
  }
  const socket = (raw.sonicRedisSocket ?? defaults.sonicRedisSocket).trim();
  if (!socket.startsWith("/") || /[\0,\r\n]/.test(socket)) {
    throw badValue(
      src("sonicRedisSocket", "--sonic-redis-socket"),
      socket,
      "is not an absolute socket path",
    );
  }
  const dbText = (raw.sonicDb ?? defaults.sonicDb).trim();
  if (!/^\d{1,2}$/.test(dbText) || Number(dbText) > 15) {
    throw badValue(src("sonicDb", "--sonic-db"), dbText, "is not a database index (0-15)");
  }
  return { loopback, socket, db: Number(dbText) };
}
