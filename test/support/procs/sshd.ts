/**
 * A throwaway "router" for installer tests: an sshd on 127.0.0.1 and a high
 * port, with its own host key and authorized_keys in a temporary directory,
 * running in a private mount namespace where /etc, /usr/local and /run are
 * copy-on-write overlays. Whatever an installer writes there lands in the
 * overlays, never on this machine, and goes away with the namespace. A
 * `systemctl` stand-in comes first on the sessions' PATH: it logs each call
 * and keeps "enabled" and "active" as files, as no systemd runs here.
 *
 * @module
 */

import { freePort } from "./agent.ts";
import { waitFor } from "../wait.ts";

const decoder = new TextDecoder();

async function run(cmd: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdin: "null" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${decoder.decode(out.stderr).trim()}`);
  }
  return decoder.decode(out.stdout);
}

const SYSTEMCTL_SHIM = (dir: string) =>
  `#!/bin/sh
# Test stand-in for systemctl: logs the call, keeps each unit's state in ${dir}/state.
echo "systemctl $*" >> ${dir}/systemctl.log
verb=
units=
for a in "$@"; do
  case $a in
    -*) ;;
    *) if [ -z "$verb" ]; then verb=$a; else units="$units $a"; fi ;;
  esac
done
each() { # each STATE ACTION: touch or rm STATE.UNIT for every unit named
  for u in $units; do $2 ${dir}/state/$1.$u; done
}
case $verb in
  daemon-reload) ;;
  enable) each enabled touch ;;
  disable) each enabled "rm -f" ;;
  is-enabled) [ -e ${dir}/state/enabled.\${units# } ] ;;
  start|restart) each active touch ;;
  stop) each active "rm -f" ;;
  is-active) [ -e ${dir}/state/active.\${units# } ] ;;
  *) echo "systemctl stand-in: unexpected $*" >&2; exit 1 ;;
esac
`;

/** A running throwaway sshd; dispose to stop it and drop its namespace. */
export class TestRouter implements AsyncDisposable {
  private constructor(
    /** The temporary directory with keys, configs, logs. */
    readonly dir: string,
    /** An ssh_config that reaches it as host `router`. */
    readonly sshConfig: string,
    private readonly holder: Deno.ChildProcess,
    private readonly sshd: Deno.ChildProcess,
  ) {}

  /** Starts sshd in a fresh mount namespace with overlays on /etc, /usr/local and /run. */
  static async start(): Promise<TestRouter> {
    const dir = await Deno.makeTempDir({ prefix: "kube-gw-router-" });
    const port = freePort();
    await run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", `${dir}/host_key`);
    await run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", `${dir}/id`);
    await Deno.copyFile(`${dir}/id.pub`, `${dir}/authorized_keys`);
    const hostKey = (await Deno.readTextFile(`${dir}/host_key.pub`)).split(" ").slice(0, 2);
    await Deno.writeTextFile(`${dir}/known_hosts`, `[127.0.0.1]:${port} ${hostKey.join(" ")}\n`);
    await Deno.mkdir(`${dir}/shim`);
    await Deno.mkdir(`${dir}/state`);
    await Deno.writeTextFile(`${dir}/shim/systemctl`, SYSTEMCTL_SHIM(dir), { mode: 0o755 });
    await Deno.writeTextFile(
      `${dir}/sshd_config`,
      [
        `Port ${port}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${dir}/host_key`,
        `AuthorizedKeysFile ${dir}/authorized_keys`,
        `PidFile ${dir}/sshd.pid`,
        "StrictModes no",
        "UsePAM no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "MaxSessions 20",
        `SetEnv PATH=${dir}/shim:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
        "LogLevel ERROR",
        "",
      ].join("\n"),
    );
    const sshConfig = `${dir}/ssh_config`;
    await Deno.writeTextFile(
      sshConfig,
      [
        "Host router",
        "  HostName 127.0.0.1",
        `  Port ${port}`,
        "  User root",
        `  IdentityFile ${dir}/id`,
        "  IdentitiesOnly yes",
        `  UserKnownHostsFile ${dir}/known_hosts`,
        "  StrictHostKeyChecking yes",
        "  BatchMode yes",
        "  LogLevel ERROR",
        "",
      ].join("\n"),
    );

    // A process that holds the private mount namespace; sshd joins it.
    const holder = new Deno.Command("unshare", {
      args: ["--mount", "--propagation", "private", "sleep", "infinity"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    let sshd: Deno.ChildProcess | undefined;
    try {
      const inNs = (...args: string[]) => run("nsenter", "-t", String(holder.pid), "-m", ...args);
      // nsenter may run before unshare has made the namespace, and would then
      // mount over this machine's /etc: wait until the holder's namespace differs.
      const mntNs = (pid: number) =>
        run("nsenter", "-t", String(pid), "-m", "readlink", "/proc/self/ns/mnt").catch(() => "");
      const own = await mntNs(Deno.pid);
      await waitFor(
        "unshare to make a mount namespace",
        async () => {
          const theirs = await mntNs(holder.pid);
          return theirs !== "" && own !== "" && theirs !== own;
        },
        4000,
        20,
      );
      for (const [where, name] of [["/etc", "etc"], ["/usr/local", "usr-local"], ["/run", "run"]]) {
        await Deno.mkdir(`${dir}/${name}.upper`);
        await Deno.mkdir(`${dir}/${name}.work`);
        await inNs(
          "mount",
          "-t",
          "overlay",
          "overlay",
          "-o",
          `lowerdir=${where},upperdir=${dir}/${name}.upper,workdir=${dir}/${name}.work`,
          where,
        );
      }
      await inNs("mkdir", "-p", "-m", "0755", "/run/sshd");
      sshd = new Deno.Command("nsenter", {
        args: [
          "-t",
          String(holder.pid),
          "-m",
          "/usr/sbin/sshd",
          "-D",
          "-e",
          "-f",
          `${dir}/sshd_config`,
        ],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      sshd.stderr.pipeTo(Deno.openSync(`${dir}/sshd.log`, { write: true, create: true }).writable)
        .catch(() => {});
      await waitFor(
        `sshd to listen on ${port}`,
        async () => {
          try {
            (await Deno.connect({ hostname: "127.0.0.1", port })).close();
            return true;
          } catch {
            return false;
          }
        },
        10_000,
        50,
      );
      return new TestRouter(dir, sshConfig, holder, sshd);
    } catch (err) {
      sshd?.kill("SIGKILL");
      holder.kill("SIGKILL");
      await Promise.all([sshd?.status, holder.status]);
      await Deno.remove(dir, { recursive: true });
      throw err;
    }
  }

  /** Runs a command on the router (a shell command line, as ssh sends it). */
  async ssh(command: string): Promise<{ code: number; stdout: string; stderr: string }> {
    const out = await new Deno.Command("ssh", {
      args: ["-F", this.sshConfig, "router", command],
      stdin: "null",
    }).output();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  }

  /** The systemctl calls so far, one per line, and clears the log. */
  async takeSystemctlLog(): Promise<string[]> {
    const path = `${this.dir}/systemctl.log`;
    const text = await Deno.readTextFile(path).catch(() => "");
    await Deno.remove(path).catch(() => {});
    return text.split("\n").filter((l) => l !== "");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const p of [this.sshd, this.holder]) {
      try {
        p.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }
    await Promise.all([this.sshd.status, this.holder.status]);
    await Deno.remove(this.dir, { recursive: true });
  }
}
