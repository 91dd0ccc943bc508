/**
 * Processes a test starts that may outlive it (FRR daemons detach; agents and
 * helpers are orphaned when the test is killed): their pids are recorded under
 * a per-run directory `/tmp/kgwt-fabric-<pid>-*`, so a later run can stop what
 * a dead run left behind. A pid is only signalled while its command line still
 * names that run, never because of its number alone.
 *
 * Needs `run` permission for `kill` and `ps` (Deno.kill wants all of `run`).
 *
 * @module
 */

import { sweepStale } from "./netns.ts";
import { waitFor } from "../wait.ts";

const decoder = new TextDecoder();
const RUN_PREFIX = "kgwt-fabric-";
const TMP = "/tmp";

async function run(cmd: string, ...args: string[]): Promise<{ code: number; stdout: string }> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout) };
}

/** Whether a process with this pid exists. */
export async function isAlive(pid: number): Promise<boolean> {
  return (await run("kill", "-0", String(pid))).code === 0;
}

/** The command line of a live process, or undefined. */
export async function commandLine(pid: number): Promise<string | undefined> {
  const out = await run("ps", "-o", "args=", "-p", String(pid));
  return out.code === 0 ? out.stdout.trim() : undefined;
}

/**
 * Stops `pid` if its command line contains one of `markers`: SIGTERM, then
 * SIGKILL after `graceMs`. Returns whether it was (or is now) gone.
 */
export async function stopPid(
  pid: number,
  markers: readonly string[],
  graceMs = 2000,
): Promise<boolean> {
  const cmdline = await commandLine(pid);
  if (cmdline === undefined) return true;
  if (!markers.some((m) => cmdline.includes(m))) return false;
  await run("kill", "-TERM", String(pid));
  const exited = await waitFor(`pid ${pid} to exit`, async () => !(await isAlive(pid)), graceMs, 20)
    .then(() => true, () => false);
  if (exited) return true;
  await run("kill", "-KILL", String(pid));
  return !(await isAlive(pid));
}

/** Every `*.pid` file under `dir`, with the pid it holds. */
export async function pidFiles(dir: string): Promise<{ path: string; pid: number }[]> {
  const out: { path: string; pid: number }[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else if (e.isFile && e.name.endsWith(".pid")) {
        const pid = Number((await Deno.readTextFile(p).catch(() => "")).trim());
        if (Number.isInteger(pid) && pid > 1) out.push({ path: p, pid });
      }
    }
  };
  await walk(dir).catch(() => {});
  return out;
}

/** The per-run directory: scratch files, configs, sockets, and pid files. */
export class RunDir {
  private constructor(readonly path: string) {}

  /** Creates `/tmp/kgwt-fabric-<pid>-XXXX`, readable by FRR's unprivileged user. */
  static async create(): Promise<RunDir> {
    const path = await Deno.makeTempDir({ dir: TMP, prefix: `${RUN_PREFIX}${Deno.pid}-` });
    await Deno.chmod(path, 0o755);
    await Deno.mkdir(`${path}/procs`);
    return new RunDir(path);
  }

  /** Markers that identify this run's processes on their command lines. */
  get markers(): string[] {
    return [this.path, `kgwt-${Deno.pid}-`];
  }

  /** Makes a subdirectory that FRR (running as user frr) can write to. */
  async subdir(name: string): Promise<string> {
    const p = `${this.path}/${name}`;
    await Deno.mkdir(p);
    await Deno.chmod(p, 0o777);
    return p;
  }

  /** Records a process so that a later run can stop it if this one dies. */
  async record(name: string, pid: number): Promise<void> {
    await Deno.writeTextFile(`${this.path}/procs/${name}.pid`, `${pid}\n`);
  }

  /** Stops every recorded process (FRR's pid files included) and removes the directory. */
  async destroy(): Promise<void> {
    await stopAll(this.path, this.markers);
    await Deno.remove(this.path, { recursive: true }).catch(() => {});
  }
}

async function stopAll(dir: string, markers: readonly string[]): Promise<void> {
  await Promise.all((await pidFiles(dir)).map((f) => stopPid(f.pid, markers)));
}

/**
 * Cleans up after the test process `pid` that used run directory `dir`: stops
 * its recorded processes, deletes its namespaces, removes the directory.
 */
export async function reapRun(dir: string, pid: number): Promise<void> {
  await stopAll(dir, [dir, `kgwt-${pid}-`]);
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await deleteNamespacesOf(pid);
}

async function deleteNamespacesOf(pid: number): Promise<void> {
  const list = await run("ip", "netns", "list");
  for (const line of list.stdout.split("\n")) {
    const name = line.split(" ")[0];
    if (name.startsWith(`kgwt-${pid}-`)) await run("ip", "netns", "del", name);
  }
}

/**
 * Stops the processes and removes the run directories of test processes that
 * no longer run, then their network namespaces. Returns what was removed.
 */
export async function sweepStaleRuns(): Promise<string[]> {
  const removed: string[] = [];
  for await (const e of Deno.readDir(TMP)) {
    const m = new RegExp(`^${RUN_PREFIX}(\\d+)-`).exec(e.name);
    if (!m || !e.isDirectory || await isAlive(Number(m[1]))) continue;
    await reapRun(`${TMP}/${e.name}`, Number(m[1]));
    removed.push(`${TMP}/${e.name}`);
  }
  removed.push(...await sweepStale());
  return removed;
}

/**
 * A watchdog process (fabric_reaper.ts) that cleans up the run once this
 * process is gone, however it went: the test runner exits on SIGINT without
 * running our listeners, and nothing runs after SIGKILL.
 */
export class Reaper {
  readonly #child: Deno.ChildProcess;

  constructor(run: RunDir) {
    this.#child = new Deno.Command("deno", {
      args: [
        "run",
        "--quiet",
        "--no-prompt",
        "--allow-run=ip,kill,ps",
        "--allow-read=/tmp",
        "--allow-write=/tmp",
        new URL("../fabric/reaper.ts", import.meta.url).pathname,
        run.path,
        String(Deno.pid),
      ],
      stdin: "piped",
      stdout: "null",
      stderr: "inherit",
    }).spawn();
  }

  get pid(): number {
    return this.#child.pid;
  }

  /** Lets the reaper go over the run once more and exit; waits for it. */
  async release(): Promise<void> {
    await this.#child.stdin.close().catch(() => {});
    await this.#child.status;
  }
}
