/**
 * How the agent holds its addresses (`--install-as`): `address`, host
 * addresses on a kernel interface through `ip`; `sonic`, entries of one
 * dedicated SONiC loopback in CONFIG_DB, which SONiC turns into addresses the
 * ASIC sends to the CPU (docs/sonic.md). Validates the SONiC settings. Pure.
 *
 * @module
 */

import { badValue, type OptionKey, type RawOptions, sourceOf, UsageError } from "../base/flags.ts";
import { SONIC_LOOPBACK } from "../kernel/sonic_keys.ts";

/** The values of `--install-as`. */
export type InstallAs = "address" | "sonic";

/** Where the SONiC store writes (`--install-as sonic`). */
export interface SonicSettings {
  /** The dedicated loopback (`--sonic-loopback`). @default "Loopback1000" */
  readonly loopback: string;
  /** SONiC's Redis socket (`--sonic-redis-socket`). @default "/var/run/redis/redis.sock" */
  readonly socket: string;
  /** CONFIG_DB's index (`--sonic-db`). @default 4 */
  readonly db: number;
}

/** The defaults of the options this file reads, as flag texts (`AGENT_DEFAULTS`'s). */
export type InstallAsDefaults = Readonly<
  Record<"installAs" | "sonicLoopback" | "sonicRedisSocket" | "sonicDb", string>
>;

/** Where the addresses go, validated. */
export interface InstallAsSettings {
  readonly installAs: InstallAs;
  /** Set exactly when `installAs` is `sonic`. */
  readonly sonic?: SonicSettings;
}

/**
 * Validates `--install-as` and, for `sonic`, its settings. The SONiC store
 * refuses `--address-lifetime` (CONFIG_DB entries have no lifetime) and
 * `--netns` (a namespace's CONFIG_DB is reached through its own socket).
 *
 * @throws {UsageError}
 */
export function parseInstallAs(
  raw: RawOptions,
  defaults: InstallAsDefaults,
  others: { readonly addressLifetimeSeconds?: number; readonly netns?: string },
): InstallAsSettings {
  const src = (key: OptionKey, flag: string) => sourceOf(raw, key, flag);
  const installAs = (raw.installAs ?? defaults.installAs).trim();
  if (installAs === "address") return { installAs };
  if (installAs !== "sonic") {
    throw badValue(src("installAs", "--install-as"), installAs, "is not address or sonic");
  }
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
  return { installAs, sonic: { loopback, socket, db: Number(dbText) } };
}
