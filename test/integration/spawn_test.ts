/**
 * lib/kernel/spawn.ts with a real process: an aborted run stops the child and
 * settles only once it is gone.
 *
 * @module
 */

import assert from "node:assert/strict";
import { denoSpawn, SpawnAborted } from "../../lib/kernel/spawn.ts";
import { ip, Netns } from "../support/procs/netns.ts";
import { waitFor } from "../support/wait.ts";

const pidsIn = async (ns: Netns) =>
  (await ip("netns", "pids", ns.name)).split("\n").filter((l) => l.trim());

Deno.test("an aborted spawn stops its process and settles after it is gone", async () => {
  await using ns = await Netns.create("spawn");
  const controller = new AbortController();
  // `ip monitor` runs until it is stopped.
  const run = denoSpawn(["ip", "-n", ns.name, "monitor", "address"], undefined, controller.signal);
  await waitFor("ip monitor to run", async () => (await pidsIn(ns)).length === 1);
  controller.abort(new Error("stop"));
  await assert.rejects(run, SpawnAborted);
  assert.deepEqual(await pidsIn(ns), [], "no process is left when the spawn settles");
  await assert.rejects(
    denoSpawn(["ip", "-V"], undefined, controller.signal),
    SpawnAborted,
    "an aborted signal starts nothing",
  );
});

Deno.test("a process killed by a signal reports the signal", async () => {
  await using ns = await Netns.create("spawn");
  const run = denoSpawn(["ip", "-n", ns.name, "monitor", "address"]);
  let pids: string[] = [];
  await waitFor("ip monitor to run", async () => (pids = await pidsIn(ns)).length === 1);
  await new Deno.Command("kill", { args: ["-TERM", pids[0]] }).output();
  const out = await run;
  assert.equal(out.signal, "SIGTERM");
  assert.equal(out.code, 143);
});
