/**
 * Runs the planted entry (test/support/procs/planted_entry.ts: the real main.ts plus
 * calls that must be refused) exactly as the shipped bundle runs: bundled, with
 * the shipped permission flags, a cleared environment, and the given kube-gw
 * arguments. Returns the one JSON report it prints.
 *
 * @module
 */

import { bundleCommand } from "./agent.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;
const decoder = new TextDecoder();

/** Bundles the planted entry into `dir` like the shipped bundle; returns its path. */
async function bundlePlanted(dir: string): Promise<string> {
  const output = `${dir}/planted.js`;
  const out = await new Deno.Command("deno", {
    args: [
      "bundle",
      "--quiet",
      "--platform=deno",
      "--output",
      output,
      "test/support/procs/planted_entry.ts",
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`deno bundle failed: ${decoder.decode(out.stderr)}`);
  return output;
}

/**
 * Bundles the planted entry into `dir`, runs it with `kubeGwArgs` (e.g.
 * `["run", "--kubeconfig=…", …]`) and returns its report: each planted try →
 * `denied`, `granted`, `allowed`, `prompt`…
 *
 * @throws when the bundle fails, or the run fails or prints no report (with its output).
 */
export async function runPlanted(
  dir: string,
  kubeGwArgs: readonly string[],
): Promise<Record<string, unknown>> {
  const planted = await bundlePlanted(dir);
  const [cmd, ...args] = bundleCommand(planted);
  const out = await new Deno.Command(cmd, {
    args: [...args, ...kubeGwArgs],
    cwd: ROOT,
    stdin: "null",
    clearEnv: true,
    env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" },
  }).output();
  const stdout = decoder.decode(out.stdout);
  const line = stdout.split("\n").find((l) => l.startsWith("{"));
  if (!out.success || !line) {
    throw new Error(`planted run failed (${out.code}):\n${stdout}\n${decoder.decode(out.stderr)}`);
  }
  return JSON.parse(line);
}
