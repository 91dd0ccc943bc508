/**
 * BIRD 2 routers for tests: one `bird` per network namespace with its config,
 * control socket, pid file and log under a per-router directory. It
 * daemonizes once the config is loaded, as `bird -c` does on a router.
 *
 * @module
 */

import { pidFiles, stopPid } from "../procs/processes.ts";
import { inNetns } from "../procs/netns.ts";

/** A BIRD command that failed, with its output. */
export class BirdError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BirdError";
  }
}

/** One BIRD instance in one network namespace. */
export class BirdRouter {
  private constructor(readonly netns: string, readonly dir: string) {}

  /**
   * Starts bird in `netns` with `config` (a log file under `dir` is put
   * first); returns once it has daemonized.
   *
   * @throws {BirdError} when bird refuses the config or does not start.
   */
  static async start(netns: string, dir: string, config: string): Promise<BirdRouter> {
    const r = new BirdRouter(netns, dir);
    await Deno.writeTextFile(`${dir}/bird.conf`, `log "${dir}/bird.log" all;\n${config}`);
    try {
      await inNetns(netns, [
        "bird",
        "-c",
        `${dir}/bird.conf`,
        "-s",
        `${dir}/bird.ctl`,
        "-P",
        `${dir}/bird.pid`,
      ]);
    } catch (cause) {
      await r.stop();
      throw new BirdError(`bird in ${netns} did not start: ${(cause as Error).message}`, {
        cause,
      });
    }
    return r;
  }

  /** Runs a `birdc` command against this instance and returns its output. */
  async birdc(...command: string[]): Promise<string> {
    try {
      return (await inNetns(this.netns, ["birdc", "-s", `${this.dir}/bird.ctl`, ...command]))
        .stdout;
    } catch (cause) {
      throw new BirdError((cause as Error).message, { cause });
    }
  }

  /** The pid of bird, from its pid file. */
  async pids(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const f of await pidFiles(this.dir)) out[f.path.replace(/^.*\/|\.pid$/g, "")] = f.pid;
    return out;
  }

  /** Stops bird (by the pid in its pid file). */
  async stop(): Promise<void> {
    const files = await pidFiles(this.dir);
    await Promise.all(files.map((f) => stopPid(f.pid, [this.dir])));
  }
}
