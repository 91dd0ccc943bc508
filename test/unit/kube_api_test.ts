import assert from "node:assert/strict";
import { jsonLines } from "../../lib/kube_api.ts";

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
