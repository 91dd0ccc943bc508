import assert from "node:assert/strict";
import { waitFor } from "../support/wait.ts";
import { parseCidr } from "../../lib/base/cidr.ts";
import { InterfaceSync } from "../../lib/agent/interface_sync.ts";
import { systemClock } from "../../lib/base/system_clock.ts";
import { quietObserver } from "../../lib/agent/observer.ts";
import { InterruptedError } from "../../lib/kernel/address_store.ts";
import { RedisError } from "../../lib/kernel/redis.ts";
import { SonicStore } from "../../lib/kernel/sonic_store.ts";
import {
  seedSonicConfigDb,
  SONIC_CONFIG_DB,
  startRedis,
  type TestRedis,
} from "../support/procs/redis.ts";

const NETWORKS = [parseCidr("10.0.100.0/24"), parseCidr("2001:db8:100::/64")];
const LOOPBACK = "Loopback1000";

/** A Redis holding a SONiC CONFIG_DB, and the same keys in APPL_DB (0) as a decoy. */
async function sonicRedis(): Promise<TestRedis> {
  const redis = await startRedis();
  await seedSonicConfigDb(redis, 4);
  await seedSonicConfigDb(redis, 0);
  return redis;
}

function store(redis: TestRedis): SonicStore {
  return new SonicStore({ loopback: LOOPBACK, socketPath: redis.socket, timeoutMs: 10_000 });
}

/** CONFIG_DB without kube-gw's loopback: what must never change. */
async function foreign(redis: TestRedis, db = 4): Promise<Record<string, unknown>> {
  const all = await redis.dump(db);
  return Object.fromEntries(
    Object.entries(all).filter(([k]) =>
      k !== `LOOPBACK_INTERFACE|${LOOPBACK}` && !k.startsWith(`LOOPBACK_INTERFACE|${LOOPBACK}|`)
    ),
  );
}

async function ours(redis: TestRedis): Promise<string[]> {
  return Object.keys(await redis.dump(4)).filter((k) =>
    k === `LOOPBACK_INTERFACE|${LOOPBACK}` || k.startsWith(`LOOPBACK_INTERFACE|${LOOPBACK}|`)
  ).sort();
}

Deno.test("SonicStore writes the dedicated loopback's entries as SONiC does, reads them back, and touches nothing else", async () => {
  await using redis = await sonicRedis();
  const before = await redis.dump(4);
  assert.deepEqual(before, SONIC_CONFIG_DB);
  const appl = await redis.dump(0);
  const s = store(redis);
  try {
    assert.deepEqual(await s.read(), []);
    await s.apply({ add: ["10.0.100.30", "2001:db8:100::30"], remove: [] });
    const after = await redis.dump(4);
    assert.deepEqual(after[`LOOPBACK_INTERFACE|${LOOPBACK}`], { NULL: "NULL" });
    assert.deepEqual(after[`LOOPBACK_INTERFACE|${LOOPBACK}|10.0.100.30/32`], { NULL: "NULL" });
    assert.deepEqual(after[`LOOPBACK_INTERFACE|${LOOPBACK}|2001:db8:100::30/128`], {
      NULL: "NULL",
    });
    const read = await s.read();
    assert.deepEqual(read.sort((a, b) => a.family - b.family), [
      { family: 4, local: "10.0.100.30", prefixlen: 32 },
      { family: 6, local: "2001:db8:100::30", prefixlen: 128 },
    ]);
    await s.apply({ add: ["10.0.100.31"], remove: ["10.0.100.30", "2001:db8:100::30"] });
    assert.deepEqual(await ours(redis), [
      `LOOPBACK_INTERFACE|${LOOPBACK}`,
      `LOOPBACK_INTERFACE|${LOOPBACK}|10.0.100.31/32`,
    ]);
    await s.apply({ add: [], remove: ["10.0.100.31"] });
    // The interface entry stays: deleting it would take the netdev (and any setting on it) away.
    assert.deepEqual(await ours(redis), [`LOOPBACK_INTERFACE|${LOOPBACK}`]);
    assert.deepEqual(await foreign(redis), before);
    assert.deepEqual(await redis.dump(0), appl, "APPL_DB (index 0) is never written");
    assert.ok(before["LOOPBACK_INTERFACE|Loopback10|10.0.100.99/32"], "the decoy is there");
  } finally {
    s.close();
  }
});

Deno.test("an entry written by hand in another form (upper-case IPv6) reads back canonical and is removed under its own key", async () => {
  await using redis = await sonicRedis();
  const c = redis.client(4);
  const key = `LOOPBACK_INTERFACE|${LOOPBACK}|2001:DB8:100:0::30/128`;
  await c.command(["HSET", key, "NULL", "NULL"]);
  const s = store(redis);
  try {
    assert.deepEqual(await s.read(), [{ family: 6, local: "2001:db8:100::30", prefixlen: 128 }]);
    await s.apply({ add: [], remove: ["2001:db8:100::30"] });
    assert.equal(await c.command(["EXISTS", key]), 0);
  } finally {
    s.close();
  }
});

Deno.test("an interface entry that exists with settings is left as it is", async () => {
  await using redis = await sonicRedis();
  const c = redis.client(4);
  await c.command(["HSET", `LOOPBACK_INTERFACE|${LOOPBACK}`, "vrf_name", "Vrf_k8s"]);
  const s = store(redis);
  try {
    await s.apply({ add: ["10.0.100.30"], remove: [] });
    assert.deepEqual((await redis.dump(4))[`LOOPBACK_INTERFACE|${LOOPBACK}`], {
      vrf_name: "Vrf_k8s",
    });
  } finally {
    s.close();
  }
});

Deno.test("10,000 addresses go in and out in one transaction each, in seconds", async () => {
  await using redis = await sonicRedis();
  const s = store(redis);
  try {
    const many = Array.from({ length: 10_000 }, (_, i) => `2001:db8:100::${i.toString(16)}`);
    const t0 = performance.now();
    await s.apply({ add: many, remove: [] });
    const added = performance.now() - t0;
    assert.equal((await s.read()).length, 10_000);
    const t1 = performance.now();
    await s.apply({ add: [], remove: many });
    const removed = performance.now() - t1;
    assert.deepEqual(await ours(redis), [`LOOPBACK_INTERFACE|${LOOPBACK}`]);
    assert.equal(await redis.calls("exec"), 2);
    // Generous for a loaded 2-core CI machine; the note has the measured numbers.
    assert.ok(added < 10_000 && removed < 10_000, `add ${added}ms, remove ${removed}ms`);
  } finally {
    s.close();
  }
});

Deno.test("through the reconciler's interface side: drift is repaired at a re-read, a restart changes nothing, a drain empties the loopback", async () => {
  await using redis = await sonicRedis();
  const before = await foreign(redis);
  const c = redis.client(4);
  // Left by hand: a host address inside a managed network (kube-gw's to remove),
  // one outside them (not kube-gw's: stays), and a subnet (a conflict kube-gw refuses).
  await c.command(["HSET", `LOOPBACK_INTERFACE|${LOOPBACK}|10.0.100.77/32`, "NULL", "NULL"]);
  await c.command(["HSET", `LOOPBACK_INTERFACE|${LOOPBACK}|192.0.2.1/32`, "NULL", "NULL"]);
  const desired = new Set(["10.0.100.30", "10.0.100.31", "2001:db8:100::30"]);
  const s1 = store(redis);
  const sync1 = new InterfaceSync({
    store: s1,
    networks: NETWORKS,
    observer: quietObserver,
    clock: systemClock,
  });
  try {
    assert.deepEqual(await sync1.sync(() => desired), {
      add: ["10.0.100.30", "10.0.100.31", "2001:db8:100::30"],
      remove: ["10.0.100.77"],
    });
    // Drift: an entry removed by hand comes back at the next re-read (the resync).
    await c.command(["DEL", `LOOPBACK_INTERFACE|${LOOPBACK}|10.0.100.31/32`]);
    sync1.reread();
    assert.deepEqual(await sync1.sync(() => desired), { add: ["10.0.100.31"], remove: [] });
  } finally {
    s1.close();
  }
  // A restart: the new agent reads what is there and writes nothing.
  const writes = await redis.calls("hset") + await redis.calls("del") + await redis.calls("exec");
  const held = await redis.dump(4);
  const s2 = store(redis);
  const sync2 = new InterfaceSync({
    store: s2,
    networks: NETWORKS,
    observer: quietObserver,
    clock: systemClock,
  });
  try {
    assert.deepEqual([...await sync2.readManaged()].sort(), [...desired].sort());
    assert.deepEqual(await sync2.sync(() => desired), { add: [], remove: [] });
    assert.equal(
      await redis.calls("hset") + await redis.calls("del") + await redis.calls("exec"),
      writes,
    );
    assert.deepEqual(await redis.dump(4), held);
    // A drain removes every managed entry; the foreign /32 outside the networks stays.
    const drained = await sync2.drain();
    assert.deepEqual([...drained.remove].sort(), [...desired].sort());
    assert.deepEqual(await ours(redis), [
      `LOOPBACK_INTERFACE|${LOOPBACK}`,
      `LOOPBACK_INTERFACE|${LOOPBACK}|192.0.2.1/32`,
    ]);
    // A subnet overlapping a managed network is a conflict, as on lo.
    await c.command(["HSET", `LOOPBACK_INTERFACE|${LOOPBACK}|10.0.100.0/25`, "NULL", "NULL"]);
    await assert.rejects(sync2.readManaged(), /overlaps a managed network/);
  } finally {
    s2.close();
  }
  assert.deepEqual(await foreign(redis), before);
});

Deno.test("a stopped request rejects with InterruptedError; Redis gone is a typed error with its cause", async () => {
  const redis = await sonicRedis();
  const s = store(redis);
  try {
    const stop = new AbortController();
    stop.abort(new Error("stopped by signal"));
    await assert.rejects(s.read(stop.signal), InterruptedError);
  } finally {
    await redis[Symbol.asyncDispose]();
  }
  const err = await s.read().catch((e) => e);
  assert.ok(err instanceof RedisError, String(err));
  assert.equal(err.kind, "connect");
  assert.ok(err.cause instanceof Error);
  s.close();
});

Deno.test("an agent killed mid-batch leaves all of its transaction or none of it", async () => {
  await using redis = await sonicRedis();
  const before = await redis.dump(4);
  const script = new URL("../support/procs/sonic_batch.ts", import.meta.url).pathname;
  for (let round = 0; round < 4; round++) {
    const child = new Deno.Command("deno", {
      args: [
        "run",
        "--quiet",
        `--allow-read=${redis.socket}`,
        `--allow-write=${redis.socket}`,
        `--allow-net`,
        script,
        redis.socket,
        LOOPBACK,
        String(round),
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    // Killed once Redis has taken its MULTI: the transaction is cut somewhere in its commands.
    const multis = await redis.calls("multi");
    const reader = child.stdout.getReader();
    const { value } = await reader.read();
    assert.match(new TextDecoder().decode(value), /writing/);
    await waitFor(
      "the MULTI to reach Redis",
      async () => await redis.calls("multi") > multis,
      10_000,
      1,
    );
    child.kill("SIGKILL");
    reader.releaseLock();
    await child.stdout.cancel();
    await child.status;
    const n = (await ours(redis)).filter((k) => k.endsWith(`/128`)).length;
    assert.ok(n === 0 || n === 50_000, `round ${round}: ${n} entries, a partial batch`);
    await redis.client(4).command(["FLUSHDB"]);
    await seedSonicConfigDb(redis, 4);
  }
  assert.deepEqual(await redis.dump(4), before);
});
