/**
 * The iproute2 adapter: reads the managed interface with `ip -json` and applies
 * a whole plan with one `ip -batch` run. Every process gets an argv array,
 * never a shell; processes start through a {@linkcode Spawn} (lib/kernel/spawn.ts).
 *
 * @module
 */

import { hostPrefix } from "../base/cidr.ts";
import { familyOf, normalizeTrustedIp } from "../base/ip.ts";
import type { Spawn } from "./spawn.ts";
import type { AddressStore, InterfaceAddress, Plan } from "./address_store.ts";
import { IpCommand } from "./ip_command.ts";

/** The kernel's "forever" lifetime, as `ip -json` prints it. */
const FOREVER = 0xffffffff;

/**
 * Parses the output of `ip -json address show dev IF`. Entries without
 * address information (older iproute2 prints `{}` for them) are skipped.
 *
 * @throws {SyntaxError} when the text is not the JSON `ip` prints.
 */
export function parseAddressJson(text: string): InterfaceAddress[] {
  const links: unknown = JSON.parse(text);
  if (!Array.isArray(links)) throw new SyntaxError("Cannot parse ip -json output: not an array");
  const out: InterfaceAddress[] = [];
  for (const link of links) {
    const infos = (link as { addr_info?: unknown })?.addr_info;
    if (!Array.isArray(infos)) continue;
    for (const info of infos) {
      const { family, local, prefixlen, valid_life_time } = info as Record<string, unknown>;
      if (typeof local !== "string" || typeof prefixlen !== "number") continue;
      if (family !== "inet" && family !== "inet6") continue;
      // iproute2 prints some addresses in a non-canonical form (`::10.0.100.5`).
      const canonical = normalizeTrustedIp(local)?.text ?? local;
      const addr: InterfaceAddress = {
        family: family === "inet" ? 4 : 6,
        local: canonical,
        prefixlen,
      };
      // A finite lifetime (forever is 4294967295) does not change what is managed; it is noted.
      const expires = typeof valid_life_time === "number" && valid_life_time < FOREVER;
      out.push(expires ? { ...addr, expires } : addr);
    }
  }
  return out;
}

/** Options for {@linkcode batchScript}. */
export interface BatchOptions {
  /**
   * Adds carry `valid_lft N preferred_lft N` (`--address-lifetime`);
   * removals never do. @default undefined (forever)
   */
  readonly lifetimeSeconds?: number;
}

/** The suffix that gives an `address replace` line its lifetime; `Infinity`: forever. */
export function lifetimeSuffix(lifetimeSeconds: number): string {
  const n = Number.isFinite(lifetimeSeconds) ? String(Math.floor(lifetimeSeconds)) : "forever";
  return ` valid_lft ${n} preferred_lft ${n}`;
}

/**
 * Builds the `ip -batch` script for a plan: adds first (make before break),
 * then removals. Addresses must be canonical texts from the parser. The one
 * place the line format is written: renewals (lib/agent/address_lifetime.ts) are a
 * plan of adds with a lifetime.
 */
export function batchScript(plan: Plan, device: string, options: BatchOptions = {}): string {
  const suffix = options.lifetimeSeconds === undefined
    ? ""
    : lifetimeSuffix(options.lifetimeSeconds);
  const line = (verb: string, a: string, tail = "") =>
    `address ${verb} ${a}/${hostPrefix(familyOf(a))} dev ${device}${tail}\n`;
  return plan.add.map((a) => line("replace", a, suffix)).join("") +
    plan.remove.map((a) => line("del", a)).join("");
}

/** Options for {@linkcode IpRoute2}. */
export interface IpRoute2Options {
  /** The managed interface, e.g. `lo`. */
  readonly device: string;
  /** A network namespace: every command runs as `ip -n NAME`. */
  readonly netns?: string;
  /** The `ip` program; `ip` from PATH by default. */
  readonly binary?: string;
  readonly spawn?: Spawn;
  /**
   * Add addresses with this `valid_lft`/`preferred_lft` (`--address-lifetime`),
   * so the kernel removes them unless {@linkcode IpRoute2.renew} runs in time.
   * @default undefined (forever)
   */
  readonly lifetimeSeconds?: number;
}

/** {@linkcode AddressStore} on top of the `ip` command. */
export class IpRoute2 implements AddressStore {
  readonly #device: string;
  readonly #ip: IpCommand;
  readonly #lifetimeSeconds: number | undefined;

  constructor(options: IpRoute2Options) {
    this.#device = options.device;
    this.#lifetimeSeconds = options.lifetimeSeconds;
    this.#ip = new IpCommand({ ...options, device: options.device });
  }

  /** How many processes this store has started. */
  get spawned(): number {
    return this.#ip.spawned;
  }

  read(signal?: AbortSignal): Promise<InterfaceAddress[]> {
    return this.#ip.read(["-json", "address", "show", "dev", this.#device], parseAddressJson, {
      signal,
    });
  }

  async apply(plan: Plan, signal?: AbortSignal): Promise<void> {
    if (plan.add.length === 0 && plan.remove.length === 0) return;
    await this.#batch(plan, this.#lifetimeSeconds, signal);
  }

  /**
   * Renews the lifetime of `addresses`: one `ip -batch` of `address replace`
   * lines with the store's lifetime (one RTM_NEWADDR each, no delete); a store
   * without a lifetime makes them permanent (`valid_lft forever`). Nothing
   * runs for no address.
   */
  async renew(addresses: Iterable<string>): Promise<void> {
    const add = [...addresses];
    if (add.length === 0) return;
    await this.#batch({ add, remove: [] }, this.#lifetimeSeconds ?? Infinity);
  }

  async #batch(
    plan: Plan,
    lifetimeSeconds: number | undefined,
    signal?: AbortSignal,
  ): Promise<void> {
    const stdin = batchScript(plan, this.#device, { lifetimeSeconds });
    await this.#ip.run(["-force", "-batch", "-"], { stdin, signal });
  }

  /** How many `ip` processes run now. */
  get running(): number {
    return this.#ip.running;
  }

  /** Resolves once no `ip` process runs. */
  idle(): Promise<void> {
    return this.#ip.idle();
  }
}

/**
 * The `ip -batch` script that renews `addresses` on `device`: one
 * `address replace A/32 dev D valid_lft N preferred_lft N` line each (a
 * renewal is one RTM_NEWADDR, no delete, and no BGP UPDATE). Addresses must be
 * canonical texts from the parser. It is {@linkcode batchScript} with a
 * lifetime, so that both stay one format.
 */
export function renewalScript(
  addresses: Iterable<string>,
  device: string,
  lifetimeSeconds: number,
): string {
  return batchScript({ add: [...addresses], remove: [] }, device, { lifetimeSeconds });
}
