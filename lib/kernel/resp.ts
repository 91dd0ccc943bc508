/**
 * RESP2, the Redis serialization protocol: commands encoded as arrays of bulk
 * strings, replies decoded incrementally from a byte stream with bounds on
 * what one reply may hold. Pure: the client in `redis.ts` does the I/O.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** An error reply (`-ERR ...`): a value, since one command of a batch may fail alone. */
export class RespErrorReply {
  constructor(readonly message: string) {}
  /** The error's code: its first word (`ERR`, `WRONGTYPE`, `EXECABORT`...). */
  get code(): string {
    return this.message.split(" ", 1)[0];
  }
}

/** A decoded reply: simple and bulk strings, integers, nil (`null`), arrays, errors. */
export type RespValue = string | number | null | RespErrorReply | RespValue[];

/** The stream is not RESP2, or a reply exceeds a bound: the connection cannot go on. */
export class RespProtocolError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RespProtocolError";
  }
}

/**
 * Encodes one command as a RESP2 array of bulk strings. Arguments may hold
 * any bytes, CR and LF included: bulk strings carry their length.
 */
export function encodeCommand(args: readonly string[]): Uint8Array {
  const parts: Uint8Array[] = [encoder.encode(`*${args.length}\r\n`)];
  let size = parts[0].length;
  for (const a of args) {
    const body = encoder.encode(a);
    const head = encoder.encode(`$${body.length}\r\n`);
    parts.push(head, body, CRLF);
    size += head.length + body.length + 2;
  }
  return concat(parts, size);
}

/** Encodes several commands back to back: one write for a pipeline. */
export function encodeCommands(commands: readonly (readonly string[])[]): Uint8Array {
  const parts = commands.map(encodeCommand);
  return concat(parts, parts.reduce((n, p) => n + p.length, 0));
}

const CRLF = new Uint8Array([13, 10]);

function concat(parts: readonly Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Bounds on what the decoder accepts. */
export interface RespLimits {
  /** The longest bulk string. @default 16 MiB */
  readonly maxBulkBytes?: number;
  /** The most elements of one array. @default 1,000,000 */
  readonly maxArrayLength?: number;
  /** The most bytes held while a reply is incomplete. @default 256 MiB */
  readonly maxBufferedBytes?: number;
  /** The deepest nesting of arrays. @default 8 */
  readonly maxDepth?: number;
}

/** The longest line (a simple string, an error, a length) the decoder waits for. */
const MAX_LINE = 64 * 1024;

/** Marks a reply that has not fully arrived yet. */
const INCOMPLETE = Symbol("incomplete");

/**
 * Decodes replies from a byte stream fed in arbitrary chunks. A reply is
 * returned only once all of it has arrived.
 */
export class RespDecoder {
  #buf = new Uint8Array(0);
  #start = 0;
  #end = 0;
  readonly #maxBulk: number;
  readonly #maxArray: number;
  readonly #maxBuffered: number;
  readonly #maxDepth: number;

  constructor(limits: RespLimits = {}) {
    this.#maxBulk = limits.maxBulkBytes ?? 16 * 1024 * 1024;
    this.#maxArray = limits.maxArrayLength ?? 1_000_000;
    this.#maxBuffered = limits.maxBufferedBytes ?? 256 * 1024 * 1024;
    this.#maxDepth = limits.maxDepth ?? 8;
  }

  /** Bytes received and not yet returned as a reply. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Adds received bytes. @throws {RespProtocolError} past `maxBufferedBytes` */
  push(chunk: Uint8Array): void {
    const held = this.#end - this.#start;
    if (held + chunk.length > this.#maxBuffered) {
      throw new RespProtocolError(
        `a reply exceeds ${this.#maxBuffered} bytes while incomplete`,
      );
    }
    if (this.#end + chunk.length > this.#buf.length) {
      if (held + chunk.length <= this.#buf.length) {
        // Room once what was returned is dropped: move the unread bytes to the front.
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        const next = new Uint8Array(Math.max(held + chunk.length, this.#buf.length * 2, 4096));
        next.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = next;
      }
      this.#start = 0;
      this.#end = held;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  /**
   * The next complete reply, or `undefined` when it has not all arrived.
   * @throws {RespProtocolError} on bytes that are not RESP2 or exceed a bound
   */
  next(): RespValue | undefined {
    const r = this.#parse(this.#start, 0);
    if (r === INCOMPLETE) return undefined;
    this.#start = r.at;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return r.value;
  }

  /** Index of the CR of the line starting at `at`, or -1 when it has not arrived. */
  #lineEnd(at: number): number {
    const limit = Math.min(this.#end - 1, at + MAX_LINE);
    for (let i = at; i < limit; i++) {
      if (this.#buf[i] === 13) {
        if (this.#buf[i + 1] !== 10) throw new RespProtocolError("CR without LF");
        return i;
      }
    }
    if (this.#end - at > MAX_LINE) throw new RespProtocolError(`a line exceeds ${MAX_LINE} bytes`);
    return -1;
  }

  #parse(at: number, depth: number): { value: RespValue; at: number } | typeof INCOMPLETE {
    if (at >= this.#end) return INCOMPLETE;
    const type = this.#buf[at];
    const cr = this.#lineEnd(at + 1);
    if (cr < 0) return INCOMPLETE;
    const line = decoder.decode(this.#buf.subarray(at + 1, cr));
    const after = cr + 2;
    switch (type) {
      case 0x2b: // '+'
        return { value: line, at: after };
      case 0x2d: // '-'
        return { value: new RespErrorReply(line), at: after };
      case 0x3a: // ':'
        return { value: this.#integer(line), at: after };
      case 0x24: { // '$'
        const n = this.#integer(line);
        if (n === -1) return { value: null, at: after };
        if (n < 0) throw new RespProtocolError(`bad bulk length ${n}`);
        if (n > this.#maxBulk) {
          throw new RespProtocolError(`a bulk string of ${n} bytes exceeds ${this.#maxBulk}`);
        }
        if (after + n + 2 > this.#end) return INCOMPLETE;
        if (this.#buf[after + n] !== 13 || this.#buf[after + n + 1] !== 10) {
          throw new RespProtocolError("a bulk string does not end with CRLF");
        }
        return { value: decoder.decode(this.#buf.subarray(after, after + n)), at: after + n + 2 };
      }
      case 0x2a: { // '*'
        const n = this.#integer(line);
        if (n === -1) return { value: null, at: after };
        if (n < 0) throw new RespProtocolError(`bad array length ${n}`);
        if (n > this.#maxArray) {
          throw new RespProtocolError(`an array of ${n} elements exceeds ${this.#maxArray}`);
        }
        if (depth >= this.#maxDepth) {
          throw new RespProtocolError(`arrays nested deeper than ${this.#maxDepth}`);
        }
        const items: RespValue[] = [];
        let pos = after;
        for (let i = 0; i < n; i++) {
          const r = this.#parse(pos, depth + 1);
          if (r === INCOMPLETE) return INCOMPLETE;
          items.push(r.value);
          pos = r.at;
        }
        return { value: items, at: pos };
      }
      default:
        throw new RespProtocolError(`unknown reply type byte 0x${type.toString(16)}`);
    }
  }

  #integer(line: string): number {
    if (!/^-?\d{1,16}$/.test(line)) {
      throw new RespProtocolError(`not an integer: ${JSON.stringify(line.slice(0, 40))}`);
    }
    return Number(line);
  }
}
