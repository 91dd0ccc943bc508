/**
 * Cleans up a test fabric's run when the test process that started it is
 * gone: waits for its standard input (a pipe from that process) to close,
 * then stops the run's recorded processes and deletes its namespaces. Ignores
 * SIGINT and SIGTERM, which a terminal or a harness sends to the whole group.
 *
 * Usage: deno run --allow-run=ip,kill,ps --allow-read=/tmp --allow-write=/tmp
 *        fabric_reaper.ts RUN_DIR TEST_PID
 *
 * @module
 */

import { reapRun } from "../procs/processes.ts";

if (import.meta.main) {
  const [dir, pid] = Deno.args;
  Deno.addSignalListener("SIGINT", () => {});
  Deno.addSignalListener("SIGTERM", () => {});
  for await (const _ of Deno.stdin.readable) { /* wait for EOF */ }
  await reapRun(dir, Number(pid));
  Deno.exit(0);
}
