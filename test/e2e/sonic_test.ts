import assert from "node:assert/strict";
import { DEMO_SERVICE, FakeApiServer } from "../support/fakes/apiserver.ts";
import { demoSlice } from "../support/fakes/endpoint_slices.ts";
import { BUNDLE, bundleCommand, LoggedProcess, writeKubeconfig } from "../support/procs/agent.ts";
import { seedSonicConfigDb, startRedis, type TestRedis } from "../support/procs/redis.ts";
import { waitFor } from "../support/wait.ts";
import { Netns } from "../support/procs/netns.ts";
import { startIntfmgrd } from "../support/procs/intfmgrd.ts";

const LOOPBACK = "Loopback1000";
const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * The shipped command with the one grant a test socket needs besides the
 * shipped ones: Deno names a unix socket by its path (docs/sonic.md, Permissions).
 */
function agentCommand(socket: string, args: readonly string[]): string[] {
  const shipped = bundleCommand(BUNDLE);
  const at = shipped.indexOf(BUNDLE);
  return [
    ...shipped.slice(0, at),
    `--allow-read=${socket}`,
    `--allow-write=${socket}`,
    ...shipped.slice(at),
    ...args,
  ];
}

async function ours(redis: TestRedis): Promise<string[]> {
  return Object.keys(await redis.dump(4)).filter((k) =>
    k === `LOOPBACK_INTERFACE|${LOOPBACK}` || k.startsWith(`LOOPBACK_INTERFACE|${LOOPBACK}|`)
  ).sort();
}

Deno.test("kube-gw run --install-as sonic holds the demo Service's addresses in CONFIG_DB, withdraws them, restarts without a write, drains; nothing else changes", async () => {
  await using redis = await startRedis();
  await seedSonicConfigDb(redis, 4);
  const foreign = await redis.dump(4);
  const api = await FakeApiServer.start();
  try {
    await using kc = await writeKubeconfig(api, {});
    api.createObject("endpointslices", demoSlice());
    api.create(DEMO_SERVICE);
    const args = (command: string) => [
      command,
      "--network=10.0.100.0/24",
      `--kubeconfig=${kc.path}`,
      "--kube-proxy-health=off",
      "--metrics-address=off",
      "--install-as=sonic",
      `--sonic-redis-socket=${redis.socket}`,
    ];
    const held = [
      `LOOPBACK_INTERFACE|${LOOPBACK}`,
      `LOOPBACK_INTERFACE|${LOOPBACK}|10.0.100.30/32`,
      `LOOPBACK_INTERFACE|${LOOPBACK}|10.0.100.31/32`,
    ];
    {
      await using agent = new LoggedProcess(agentCommand(redis.socket, args("run")), {});
      await agent.waitForLine(/assuming address 10\.0\.100\.31/);
      assert.deepEqual(await ours(redis), held);
      api.delete(DEMO_SERVICE.name);
      await agent.waitForLine(/forfeiting address 10\.0\.100\.31/);
      await waitFor("both entries to go", async () => (await ours(redis)).length === 1);
      api.create(DEMO_SERVICE);
      await agent.waitForLine(/assuming address 10\.0\.100\.30/);
      await waitFor("both entries back", async () => (await ours(redis)).length === 3);
      assert.equal((await agent.stop("SIGTERM")).code, 0);
    }
    // A restart finds the entries and writes nothing.
    const execs = await redis.calls("exec");
    {
      await using agent = new LoggedProcess(agentCommand(redis.socket, args("run")), {});
      await agent.waitForLine(/first list complete/);
      await agent.waitForLine(/found 2 managed addresses/);
      assert.equal((await agent.stop("SIGTERM")).code, 0);
      assert.ok(!agent.lines.some((l) => /assuming|forfeiting/.test(l)), agent.lines.join("\n"));
    }
    assert.equal(await redis.calls("exec"), execs);
    assert.deepEqual(await ours(redis), held);
    // drain: every managed entry goes; the loopback itself stays.
    const drained = new LoggedProcess(
      agentCommand(redis.socket, args("drain").filter((a) => !/kubeconfig|health|metrics/.test(a))),
      {},
    );
    assert.equal((await drained.status).code, 0, drained.lines.join("\n"));
    assert.deepEqual(await ours(redis), [`LOOPBACK_INTERFACE|${LOOPBACK}`]);
    const after = await redis.dump(4);
    delete after[`LOOPBACK_INTERFACE|${LOOPBACK}`];
    assert.deepEqual(after, foreign);
  } finally {
    await api.close();
  }
});

Deno.test("with the shipped permissions only, a socket elsewhere is refused with a hint, not a crash", async () => {
  await using redis = await startRedis();
  const shipped = [...bundleCommand(BUNDLE), "drain", "--network=10.0.100.0/24"];
  const out = await new Deno.Command(shipped[0], {
    args: [...shipped.slice(1), "--install-as=sonic", `--sonic-redis-socket=${redis.socket}`],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env: { PATH },
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 1, stderr);
  assert.match(stderr, /cannot connect to Redis at .*docs\/sonic\.md/);
});

Deno.test("through a stand-in for intfmgrd, the SONiC store's entries become addresses of Loopback1000 that come and go with the Service", async () => {
  await using redis = await startRedis();
  await seedSonicConfigDb(redis, 4);
  await using ns = await Netns.create("sonic");
  await using intfmgrd = startIntfmgrd({ socket: redis.socket, loopback: LOOPBACK, ns });
  const api = await FakeApiServer.start();
  try {
    await using kc = await writeKubeconfig(api, {});
    api.createObject("endpointslices", demoSlice());
    api.create(DEMO_SERVICE);
    await using agent = new LoggedProcess(
      agentCommand(redis.socket, [
        "run",
        "--network=10.0.100.0/24",
        `--kubeconfig=${kc.path}`,
        "--kube-proxy-health=off",
        "--metrics-address=off",
        "--install-as=sonic",
        `--sonic-redis-socket=${redis.socket}`,
      ]),
      {},
    );
    await agent.waitForLine(/assuming address 10\.0\.100\.31/);
    // Empty until the stand-in has made the netdev.
    const held = () => ns.hostAddresses(LOOPBACK).catch(() => [] as string[]);
    await waitFor(
      "the addresses on Loopback1000",
      async () => (await held()).length === 2,
    ).catch((err) => {
      throw new Error(`${err.message}; the stand-in's last error: ${intfmgrd.error}`);
    });
    assert.deepEqual(await held(), ["10.0.100.30", "10.0.100.31"]);
    api.delete(DEMO_SERVICE.name);
    await waitFor("the addresses to leave Loopback1000", async () => (await held()).length === 0);
    // The router's own loopback entries are untouched.
    assert.equal((await redis.dump(4))["LOOPBACK_INTERFACE|Loopback0|10.1.0.1/32"]?.NULL, "NULL");
  } finally {
    await api.close();
  }
});
