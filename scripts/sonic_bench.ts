/**
 * Measures the SONiC store: N addresses written to CONFIG_DB in one
 * transaction, read back, and removed in one transaction, against a
 * redis-server holding a SONiC CONFIG_DB (test/support/procs/redis.ts). The
 * store runs in a child process of its own, so that its RSS is the store's
 * and the runtime's only (sampled after each step). Prints one JSON line.
 *
 *   deno task bench-sonic [N]     (default 10000)
 *
 * @module
 */

import { SonicStore } from "../lib/kernel/sonic_store.ts";
import { seedSonicConfigDb, startRedis } from "../test/support/procs/redis.ts";
import { AGENT_V8_FLAG } from "./permissions.ts";

/** Resident memory samples of this process, in MiB: after each step, and their maximum. */
const samples: number[] = [];
function sample(): number {
  const mib = Deno.memoryUsage().rss / 1024 / 1024;
  samples.push(mib);
  return mib;
}

const round = (x: number) => Math.round(x * 10) / 10;

async function child(socket: string, n: number): Promise<void> {
  const store = new SonicStore({ loopback: "Loopback1000", socketPath: socket });
  const addresses = Array.from(
    { length: n },
    (_, i) => `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
  );
  const before = sample();
  await store.read();
  let t = performance.now();
  await store.apply({ add: addresses, remove: [] });
  const addMs = performance.now() - t;
  sample();
  t = performance.now();
  const read = await store.read();
  const readMs = performance.now() - t;
  sample();
  if (read.length !== n) throw new Error(`read back ${read.length} of ${n}`);
  t = performance.now();
  await store.apply({ add: [], remove: addresses });
  const removeMs = performance.now() - t;
  if ((await store.read()).length !== 0) throw new Error("entries left after the removal");
  store.close();
  const after = sample();
  console.log(JSON.stringify({
    addresses: n,
    addMs: round(addMs),
    readBackMs: round(readMs),
    removeMs: round(removeMs),
    rssBeforeMiB: round(before),
    rssAfterMiB: round(after),
    maxSampledRssMiB: round(Math.max(...samples)),
    heapUsedAfterMiB: round(Deno.memoryUsage().heapUsed / 1024 / 1024),
  }));
}

async function main(): Promise<void> {
  if (Deno.args[0] === "--child") return await child(Deno.args[1], Number(Deno.args[2]));
  const n = Number(Deno.args[0] ?? 10_000);
  await using redis = await startRedis();
  await seedSonicConfigDb(redis, 4);
  const out = await new Deno.Command("deno", {
    args: [
      "run",
      "--quiet",
      `--allow-read=${redis.socket}`,
      `--allow-write=${redis.socket}`,
      `--allow-net=unix:${redis.socket}`,
      // The agent's heap settings (deno task start, the compiled binary).
      AGENT_V8_FLAG,
      new URL(import.meta.url).pathname,
      "--child",
      redis.socket,
      String(n),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`the measuring process exited with ${out.code}`);
  const result = JSON.parse(new TextDecoder().decode(out.stdout));
  const info = (await redis.client(4).command(["INFO", "memory"])) as string;
  const used = Number(/^used_memory:(\d+)/m.exec(info)?.[1]) / 1024 / 1024;
  console.log(JSON.stringify({ ...result, redisUsedMemoryMiBAfter: round(used) }));
}

await main();
