/**
 * The SONiC adapter: holds each address as an entry of one dedicated SONiC
 * loopback interface in CONFIG_DB (`LOOPBACK_INTERFACE|Loopback1000|A/32`),
 * through SONiC's Redis. intfmgrd then puts the address on the netdev and
 * IntfsOrch gives it a CPU ("ip2me") route in the ASIC, which an address on
 * `lo` never gets. Only that interface's entries are ever read (SCAN with the
 * exact prefix) or written; a plan is one MULTI/EXEC, so Redis applies all of
 * it or nothing.
 *
 * @module
 */

import {
  type AddressStore,
  type InterfaceAddress,
  InterruptedError,
  type Plan,
} from "./address_store.ts";
import { RedisClient, RedisError } from "./redis.ts";
import type { RespLimits } from "./resp.ts";
import {
  addressKey,
  addressPattern,
  CONFIG_DB,
  DEFAULT_SONIC_SOCKET,
  interfaceKey,
  NULL_FIELD,
  parseAddressKey,
} from "./sonic_keys.ts";

/** Options for {@linkcode SonicStore}. */
export interface SonicStoreOptions {
  /** The dedicated loopback, e.g. `Loopback1000`; nothing else is touched. */
  readonly loopback: string;
  /** SONiC's Redis socket. @default "/var/run/redis/redis.sock" */
  readonly socketPath?: string;
  /** CONFIG_DB's index. @default 4 */
  readonly db?: number;
  /** A request with no reply after this long fails. @default 30000 */
  readonly timeoutMs?: number;
  /** Bounds on Redis replies. */
  readonly limits?: RespLimits;
}

/** How many keys one SCAN call looks at. */
const SCAN_COUNT = "1000";

/** {@linkcode AddressStore} on SONiC's CONFIG_DB. */
export class SonicStore implements AddressStore {
  readonly #loopback: string;
  readonly #redis: RedisClient;
  /** The key each address was read under, for removing entries written in another form. */
  #keys = new Map<string, string>();

  constructor(options: SonicStoreOptions) {
    this.#loopback = options.loopback;
    this.#redis = new RedisClient({
      path: options.socketPath ?? DEFAULT_SONIC_SOCKET,
      db: options.db ?? CONFIG_DB,
      timeoutMs: options.timeoutMs,
      limits: options.limits,
    });
  }

  /** How many Redis requests are under way. */
  get running(): number {
    return this.#redis.running;
  }

  /** Resolves once no Redis request is under way. */
  idle(): Promise<void> {
    return this.#redis.idle();
  }

  /** Closes the connection to Redis. */
  close(): void {
    this.#redis.close();
  }

  /** Every address entry of the dedicated loopback, host addresses or not. */
  async read(signal?: AbortSignal): Promise<InterfaceAddress[]> {
    const pattern = addressPattern(this.#loopback);
    /** Address text and prefix length to the key it was read under. */
    const keys = new Map<string, string>();
    const out: InterfaceAddress[] = [];
    let cursor = "0";
    do {
      const reply = await this.#call(
        () => this.#redis.command(["SCAN", cursor, "MATCH", pattern, "COUNT", SCAN_COUNT], signal),
      );
      if (!Array.isArray(reply) || typeof reply[0] !== "string" || !Array.isArray(reply[1])) {
        throw new RedisError("protocol", `SCAN: unexpected reply ${JSON.stringify(reply)}`);
      }
      cursor = reply[0];
      for (const key of reply[1]) {
        if (typeof key !== "string") continue;
        const addr = parseAddressKey(this.#loopback, key);
        const id = addr && `${addr.local}/${addr.prefixlen}`;
        // SCAN may return a key twice: an address is counted once.
        if (!addr || !id || keys.has(id)) continue;
        keys.set(id, key);
        out.push(addr);
      }
    } while (cursor !== "0");
    this.#keys = new Map();
    for (const a of out) {
      if (a.prefixlen === (a.family === 4 ? 32 : 128)) {
        this.#keys.set(a.local, keys.get(`${a.local}/${a.prefixlen}`)!);
      }
    }
    return out;
  }

  /**
   * Writes the adds, then the removals, in one MULTI/EXEC; the interface's own
   * entry is created first when it is missing (and never deleted).
   */
  async apply(plan: Plan, signal?: AbortSignal): Promise<void> {
    if (plan.add.length === 0 && plan.remove.length === 0) return;
    const commands: string[][] = [];
    if (plan.add.length > 0) {
      const iface = interfaceKey(this.#loopback);
      const exists = await this.#call(() => this.#redis.command(["EXISTS", iface], signal));
      if (exists === 0) commands.push(["HSET", iface, ...NULL_FIELD]);
    }
    for (const a of plan.add) commands.push(["HSET", addressKey(this.#loopback, a), ...NULL_FIELD]);
    for (const r of plan.remove) {
      commands.push(["DEL", this.#keys.get(r) ?? addressKey(this.#loopback, r)]);
    }
    const replies = await this.#call(() => this.#redis.transaction(commands, signal));
    const failed = replies.findIndex((r) => typeof r !== "number");
    if (failed >= 0) {
      throw new RedisError(
        "reply",
        `${commands[failed].slice(0, 2).join(" ")}: ${JSON.stringify(replies[failed])}`,
      );
    }
    for (const a of plan.add) this.#keys.set(a, addressKey(this.#loopback, a));
    for (const r of plan.remove) this.#keys.delete(r);
  }

  async #call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof RedisError && err.kind === "aborted") {
        throw new InterruptedError(
          `${err.message} (CONFIG_DB holds all of the batch or none of it)`,
          "SIGTERM",
          {
            cause: err,
          },
        );
      }
      throw err;
    }
  }
}
