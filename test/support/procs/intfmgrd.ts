/**
 * A stand-in for SONiC's intfmgrd, for tests: mirrors one loopback's
 * CONFIG_DB entries (`LOOPBACK_INTERFACE|LoopbackN` and its addresses) into a
 * netdev of that name in a test namespace, as intfmgrd does on a switch: the
 * interface entry makes the netdev (one end of a veth pair here), each address
 * entry an address on it. Polls CONFIG_DB; stops when disposed. A failed pass
 * is kept as `error` and the next pass tries again.
 *
 * @module
 */

import { RedisClient } from "../../../lib/kernel/redis.ts";
import { interfaceKey, parseAddressKey } from "../../../lib/kernel/sonic_keys.ts";

/** Where the netdev is made: `ip -n NS ...` of one namespace (a Netns, or a fabric's node). */
export interface NamespaceIp {
  ip(...args: string[]): Promise<string>;
}

/** A running stand-in; dispose to stop it (the netdev stays with the namespace). */
export interface IntfmgrdStandIn extends AsyncDisposable {
  /** How many changes it has mirrored into the namespace. */
  readonly mirrored: number;
  /** The last pass's failure, if the last pass failed. */
  readonly error: unknown;
}

/** Starts mirroring `loopback`'s entries from CONFIG_DB (`db`) on `socket` into `ns`. */
export function startIntfmgrd(
  options: {
    socket: string;
    loopback: string;
    ns: NamespaceIp;
    db?: number;
    intervalMs?: number;
  },
): IntfmgrdStandIn {
  const { socket, loopback, ns } = options;
  const redis = new RedisClient({ path: socket, db: options.db ?? 4, timeoutMs: 5000 });
  let stopped = false;
  let mirrored = 0;
  let linkMade = false;
  let error: unknown;
  const pass = async () => {
    const exists = await redis.command(["EXISTS", interfaceKey(loopback)]);
    if (exists === 0) return;
    if (!linkMade) {
      // A veth pair: not every test kernel has the dummy driver.
      await ns.ip("link", "add", loopback, "type", "veth", "peer", "name", `${loopback}p`);
      await ns.ip("link", "set", `${loopback}p`, "up");
      await ns.ip("link", "set", loopback, "up");
      linkMade = true;
    }
    const keys = (await redis.command(["KEYS", `${interfaceKey(loopback)}|*`])) as string[];
    const want = new Set(
      keys.map((k) => parseAddressKey(loopback, k)).filter((a) => a !== undefined)
        .map((a) => `${a.local}/${a.prefixlen}`),
    );
    const links = JSON.parse(await ns.ip("-json", "address", "show", "dev", loopback)) as {
      addr_info?: { local: string; prefixlen: number; scope: string }[];
    }[];
    const have = new Set(
      links.flatMap((l) => l.addr_info ?? []).filter((a) => a.scope !== "link")
        .map((a) => `${a.local}/${a.prefixlen}`),
    );
    for (const a of want) {
      if (!have.has(a)) {
        await ns.ip("address", "add", a, "dev", loopback);
        mirrored++;
      }
    }
    for (const a of have) {
      if (!want.has(a)) {
        await ns.ip("address", "del", a, "dev", loopback);
        mirrored++;
      }
    }
  };
  const loop = (async () => {
    while (!stopped) {
      await pass().then(() => error = undefined, (err) => error = err);
      await new Promise((r) => setTimeout(r, options.intervalMs ?? 20));
    }
  })();
  return {
    get mirrored() {
      return mirrored;
    },
    get error() {
      return error;
    },
    async [Symbol.asyncDispose]() {
      stopped = true;
      await loop.catch(() => {});
      redis.close();
    },
  };
}
