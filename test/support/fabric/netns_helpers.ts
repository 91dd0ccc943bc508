/**
 * Small helpers the test fabric runs inside its namespaces: an `nft -f`
 * script, and a process that prints a line when it is ready.
 *
 * @module
 */

import { inNetns } from "../procs/netns.ts";

/** Loads `script` with `nft -f -` in `netns`. */
export async function nftScript(netns: string, script: string): Promise<void> {
  await inNetns(netns, ["nft", "-f", "-"], script);
}

/** A process started in a namespace that prints a line when it is ready. */
export async function startReady(
  netns: string,
  argv: string[],
  ready: RegExp,
  timeoutMs = 20_000,
): Promise<Deno.ChildProcess> {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", netns, ...argv],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }, timeoutMs);
  try {
    while (!ready.test(seen)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`${argv.join(" ")} in ${netns} exited before ${ready}: ${seen}`);
      seen += value;
    }
  } finally {
    clearTimeout(timer);
  }
  // Keep draining so the child never blocks on a full pipe.
  (async () => {
    while (!(await reader.read()).done) { /* discard */ }
  })().catch(() => {});
  return child;
}
