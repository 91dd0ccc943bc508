import assert from "node:assert/strict";
import type { LogRecord } from "@logtape/logtape";
import { batchedSink, jsonFormatter, textFormatter } from "../../lib/log.ts";

function record(message: unknown[], level: LogRecord["level"] = "info"): LogRecord {
  return {
    category: ["kube-gw"],
    level,
    message,
    rawMessage: "",
    timestamp: Date.UTC(2026, 10, 26, 5, 35, 6, 123),
    properties: {},
  };
}

Deno.test("text lines keep the prototype's words for operators to grep", () => {
  assert.equal(
    textFormatter(record(["assuming address ", "10.0.100.30", ""])),
    "2026-11-26T05:35:06.123Z INFO assuming address 10.0.100.30\n",
  );
  assert.equal(
    textFormatter(record(["refused ", { n: 1 }, ""], "warning")),
    '2026-11-26T05:35:06.123Z WARN refused {"n":1}\n',
  );
});

Deno.test("the batched sink writes a burst of lines with one write", async () => {
  const writes: string[] = [];
  const sink = batchedSink(
    (b) => writes.push(new TextDecoder().decode(b)),
    (r) => `${r.message[0]}\n`,
  );
  for (let i = 0; i < 1000; i++) sink(record([`line ${i}`]));
  assert.equal(writes.length, 0);
  // The sink flushes on a 0 ms timer set by the first line; a 0 ms timer set after it runs
  // after it (timers of one delay run in order): no time is waited for.
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(writes.length, 1);
  assert.equal(writes[0].split("\n").length, 1001);
  sink(record(["last"]));
  sink.flush();
  assert.equal(writes[1], "last\n");
});

Deno.test("JSON lines carry the same words as text lines, plus the properties", () => {
  const r = {
    ...record(["assuming address ", "10.0.100.30", ""]),
    properties: { address: "10.0.100.30" },
  };
  assert.deepEqual(JSON.parse(jsonFormatter(r)), {
    time: "2026-11-26T05:35:06.123Z",
    level: "info",
    logger: "kube-gw",
    message: "assuming address 10.0.100.30",
    address: "10.0.100.30",
  });
  assert.ok(jsonFormatter(r).endsWith("}\n"));
});
