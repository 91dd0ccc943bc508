/**
 * Running the `ip` command for the kernel adapters (iproute2.ts, route_store.ts):
 * the argv prefix (`ip [-n NETNS]`), one counted run through a
 * {@linkcode Spawn}, and the translation of its failures into typed errors an
 * operator can act on ({@linkcode IpError}, {@linkcode InterruptedError}).
 *
 * @module
 */

import { denoSpawn, type Spawn, SpawnAborted, type SpawnResult } from "./spawn.ts";
import { InterruptedError } from "./address_store.ts";

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

/** The last `lines` lines of `text`. */
export function tail(text: string, lines = 5): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/** Options for {@linkcode IpCommand}. */
export interface IpCommandOptions {
  /** A network namespace: every command runs as `ip -n NAME`. */
  readonly netns?: string;
  /** The `ip` program; `ip` from PATH by default. */
  readonly binary?: string;
  readonly spawn?: Spawn;
  /** The interface named in a "does not exist" error. @default undefined */
  readonly device?: string;
}

/** Options for one {@linkcode IpCommand.run}. */
export interface RunOptions {
  readonly stdin?: string;
  readonly signal?: AbortSignal;
}

/**
 * Runs `ip` with a fixed prefix and counts its processes. A run stopped
 * through its signal rejects with {@linkcode InterruptedError}; a failed one
 * with {@linkcode IpError}.
 */
export class IpCommand {
  /** `ip` and its global options (`-n NETNS`). */
  readonly prefix: readonly string[];
  readonly #spawn: Spawn;
  readonly #device: string | undefined;
  #spawned = 0;
  #running = 0;
  readonly #idle: (() => void)[] = [];

  constructor(options: IpCommandOptions) {
    this.prefix = [options.binary ?? "ip", ...(options.netns ? ["-n", options.netns] : [])];
    this.#spawn = options.spawn ?? denoSpawn;
    this.#device = options.device;
  }

  /** How many processes have been started. */
  get spawned(): number {
    return this.#spawned;
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

  /** Runs `ip PREFIX... args...`; resolves with its output when it exits with 0. */
  async run(args: readonly string[], options: RunOptions = {}): Promise<SpawnResult> {
    const argv = [...this.prefix, ...args];
    this.#spawned++;
    this.#running++;
    try {
      return await this.#runOnce(argv, options);
    } finally {
      if (--this.#running === 0) { for (const f of this.#idle.splice(0)) f(); }
    }
  }

  /**
   * Runs `args` and parses its standard output with `parse`; output `parse`
   * refuses (a `SyntaxError`) is an {@linkcode IpError} naming the command.
   */
  async read<T>(
    args: readonly string[],
    parse: (stdout: string) => T,
    options: RunOptions = {},
  ): Promise<T> {
    const out = await this.run(args, options);
    try {
      return parse(out.stdout);
    } catch (cause) {
      const argv = [...this.prefix, ...args];
      throw new IpError(
        "failed",
        `${argv.join(" ")}: unexpected output`,
        argv,
        out.code,
        tail(out.stdout),
        { cause },
      );
    }
  }

  async #runOnce(argv: string[], options: RunOptions): Promise<SpawnResult> {
    let out: SpawnResult;
    try {
      out = await this.#spawn(argv, options.stdin, options.signal);
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
          { cause },
        );
      }
      throw new IpError(
        "failed",
        `Cannot run "${argv[0]}": ${(cause as Error).message}`,
        argv,
        undefined,
        undefined,
        { cause },
      );
    }
    if (out.signal) {
      throw new InterruptedError(`${argv.join(" ")} was killed by ${out.signal}`, out.signal);
    }
    if (out.code !== 0) throw classify(argv, out, this.#device);
    return out;
  }
}

function classify(argv: readonly string[], out: SpawnResult, device: string | undefined): IpError {
  const t = tail(out.stderr);
  const where = argv.join(" ");
  if (/Device "[^"]*" does not exist|Cannot find device/.test(out.stderr)) {
    const which = device ?? /Device "([^"]*)"/.exec(out.stderr)?.[1] ?? "";
    return new IpError("no_device", `interface "${which}" does not exist`, argv, out.code, t);
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
