import assert from "node:assert/strict";
import { parseArgs } from "../../../lib/cli.ts";
import { parseConfig } from "../../../lib/agent/config.ts";
import { UsageError } from "../../../lib/base/flags.ts";

const N = "--network=10.0.100.0/24";

function config(argv: string[], env: Record<string, string> = {}) {
  const inv = parseArgs(argv, (n) => env[n], () => {});
  assert.ok(inv && inv.command !== "version");
  return parseConfig(inv.options);
}

function refused(argv: string[], env: Record<string, string> = {}): string {
  try {
    config(argv, env);
  } catch (err) {
    assert.ok(err instanceof UsageError, String(err));
    return err.message;
  }
  throw new Error(`${argv.join(" ")} was accepted`);
}

Deno.test("addresses are held on the interface unless --install-as sonic; no SONiC settings then", () => {
  const c = config([N]);
  assert.equal(c.installAs, "address");
  assert.equal(c.sonic, undefined);
});

Deno.test("--install-as sonic defaults to Loopback1000 in CONFIG_DB (4) on SONiC's socket, for every agent command", () => {
  for (const command of ["run", "once", "plan", "drain"]) {
    const c = config([command, N, "--install-as", "sonic"]);
    assert.equal(c.installAs, "sonic");
    assert.deepEqual(c.sonic, {
      loopback: "Loopback1000",
      socket: "/var/run/redis/redis.sock",
      db: 4,
    });
  }
});

Deno.test("the SONiC settings come from the flags or their environment variables", () => {
  const c = config([N, "--sonic-loopback=Loopback7"], {
    KUBEGW_INSTALL_AS: "sonic",
    KUBEGW_SONIC_LOOPBACK: "Loopback9",
    KUBEGW_SONIC_REDIS_SOCKET: "/var/run/redis0/redis.sock",
    KUBEGW_SONIC_DB: "14",
  });
  assert.deepEqual(c.sonic, {
    loopback: "Loopback7",
    socket: "/var/run/redis0/redis.sock",
    db: 14,
  });
});

Deno.test("bad SONiC settings and flags the SONiC store cannot honour are refused, naming their source", () => {
  assert.match(
    refused([N, "--install-as=route53"]),
    /--install-as: "route53" is not address, route or sonic/,
  );
  assert.match(refused([N], { KUBEGW_INSTALL_AS: "x" }), /KUBEGW_INSTALL_AS/);
  const sonic = [N, "--install-as=sonic"];
  assert.match(refused([...sonic, "--sonic-loopback=lo"]), /--sonic-loopback: "lo"/);
  assert.match(refused([...sonic, "--sonic-loopback=Loopback0"]), /not the router's Loopback0/);
  assert.match(refused([...sonic, "--sonic-loopback=Loopback*"]), /--sonic-loopback/);
  assert.match(refused([...sonic, "--sonic-redis-socket=redis.sock"]), /--sonic-redis-socket/);
  assert.match(refused([...sonic, "--sonic-db=16"]), /--sonic-db: "16"/);
  assert.match(
    refused([...sonic, "--address-lifetime=60s"]),
    /--address-lifetime: CONFIG_DB entries have no lifetime/,
  );
  assert.match(refused([...sonic, "--netns=asic0"]), /--netns: .*--sonic-redis-socket/);
});
