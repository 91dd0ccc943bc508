/**
 * Reading a watch stream: the bytes of a WATCH response as JSON lines
 * ({@linkcode jsonLines}), each line one event ({@linkcode watchEvents}),
 * with a bound on the length of a line. Pure over a `ReadableStream`: no
 * connection handling here (that is `client.ts`'s).
 *
 * @module
 */

import { ApiError } from "./errors.ts";
import type { WatchEvent } from "./ports.ts";

/**
 * The longest line of a watch stream kube-gw reads: 16 MiB. One line is one
 * event holding one object; the API server refuses requests over 3 MiB and
 * etcd stores objects up to about 1.5 MiB, so a real Service is far below
 * this. A longer line (a hostile or broken server) aborts the stream with
 * {@linkcode WatchLineTooLong}, before it is held in memory.
 */
export const MAX_WATCH_LINE_BYTES = 16 * 1024 * 1024;

/**
 * A watch event that cannot be read: too long, not JSON, or without a type
 * and an object. Resuming the watch from the same resourceVersion would meet
 * it again, so the engine lists instead (and sees later edits of the object).
 */
export class UnreadableWatchEvent extends ApiError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, undefined, options);
    this.name = "UnreadableWatchEvent";
  }
}

/** A line of a watch stream exceeded the bound; the stream is aborted before it is held. */
export class WatchLineTooLong extends UnreadableWatchEvent {
  constructor(readonly limit: number) {
    super(
      `a watch event is longer than ${limit} bytes (kube-gw's bound on one event; the API server keeps objects under 3 MiB): stream aborted`,
    );
    this.name = "WatchLineTooLong";
  }
}

const NEWLINE = 0x0a;
const lineDecoder = new TextDecoder();

function concat(parts: readonly Uint8Array[], size: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Bytes read at once from a watch stream, into one buffer reused for the stream's life. */
const READ_BUFFER_BYTES = 64 * 1024;

/**
 * The chunks of a byte stream, read into one reused buffer (a BYOB reader),
 * or as the stream hands them out when it is not a byte stream. Each chunk is
 * valid only until the next is asked for. Without this, Deno allocates a
 * fresh 64 KiB buffer for every chunk of a fetch body, however small: one per
 * watch event, gigabytes of short-lived memory outside the V8 heap.
 */
async function* chunksOf(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  let reader: ReadableStreamBYOBReader;
  try {
    reader = body.getReader({ mode: "byob" });
  } catch {
    yield* body;
    return;
  }
  let buffer = new Uint8Array(READ_BUFFER_BYTES);
  try {
    while (true) {
      const { value, done } = await reader.read(buffer);
      if (done || !value) return;
      yield value;
      buffer = new Uint8Array(value.buffer);
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * Reads a watch stream as JSON lines; a seam kept pure for tests. Linear in
 * the stream's length: each byte is looked at once for a newline and copied
 * at most once.
 *
 * @param onChunk runs on every chunk read, before its lines are yielded.
 * @param maxLineBytes the longest line accepted. @default MAX_WATCH_LINE_BYTES (16 MiB)
 * @throws {WatchLineTooLong} as soon as a line grows past `maxLineBytes`.
 * @throws {SyntaxError} on a line that is not JSON.
 */
export async function* jsonLines(
  body: ReadableStream<Uint8Array>,
  onChunk?: () => void,
  maxLineBytes = MAX_WATCH_LINE_BYTES,
): AsyncGenerator<unknown> {
  let parts: Uint8Array[] = [];
  let size = 0;
  const line = (last: Uint8Array): string => {
    if (size + last.length > maxLineBytes) throw new WatchLineTooLong(maxLineBytes);
    parts.push(last);
    const bytes = concat(parts, size + last.length);
    parts = [];
    size = 0;
    // A line ends at a newline byte, which never splits a UTF-8 sequence.
    return lineDecoder.decode(bytes).trim();
  };
  for await (const chunk of chunksOf(body)) {
    onChunk?.();
    let start = 0;
    let nl: number;
    while ((nl = chunk.indexOf(NEWLINE, start)) >= 0) {
      const text = line(chunk.subarray(start, nl));
      start = nl + 1;
      if (text) yield JSON.parse(text);
    }
    if (start < chunk.length) {
      size += chunk.length - start;
      if (size > maxLineBytes) throw new WatchLineTooLong(maxLineBytes);
      parts.push(chunk.slice(start)); // the reader reuses its buffer: keep a copy
    }
  }
  const rest = line(new Uint8Array(0));
  if (rest) yield JSON.parse(rest);
}

/**
 * The events of a watch stream, each checked to have a type and an object.
 *
 * @param what the request, e.g. `GET /api/v1/services`, for the error message.
 * @param onChunk runs on every chunk read (see {@linkcode jsonLines}).
 * @throws {UnreadableWatchEvent} on a line that is too long, not JSON, or not an event.
 */
export async function* watchEvents(
  body: ReadableStream<Uint8Array>,
  what: string,
  onChunk?: () => void,
): AsyncGenerator<WatchEvent> {
  const lines = jsonLines(body, onChunk)[Symbol.asyncIterator]();
  while (true) {
    let next: IteratorResult<unknown>;
    try {
      next = await lines.next();
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      throw new UnreadableWatchEvent(`${what}: a watch event is not JSON`, { cause: err });
    }
    if (next.done) return;
    const e = next.value as Partial<WatchEvent>;
    if (typeof e?.type !== "string" || typeof e.object !== "object" || e.object === null) {
      throw new UnreadableWatchEvent(`${what}: malformed watch event`);
    }
    yield e as WatchEvent;
  }
}
