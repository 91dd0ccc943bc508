/**
 * The iproute2 adapter: reads the managed interface with `ip -json` and applies
 * a whole plan with one `ip -batch` run. Every process gets an argv array,
 * never a shell; processes start through a {@linkcode Spawn} (lib/kernel/spawn.ts).
 *
 * @module
 */

import { hostPrefix } from "../base/cidr.ts";
import { familyOf, normalizeTrustedIp } from "../base/ip.ts";
import { denoSpawn, type Spawn, SpawnAborted, type SpawnResult } from "./spawn.ts";
import {
  type AddressStore,
  type InterfaceAddress,
  InterruptedError,
  type Plan,
} from "./address_store.ts";

/** What went wrong with an `ip` run, for operators. */
export type IpErrorKind = "missing" | "no_device" | "no_netns" | "no_permission" | "failed";

/** An `ip` run that failed, with the command, exit code and stderr tail. */
export class IpError extends Error {
  constructor(
    readonly kind: IpErrorKind,
    message: string,
    readonly argv: readonly string[],
    readonly code?: number,
    readonly stderrTail?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "IpError";
  }
}

function tail(text: string, lines = 5): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

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
  readonly #prefix: readonly string[];
  readonly #spawn: Spawn;
  readonly #lifetimeSeconds: number | undefined;
  #spawned = 0;
  #running = 0;
  readonly #idle: (() => void)[] = [];

  constructor(options: IpRoute2Options) {
    this.#device = options.device;
    this.#lifetimeSeconds = options.lifetimeSeconds;
    this.#prefix = [options.binary ?? "ip", ...(options.netns ? ["-n", options.netns] : [])];
    this.#spawn = options.spawn ?? denoSpawn;
  }

  /** How many processes this store has started. */
  get spawned(): number {
    return this.#spawned;
  }

  async read(signal?: AbortSignal): Promise<InterfaceAddress[]> {
    const argv = [...this.#prefix, "-json", "address", "show", "dev", this.#device];
    const out = await this.#run(argv, undefined, signal);
    try {
      return parseAddressJson(out.stdout);
    } catch (cause) {
      throw new IpError(
        "failed",
        `${argv.join(" ")}: unexpected output`,
        argv,
        out.code,
        tail(out.stdout),
        {
          cause,
        },
      );
    }
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
    const script = batchScript(plan, this.#device, { lifetimeSeconds });
    await this.#run([...this.#prefix, "-force", "-batch", "-"], script, signal);
  }

  /** How many `ip` processes run now. */
  get running(): number {
    return this.#running;
  }

  /** Resolves once no `ip` process runs. */
  idle(): Promise<void> {
    if (this.#running === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  async #run(argv: string[], stdin?: string, signal?: AbortSignal): Promise<SpawnResult> {
    this.#spawned++;
    this.#running++;
    try {
      return await this.#runOnce(argv, stdin, signal);
    } finally {
      if (--this.#running === 0) { for (const f of this.#idle.splice(0)) f(); }
    }
  }

  async #runOnce(argv: string[], stdin?: string, signal?: AbortSignal): Promise<SpawnResult> {
    let out: SpawnResult;
    try {
      out = await this.#spawn(argv, stdin, signal);
    } catch (cause) {
      if (cause instanceof SpawnAborted) {
        throw new InterruptedError(`${argv.join(" ")} was stopped by kube-gw`, "SIGTERM", {
          cause,
        });
      }
      if (cause instanceof Deno.errors.NotFound) {
        throw new IpError(
          "missing",
          `Cannot run "${argv[0]}": not found (install iproute2)`,
          argv,
          undefined,
          undefined,
          {
            cause,
          },
        );
      }
      throw new IpError(
        "failed",
        `Cannot run "${argv[0]}": ${(cause as Error).message}`,
        argv,
        undefined,
        undefined,
        {
          cause,
        },
      );
    }
    if (out.signal) {
      throw new InterruptedError(`${argv.join(" ")} was killed by ${out.signal}`, out.signal);
    }
    if (out.code !== 0) throw classify(argv, out, this.#device);
    return out;
  }
}

function classify(argv: readonly string[], out: SpawnResult, device: string): IpError {
  const t = tail(out.stderr);
  const where = argv.join(" ");
  if (/Device "[^"]*" does not exist|Cannot find device/.test(out.stderr)) {
    return new IpError("no_device", `interface "${device}" does not exist`, argv, out.code, t);
  }
  if (/Cannot open network namespace/.test(out.stderr)) {
    return new IpError("no_netns", `network namespace not found: ${t}`, argv, out.code, t);
  }
  if (/setting the network namespace .* failed/.test(out.stderr)) {
    return new IpError(
      "no_permission",
      `${where}: cannot enter the network namespace: ${t} (--netns needs CAP_SYS_ADMIN besides CAP_NET_ADMIN)`,
      argv,
      out.code,
      t,
    );
  }
  if (/Operation not permitted|Permission denied/.test(out.stderr)) {
    return new IpError(
      "no_permission",
      `${where}: operation not permitted (kube-gw needs CAP_NET_ADMIN)`,
      argv,
      out.code,
      t,
    );
  }
  return new IpError(
    "failed",
    `${where} exited with ${out.code}: ${t.replaceAll("\n", " | ")}`,
    argv,
    out.code,
    t,
  );
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
