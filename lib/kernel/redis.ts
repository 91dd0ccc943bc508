/**
 * A small Redis client: RESP2 (`resp.ts`) over a unix socket, one connection,
 * one request at a time. A request is one command, a pipeline (every command
 * written at once, every reply read back) or a transaction (the pipeline
 * inside MULTI/EXEC: Redis applies all of it or, if the connection drops
 * before EXEC, none of it). After any failure the connection is closed; the
 * next request opens a new one.
 *
 * @module
 */

import {
  encodeCommand,
  encodeCommands,
  RespDecoder,
  RespErrorReply,
  type RespLimits,
  RespProtocolError,
  type RespValue,
} from "./resp.ts";

/** What went wrong with Redis, for operators. */
export type RedisErrorKind =
  /** The socket cannot be opened (no Redis, no permission). */
  | "connect"
  /** Redis closed the connection, or writing to it failed. */
  | "closed"
  /** The reply is not RESP2, or too large. */
  | "protocol"
  /** Redis answered with an error (`-ERR ...`). */
  | "reply"
  /** No reply within the timeout. */
  | "timeout"
  /** The caller's signal aborted the request. */
  | "aborted";

/** A failed Redis request, with the socket and the command it was for. */
export class RedisError extends Error {
  constructor(
    readonly kind: RedisErrorKind,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "RedisError";
  }
}

/** Options for {@linkcode RedisClient}. */
export interface RedisClientOptions {
  /** The unix socket, e.g. `/var/run/redis/redis.sock`. */
  readonly path: string;
  /** The database index selected on every connection. @default 0 */
  readonly db?: number;
  /** A request with no complete reply after this long fails. @default 30000 */
  readonly timeoutMs?: number;
  /** Bounds on replies. @default RespDecoder's */
  readonly limits?: RespLimits;
}

const READ_CHUNK = 64 * 1024;

/** A Redis connection on a unix socket; requests run one at a time. */
export class RedisClient {
  readonly #o: RedisClientOptions;
  #conn: Deno.UnixConn | undefined;
  #decoder: RespDecoder | undefined;
  /** One read buffer for the connection's life: a batch of 10,000 replies reads into it. */
  readonly #chunk = new Uint8Array(READ_CHUNK);
  #queue: Promise<unknown> = Promise.resolve();
  #running = 0;
  readonly #idle: (() => void)[] = [];

  constructor(options: RedisClientOptions) {
    this.#o = options;
  }

  /** How many requests are under way (queued or running). */
  get running(): number {
    return this.#running;
  }

  /** Resolves once no request is under way. */
  idle(): Promise<void> {
    if (this.#running === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Sends one command; an error reply rejects with a `reply` {@linkcode RedisError}. */
  async command(args: readonly string[], signal?: AbortSignal): Promise<RespValue> {
    const [reply] = await this.#request([args], signal);
    if (reply instanceof RespErrorReply) throw replyError(args, reply);
    return reply;
  }

  /**
   * Sends every command in one write and returns every reply, error replies
   * included as {@linkcode RespErrorReply} values (each command stands alone).
   */
  pipeline(commands: readonly (readonly string[])[], signal?: AbortSignal): Promise<RespValue[]> {
    return this.#request(commands, signal);
  }

  /**
   * Runs `commands` as one MULTI/EXEC transaction and returns EXEC's replies.
   * A command Redis refuses while queueing aborts the whole transaction.
   *
   * @throws {RedisError} `reply` when the transaction was refused or aborted
   */
  async transaction(
    commands: readonly (readonly string[])[],
    signal?: AbortSignal,
  ): Promise<RespValue[]> {
    const replies = await this.#request([["MULTI"], ...commands, ["EXEC"]], signal);
    const exec = replies[replies.length - 1];
    if (exec instanceof RespErrorReply) {
      const queued = replies.slice(1, -1).find((r) => r instanceof RespErrorReply);
      throw replyError(["EXEC"], queued instanceof RespErrorReply ? queued : exec);
    }
    if (!Array.isArray(exec)) {
      throw new RedisError("reply", "EXEC: the transaction was aborted (nil reply)");
    }
    return exec;
  }

  /** Closes the connection; a request under way fails with `closed`. */
  close(): void {
    const conn = this.#conn;
    this.#conn = undefined;
    this.#decoder = undefined;
    try {
      conn?.close();
    } catch {
      // Already closed.
    }
  }

  #request(commands: readonly (readonly string[])[], signal?: AbortSignal): Promise<RespValue[]> {
    this.#running++;
    const run = this.#queue.then(() => this.#exchange(commands, signal));
    this.#queue = run.catch(() => {});
    return run.finally(() => {
      if (--this.#running === 0) { for (const f of this.#idle.splice(0)) f(); }
    });
  }

  async #exchange(
    commands: readonly (readonly string[])[],
    signal?: AbortSignal,
  ): Promise<RespValue[]> {
    if (signal?.aborted) throw aborted(signal);
    let timedOut = false;
    const onAbort = () => this.close();
    signal?.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(() => {
      timedOut = true;
      this.close();
    }, this.#o.timeoutMs ?? 30_000);
    try {
      const conn = this.#conn ?? await this.#open();
      await writeAll(
        conn,
        commands.length === 1 ? encodeCommand(commands[0]) : encodeCommands(commands),
      );
      const replies: RespValue[] = [];
      while (replies.length < commands.length) {
        const r = await this.#readReply(conn);
        replies.push(r);
      }
      return replies;
    } catch (cause) {
      this.close();
      if (signal?.aborted) throw aborted(signal, cause);
      if (timedOut) {
        throw new RedisError(
          "timeout",
          `${this.#o.path}: no reply to ${commands[0]?.[0]} within ${
            this.#o.timeoutMs ?? 30_000
          }ms`,
          { cause },
        );
      }
      if (cause instanceof RedisError) throw cause;
      if (cause instanceof RespProtocolError) {
        throw new RedisError("protocol", `${this.#o.path}: ${cause.message}`, { cause });
      }
      throw new RedisError("closed", `${this.#o.path}: ${(cause as Error).message}`, { cause });
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  async #readReply(conn: Deno.UnixConn): Promise<RespValue> {
    const decoder = this.#decoder!;
    const buf = this.#chunk;
    while (true) {
      const r = decoder.next();
      if (r !== undefined) return r;
      const n = await conn.read(buf);
      if (n === null) {
        throw new RedisError("closed", `${this.#o.path}: Redis closed the connection`);
      }
      decoder.push(buf.subarray(0, n));
    }
  }

  async #open(): Promise<Deno.UnixConn> {
    let conn: Deno.UnixConn;
    try {
      conn = await Deno.connect({ transport: "unix", path: this.#o.path });
    } catch (cause) {
      const hint = cause instanceof Deno.errors.NotCapable
        ? " (kube-gw's permissions name this socket: see docs/sonic.md)"
        : "";
      throw new RedisError(
        "connect",
        `cannot connect to Redis at ${this.#o.path}: ${(cause as Error).message}${hint}`,
        { cause },
      );
    }
    this.#conn = conn;
    this.#decoder = new RespDecoder(this.#o.limits);
    const db = this.#o.db ?? 0;
    if (db !== 0) {
      await writeAll(conn, encodeCommand(["SELECT", String(db)]));
      const r = await this.#readReply(conn);
      if (r instanceof RespErrorReply) throw replyError(["SELECT", String(db)], r);
    }
    return conn;
  }
}

async function writeAll(conn: Deno.UnixConn, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await conn.write(bytes.subarray(at));
}

function replyError(args: readonly string[], reply: RespErrorReply): RedisError {
  return new RedisError("reply", `${args[0]}: ${reply.message}`);
}

function aborted(signal: AbortSignal, cause?: unknown): RedisError {
  return new RedisError("aborted", `the Redis request was stopped: ${String(signal.reason)}`, {
    cause: cause ?? signal.reason,
  });
}
