/**
 * Throwaway network namespaces for tests. Names carry the creating process's
 * pid, so a later run can remove what a killed run left behind.
 *
 * @module
 */

const PREFIX = "kgwt";
const decoder = new TextDecoder();

/** Runs `ip` with argv and returns stdout; throws with stderr on failure. */
export async function ip(...args: string[]): Promise<string> {
  const out = await new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(
      `ip ${args.join(" ")} failed (${out.code}): ${decoder.decode(out.stderr).trim()}`,
    );
  }
  return decoder.decode(out.stdout);
}

/**
 * Runs `argv` inside a namespace (`ip netns exec`), with `stdin` if given,
 * and returns its output.
 *
 * @throws {Error} naming the command, the namespace, the exit code and stderr.
 */
export async function inNetns(
  netns: string,
  argv: readonly string[],
  stdin?: string,
): Promise<{ stdout: string; stderr: string }> {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", netns, ...argv],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Read while writing: a child that fills its output pipe before reading all of stdin must not
  // stall, and one that exits early tells why through its exit code and stderr.
  const output = child.output();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    try {
      await writer.write(new TextEncoder().encode(stdin));
      await writer.close();
    } catch {
      // The child exited before reading all of stdin.
    }
  }
  const out = await output;
  const stdout = decoder.decode(out.stdout);
  const stderr = decoder.decode(out.stderr);
  if (!out.success) {
    throw new Error(
      `${argv.join(" ")} in ${netns} exited with ${out.code}: ${(stderr || stdout).trim()}`,
    );
  }
  return { stdout, stderr };
}

/**
 * Whether a process with this pid is alive. Asks `kill -0`: `Deno.kill` needs
 * all of `run`, and a permission error must never read as "dead" (that would
 * sweep the namespaces of tests still running).
 */
async function alive(pid: number): Promise<boolean> {
  try {
    const out = await new Deno.Command("kill", {
      args: ["-0", String(pid)],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return true;
  }
}

/** Removes namespaces left by test processes that no longer run. */
export async function sweepStale(): Promise<string[]> {
  const removed: string[] = [];
  const list = await ip("netns", "list");
  for (const line of list.split("\n")) {
    const name = line.split(" ")[0];
    const m = new RegExp(`^${PREFIX}\\d*-(\\d+)-`).exec(name);
    if (m && !(await alive(Number(m[1])))) {
      await ip("netns", "del", name).catch(() => {});
      removed.push(name);
    }
  }
  return removed;
}

let seq = 0;

/** A network namespace that deletes itself. */
export class Netns implements AsyncDisposable {
  private constructor(readonly name: string) {}

  /** Creates a namespace named `kgwt-<pid>-<n>-<label>` with `lo` up. */
  static async create(label = "ns"): Promise<Netns> {
    const name = `${PREFIX}-${Deno.pid}-${++seq}-${label}`.slice(0, 60);
    await ip("netns", "add", name);
    const ns = new Netns(name);
    await ns.ip("link", "set", "lo", "up");
    return ns;
  }

  /** Runs `ip -n NAME ...`. */
  ip(...args: string[]): Promise<string> {
    return ip("-n", this.name, ...args);
  }

  /** Host addresses (`/32`, `/128`) on a device, canonical texts, sorted. */
  async hostAddresses(dev = "lo"): Promise<string[]> {
    const links = JSON.parse(await this.ip("-json", "address", "show", "dev", dev)) as {
      addr_info?: { local: string; prefixlen: number; family: string }[];
    }[];
    return links.flatMap((l) => l.addr_info ?? [])
      .filter((a) => a.prefixlen === (a.family === "inet" ? 32 : 128) && a.local !== "::1")
      .map((a) => a.local)
      .sort();
  }

  /** Deletes the namespace. */
  async delete(): Promise<void> {
    await ip("netns", "del", this.name).catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.delete();
  }
}

/** Options for {@linkcode IpMonitor}. */
export interface IpMonitorOptions {
  /** `ip -o`: one line per event. */
  readonly oneline?: boolean;
  /** Called with each line and the time it was read; without it, lines are kept in `lines`. */
  readonly onLine?: (text: string, at: number) => void;
}

/** A running `ip monitor` whose output lines are handed over with arrival times. */
export class IpMonitor implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  /** Every line read, when no `onLine` was given. */
  readonly lines: { at: number; text: string }[] = [];
  readonly #done: Promise<void>;
  #stderr = "";

  /** Starts `ip [-o] -n NS monitor OBJECT` (e.g. `address`, `route`). */
  constructor(netns: string, object: string, options: IpMonitorOptions = {}) {
    const child = new Deno.Command("ip", {
      args: [...(options.oneline ? ["-o"] : []), "-n", netns, "monitor", object],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    const onLine = options.onLine ?? ((text, at) => this.lines.push({ at, text }));
    const pumpOut = async () => {
      let buf = "";
      for await (const chunk of child.stdout) {
        const at = performance.now();
        buf += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const text = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          onLine(text, at);
        }
      }
    };
    const pumpErr = async () => {
      for await (const chunk of child.stderr) this.#stderr += decoder.decode(chunk);
    };
    this.#done = Promise.all([pumpOut(), pumpErr()]).then(() => {});
  }

  get pid(): number {
    return this.#child.pid;
  }

  /** What `ip monitor` wrote to stderr (e.g. a netlink overrun). */
  get stderr(): string {
    return this.#stderr;
  }

  /** Stops the monitor. */
  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await this.#child.status;
    await this.#done.catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}
