/**
 * FRR routers for tests: zebra, bfdd and bgpd from Debian's frr package, one
 * set per network namespace, each with its own pid files, sockets, logs and
 * integrated config under a per-router directory. The config is applied the
 * way FRR applies /etc/frr/frr.conf: `vtysh -b`. zebra gets the netlink
 * receive buffer docs/router.md gives it in /etc/frr/daemons (`-s`), so a
 * burst of 100,000 routes does not overrun it.
 *
 * @module
 */

import { pidFiles, stopPid } from "../procs/processes.ts";
import { inNetns as execIn } from "../procs/netns.ts";

const FRR_DIR = "/usr/lib/frr";
const DAEMONS = ["zebra", "bfdd", "bgpd"] as const;

/** zebra's netlink receive buffer, as docs/router.md sets it (`-s` in zebra_options). */
export const ZEBRA_NETLINK_BUFFER = 67_108_864;

/** An FRR command that failed, with its output. */
export class FrrError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "FrrError";
  }
}

async function inNetns(netns: string, argv: string[]): Promise<string> {
  try {
    const out = await execIn(netns, argv);
    return out.stdout + out.stderr;
  } catch (cause) {
    throw new FrrError((cause as Error).message, { cause });
  }
}

/** One FRR instance in one network namespace. */
export class FrrRouter {
  private constructor(readonly netns: string, readonly dir: string) {}

  /**
   * Starts zebra, bfdd and bgpd in `netns` with everything under `dir` (which
   * user frr must be able to write), then loads `config` with `vtysh -b`.
   *
   * @throws {FrrError} when a daemon does not start or a config line is refused.
   */
  static async start(netns: string, dir: string, config: string): Promise<FrrRouter> {
    const r = new FrrRouter(netns, dir);
    await Deno.writeTextFile(`${dir}/frr.conf`, config);
    await Deno.writeTextFile(`${dir}/vtysh.conf`, "service integrated-vtysh-config\n");
    try {
      for (const d of DAEMONS) {
        // -d returns once the daemon is up; its pid file is what stops it later.
        await inNetns(netns, [
          `${FRR_DIR}/${d}`,
          "-d",
          "-i",
          `${dir}/${d}.pid`,
          "-z",
          `${dir}/zserv.api`,
          "--vty_socket",
          dir,
          "-P",
          "0",
          "-f",
          "/dev/null",
          "--log",
          `file:${dir}/${d}.log`,
          ...(d === "bfdd" ? ["--bfdctl", `${dir}/bfdd.sock`] : []),
          // --v6-rr-semantics: without it zebra changes an IPv6 ECMP route by deleting it and adding
          // the new one, and a SYN that reaches the leaf in between gets "no route" (seen as one
          // ENETUNREACH in 8,000 requests while a gateway withdraws). docs/router.md says so.
          ...(d === "zebra" ? ["-s", String(ZEBRA_NETLINK_BUFFER), "--v6-rr-semantics"] : []),
        ]);
      }
      const out = await inNetns(netns, ["vtysh", "--vty_socket", dir, "--config_dir", dir, "-b"]);
      if (
        /% ?(Unknown|Ambiguous|Command incomplete)|Configuration file\[.*\] processing failure/i
          .test(out)
      ) {
        throw new FrrError(`vtysh -b in ${netns} refused part of the config: ${out.trim()}`);
      }
    } catch (err) {
      await r.stop();
      throw err;
    }
    return r;
  }

  /** Runs vtysh commands against this instance. */
  vtysh(...commands: string[]): Promise<string> {
    return inNetns(this.netns, [
      "vtysh",
      "--vty_socket",
      this.dir,
      ...commands.flatMap((c) => ["-c", c]),
    ]);
  }

  /** The pid of each daemon (`zebra`, `bfdd`, `bgpd`), from its pid file. */
  async pids(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const f of await pidFiles(this.dir)) {
      if (!f.path.includes("/procs/")) out[f.path.replace(/^.*\/|\.pid$/g, "")] = f.pid;
    }
    return out;
  }

  /** Stops the daemons (by the pids in their pid files). */
  async stop(): Promise<void> {
    const files = (await pidFiles(this.dir)).filter((f) => !f.path.includes("/procs/"));
    await Promise.all(files.map((f) => stopPid(f.pid, [this.dir])));
  }
}
