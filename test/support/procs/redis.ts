/**
 * A throwaway Redis for tests: Debian's `redis-server` on a unix socket in a
 * temporary directory (no TCP port, nothing saved), stopped by its pid and
 * removed when disposed, even when the test fails. Also a CONFIG_DB laid out
 * as a SONiC switch's, with the entries kube-gw must never touch.
 *
 * @module
 */

import { RedisClient } from "../../../lib/kernel/redis.ts";
import { waitFor } from "../wait.ts";

/** A running redis-server. */
export interface TestRedis extends AsyncDisposable {
  /** Its unix socket. */
  readonly socket: string;
  readonly pid: number;
  /** A client on database `db` (closed when the server is disposed). */
  client(db?: number): RedisClient;
  /** Every key of database `db` with its hash, sorted: what "unchanged" compares. */
  dump(db?: number): Promise<Record<string, Record<string, string>>>;
  /** How many times Redis ran `command` (lower case) since it started. */
  calls(command: string): Promise<number>;
}

/**
 * The one socket path tests use: Deno's net permission names a unix socket by
 * its exact path (the `test` set in deno.json lists it), so it cannot be in a
 * fresh temporary directory. Tests run one at a time within a group.
 */
export const TEST_REDIS_DIR = "/tmp/kube-gw-test-redis";

/** Options for {@linkcode startRedis}. */
export interface TestRedisOptions {
  /** The socket's file mode: `777` lets a sandboxed agent (nobody) connect. @default "700" */
  readonly socketPerm?: string;
}

/** Starts redis-server on the test socket; a leftover of a killed run is removed first. */
export async function startRedis(options: TestRedisOptions = {}): Promise<TestRedis> {
  const dir = TEST_REDIS_DIR;
  const socket = `${dir}/redis.sock`;
  await claimDir(dir, socket);
  const child = new Deno.Command("redis-server", {
    args: [
      "--port",
      "0",
      "--unixsocket",
      socket,
      "--unixsocketperm",
      options.socketPerm ?? "700",
      "--dir",
      dir,
      "--save",
      "",
      "--appendonly",
      "no",
      "--daemonize",
      "no",
      // SONiC's databases are numbered up to 15 (CONFIG_DB is 4).
      "--databases",
      "16",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const clients: RedisClient[] = [];
  const client = (db = 0) => {
    const c = new RedisClient({ path: socket, db, timeoutMs: 10_000 });
    clients.push(c);
    return c;
  };
  const stop = async () => {
    for (const c of clients) c.close();
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await child.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    const probe = client();
    await waitFor("redis-server to answer", async () => {
      try {
        return (await probe.command(["PING"])) === "PONG";
      } catch {
        return false;
      }
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    socket,
    pid: child.pid,
    client,
    async dump(db = 4) {
      const c = client(db);
      const keys = (await c.command(["KEYS", "*"])) as string[];
      const out: Record<string, Record<string, string>> = {};
      for (const key of keys.sort()) {
        const flat = (await c.command(["HGETALL", key])) as string[];
        const hash: Record<string, string> = {};
        for (let i = 0; i < flat.length; i += 2) hash[flat[i]] = flat[i + 1];
        out[key] = hash;
      }
      c.close();
      return out;
    },
    async calls(command) {
      const info = (await client().command(["INFO", "commandstats"])) as string;
      const m = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, "m").exec(info);
      return m ? Number(m[1]) : 0;
    },
    [Symbol.asyncDispose]: stop,
  };
}

/** Creates `dir`; refuses while a Redis answers on its socket, else removes what a killed run left. */
async function claimDir(dir: string, socket: string): Promise<void> {
  try {
    await Deno.mkdir(dir);
    return;
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
  }
  const probe = new RedisClient({ path: socket, timeoutMs: 2000 });
  const alive = await probe.command(["PING"]).then(() => true, () => false);
  probe.close();
  if (alive) throw new Error(`${socket}: another test's redis-server is running`);
  await Deno.remove(dir, { recursive: true });
  await Deno.mkdir(dir);
}

/**
 * A switch's CONFIG_DB, as SONiC lays it out (keys and fields of its YANG
 * models): the router's own loopback and its addresses, a routed port, a BGP
 * neighbour, another loopback holding an address inside a managed network, and
 * a table kube-gw has no business with. kube-gw must never change any of it.
 */
export const SONIC_CONFIG_DB: Readonly<Record<string, Record<string, string>>> = {
  "DEVICE_METADATA|localhost": {
    hostname: "leaf1",
    hwsku: "Force10-S6000",
    platform: "x86_64-dell_s6000_s1220-r0",
    mac: "52:54:00:12:34:56",
    bgp_asn: "65100",
    type: "LeafRouter",
    docker_routing_config_mode: "separated",
  },
  "LOOPBACK_INTERFACE|Loopback0": { NULL: "NULL" },
  "LOOPBACK_INTERFACE|Loopback0|10.1.0.1/32": { NULL: "NULL" },
  "LOOPBACK_INTERFACE|Loopback0|fc00:1::32/128": { NULL: "NULL" },
  // Someone else's loopback, with an address inside kube-gw's managed network.
  "LOOPBACK_INTERFACE|Loopback10": { NULL: "NULL" },
  "LOOPBACK_INTERFACE|Loopback10|10.0.100.99/32": { NULL: "NULL" },
  // A name that only a glob would confuse with kube-gw's loopback.
  "LOOPBACK_INTERFACE|Loopback10000|10.0.100.98/32": { NULL: "NULL" },
  "PORT|Ethernet0": {
    admin_status: "up",
    alias: "fortyGigE0/0",
    lanes: "29,30,31,32",
    mtu: "9100",
    speed: "40000",
  },
  "INTERFACE|Ethernet0": { NULL: "NULL" },
  "INTERFACE|Ethernet0|10.0.0.0/31": { NULL: "NULL" },
  "BGP_NEIGHBOR|10.0.0.1": {
    asn: "65200",
    holdtime: "180",
    keepalive: "60",
    local_addr: "10.0.0.0",
    name: "spine1",
    nhopself: "0",
    rrclient: "0",
  },
  "COPP_GROUP|queue4_group3": { cir: "6000", cbs: "6000", meter_type: "packets", mode: "sr_tcm" },
  "FEATURE|bgp": { state: "enabled", auto_restart: "enabled" },
};

/** Writes {@linkcode SONIC_CONFIG_DB} into database `db` (CONFIG_DB is 4). */
export async function seedSonicConfigDb(redis: TestRedis, db = 4): Promise<void> {
  const c = redis.client(db);
  await c.pipeline(
    Object.entries(SONIC_CONFIG_DB).map(([key, hash]) => [
      "HSET",
      key,
      ...Object.entries(hash).flat(),
    ]),
  );
  c.close();
}
