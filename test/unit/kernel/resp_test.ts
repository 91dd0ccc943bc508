import assert from "node:assert/strict";
import fc from "fast-check";
import {
  encodeCommand,
  encodeCommands,
  RespDecoder,
  RespErrorReply,
  RespProtocolError,
  type RespValue,
} from "../../../lib/kernel/resp.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

function decodeAll(input: string, chunk = Infinity): RespValue[] {
  const d = new RespDecoder();
  const b = bytes(input);
  const out: RespValue[] = [];
  for (let i = 0; i < b.length; i += Math.min(chunk, b.length)) {
    d.push(b.subarray(i, i + Math.min(chunk, b.length)));
    for (let r = d.next(); r !== undefined; r = d.next()) out.push(r);
  }
  return out;
}

Deno.test("a command is an array of bulk strings; CR, LF and multi-byte text keep their byte length", () => {
  assert.equal(
    text(encodeCommand(["HSET", "LOOPBACK_INTERFACE|Loopback1000|10.0.0.1/32", "NULL", "NULL"])),
    "*4\r\n$4\r\nHSET\r\n$43\r\nLOOPBACK_INTERFACE|Loopback1000|10.0.0.1/32\r\n$4\r\nNULL\r\n$4\r\nNULL\r\n",
  );
  assert.equal(text(encodeCommand(["a\r\nb", "é"])), "*2\r\n$4\r\na\r\nb\r\n$2\r\né\r\n");
  assert.equal(
    text(encodeCommands([["MULTI"], ["EXEC"]])),
    "*1\r\n$5\r\nMULTI\r\n*1\r\n$4\r\nEXEC\r\n",
  );
});

Deno.test("every reply type decodes: simple, error, integer, bulk, nil, arrays, nested and nil arrays", () => {
  const replies = decodeAll(
    "+OK\r\n-WRONGTYPE Operation against a key\r\n:42\r\n:-1\r\n$5\r\nhello\r\n$0\r\n\r\n$-1\r\n" +
      "*2\r\n$1\r\n0\r\n*2\r\n$3\r\nk|1\r\n$3\r\nk|2\r\n*-1\r\n*0\r\n",
  );
  assert.equal(replies[0], "OK");
  assert.ok(replies[1] instanceof RespErrorReply);
  assert.equal((replies[1] as RespErrorReply).code, "WRONGTYPE");
  assert.deepEqual(replies.slice(2), [42, -1, "hello", "", null, ["0", ["k|1", "k|2"]], null, []]);
});

Deno.test("a reply split anywhere, down to one byte at a time, decodes the same", () => {
  const input = "*3\r\n$3\r\nabc\r\n:7\r\n*1\r\n+QUEUED\r\n+OK\r\n";
  const whole = decodeAll(input);
  for (const chunk of [1, 2, 3, 5, 7]) assert.deepEqual(decodeAll(input, chunk), whole);
  assert.deepEqual(whole, [["abc", 7, ["QUEUED"]], "OK"]);
});

Deno.test("an incomplete reply is held, not returned, and not consumed", () => {
  const d = new RespDecoder();
  d.push(bytes("*2\r\n:1\r\n"));
  assert.equal(d.next(), undefined);
  assert.equal(d.buffered, 8);
  d.push(bytes(":2\r\n"));
  assert.deepEqual(d.next(), [1, 2]);
  assert.equal(d.buffered, 0);
});

Deno.test("bytes that are not RESP2, or a reply over a bound, are protocol errors", () => {
  const bad = (input: string, limits = {}) => {
    const d = new RespDecoder(limits);
    assert.throws(() => {
      d.push(bytes(input));
      d.next();
    }, RespProtocolError);
  };
  bad("?what\r\n");
  bad(":12a\r\n");
  bad("$3\r\nabcd\r\n");
  bad("+OK\rX");
  bad("$-5\r\n");
  bad("$100\r\n", { maxBulkBytes: 10 });
  bad("*100\r\n", { maxArrayLength: 10 });
  bad("*1\r\n*1\r\n*1\r\n:1\r\n", { maxDepth: 2 });
  bad("+" + "x".repeat(70_000));
  bad("$5\r\nabc", { maxBufferedBytes: 4 });
});

Deno.test("any command round-trips through the encoder and the decoder as an array of strings", () => {
  fc.assert(
    fc.property(fc.array(fc.string({ unit: "grapheme" }), { maxLength: 8 }), (args) => {
      // The encoder writes a request; as a reply, the same bytes decode to the arguments.
      const d = new RespDecoder();
      d.push(encodeCommand(args));
      assert.deepEqual(d.next(), args);
    }),
  );
});

Deno.test("a long stream of small replies read in chunks keeps the buffer at the size of one chunk", () => {
  const d = new RespDecoder({ maxBufferedBytes: 8192 });
  const chunk = bytes("+QUEUED\r\n".repeat(400) + "+QUE");
  let n = 0;
  for (let i = 0; i < 1000; i++) {
    d.push(chunk);
    d.push(bytes("UED\r\n"));
    for (let r = d.next(); r !== undefined; r = d.next()) n++;
  }
  assert.equal(n, 401_000);
  assert.equal(d.buffered, 0);
});
