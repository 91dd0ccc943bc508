import assert from "node:assert/strict";
import fc from "fast-check";
import { ApiError } from "../../../lib/kube/errors.ts";
import {
  jsonLines,
  MAX_WATCH_LINE_BYTES,
  WatchLineTooLong,
} from "../../../lib/kube/watch_stream.ts";

function stream(chunks: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const ch of chunks) c.enqueue(enc.encode(ch));
      c.close();
    },
  });
}

async function collect(chunks: string[]): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const v of jsonLines(stream(chunks))) out.push(v);
  return out;
}

Deno.test("jsonLines joins events split across chunks and splits chunks holding several", async () => {
  assert.deepEqual(
    await collect(['{"type":"ADD', 'ED","n":1}\n{"type":"MODIFIED"', ',"n":2}\n{"n":3}\n']),
    [
      { type: "ADDED", n: 1 },
      { type: "MODIFIED", n: 2 },
      { n: 3 },
    ],
  );
});

Deno.test("jsonLines keeps a multi-byte character split across chunks", async () => {
  const bytes = new TextEncoder().encode('{"name":"é"}\n');
  const s = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(bytes.slice(0, 10));
      c.enqueue(bytes.slice(10));
      c.close();
    },
  });
  const out: unknown[] = [];
  for await (const v of jsonLines(s)) out.push(v);
  assert.deepEqual(out, [{ name: "é" }]);
});

Deno.test("jsonLines reads a last line without a newline and skips blank lines", async () => {
  assert.deepEqual(await collect(['\n{"a":1}\n\n', '{"b":2}']), [{ a: 1 }, { b: 2 }]);
});

Deno.test("jsonLines throws on a line that is not JSON", async () => {
  await assert.rejects(collect(['{"a":1}\n', "<html>\n"]), SyntaxError);
});

/** A stream that makes its chunks on demand and counts how many were pulled. */
function lazy(count: number, make: (i: number) => Uint8Array) {
  const state = { pulled: 0 };
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (state.pulled === count) return c.close();
      c.enqueue(make(state.pulled++));
    },
  }, { highWaterMark: 0 });
  return { body, state };
}

Deno.test("a watch line past 16 MiB aborts the stream before it is held, with a typed error", async () => {
  const mib = new Uint8Array(1024 * 1024).fill(0x78);
  const { body, state } = lazy(64, () => mib);
  await assert.rejects(
    async () => {
      for await (const _ of jsonLines(body)) { /* nothing */ }
    },
    (e: unknown) =>
      e instanceof WatchLineTooLong && e instanceof ApiError && e.limit === MAX_WATCH_LINE_BYTES &&
      /longer than 16777216 bytes/.test(e.message),
  );
  assert.equal(MAX_WATCH_LINE_BYTES, 16 * 1024 * 1024);
  assert.ok(state.pulled <= 17, `read ${state.pulled} MiB of a 64 MiB line`);
});

Deno.test("a watch line of exactly the bound is read; one byte more is refused", async () => {
  const line = (n: number) => `"${"a".repeat(n - 2)}"\n`;
  const read = async (n: number) => {
    const out: unknown[] = [];
    for await (
      const v of jsonLines(stream([line(n).slice(0, 7), line(n).slice(7), "1\n"]), undefined, 100)
    ) {
      out.push(v);
    }
    return out;
  };
  assert.deepEqual(await read(100), ["a".repeat(98), 1]);
  await assert.rejects(read(101), WatchLineTooLong);
});

/** JSON lines of `values`, cut at the positions `cuts` (mod the length) into non-empty chunks. */
function cutLines(values: readonly unknown[], cuts: readonly number[]): Uint8Array[] {
  const bytes = new TextEncoder().encode(values.map((v) => JSON.stringify(v) + "\n").join(""));
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let prev = 0;
  for (const c of [...at, bytes.length]) {
    if (c > prev) chunks.push(bytes.slice(prev, c));
    prev = c;
  }
  return chunks;
}

Deno.test("jsonLines reads the same values however the stream is cut into chunks", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.jsonValue(), { maxLength: 8 }),
      fc.array(fc.nat(), { maxLength: 12 }),
      async (values, cuts) => {
        // Empty chunks too: a stream may hand over zero bytes.
        const chunks = cutLines(values, cuts).flatMap((c) => [c, new Uint8Array(0)]);
        const body = new ReadableStream<Uint8Array>({
          start(c) {
            for (const ch of chunks) c.enqueue(ch);
            c.close();
          },
        });
        const out: unknown[] = [];
        for await (const v of jsonLines(body)) out.push(v);
        assert.deepEqual(out, values.map((v) => JSON.parse(JSON.stringify(v))));
      },
    ),
  );
});

Deno.test("jsonLines reads a byte stream (as fetch bodies are) into one reused buffer, however it is cut", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.jsonValue(), { maxLength: 8 }),
      fc.array(fc.nat(), { maxLength: 12 }),
      async (values, cuts) => {
        const chunks = cutLines(values, cuts);
        let i = 0;
        const sizes = new Set<number>();
        // Each read is answered with one chunk, written into the reader's own buffer
        // (byobRequest is there only for a BYOB reader: this stream allocates nothing).
        const body = new ReadableStream({
          type: "bytes",
          pull(c) {
            const req = c.byobRequest!;
            const chunk = chunks[i++];
            if (!chunk) {
              c.close();
              req.respond(0);
              return;
            }
            const view = req.view!;
            sizes.add(view.buffer.byteLength);
            new Uint8Array(view.buffer, view.byteOffset, view.byteLength).set(chunk);
            req.respond(chunk.length);
          },
        });
        const out: unknown[] = [];
        for await (const v of jsonLines(body)) out.push(v);
        assert.deepEqual(out, values.map((v) => JSON.parse(JSON.stringify(v))));
        assert.ok([...sizes].every((n) => n === 64 * 1024), `buffers of ${[...sizes]} bytes`);
      },
    ),
  );
});
