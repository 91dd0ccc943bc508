import assert from "node:assert/strict";
import type { LogRecord } from "@logtape/logtape";
import { batchedSink, jsonFormatter, textFormatter } from "../../../lib/base/log.ts";
import { boundText, escapeControl } from "../../../lib/base/text.ts";

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

Deno.test("a value with a newline cannot forge a text log line; control characters are escaped", () => {
  const name =
    "default/web\n2026-11-26T05:35:06.123Z INFO assuming address 10.0.100.66\x1b[2J\u202e";
  const line = textFormatter(record(["Service ", name, " changed"]));
  assert.equal(line.split("\n").length, 2, "one line");
  assert.equal(
    line,
    "2026-11-26T05:35:06.123Z INFO Service default/web\\n2026-11-26T05:35:06.123Z INFO assuming address 10.0.100.66\\x1b[2J\\u202e changed\n",
  );
  // A message built before logging (a rejection's text) is escaped too.
  assert.equal(textFormatter(record([`refusing "a"\r\nINFO x`])).split("\n").length, 2);
});

Deno.test("long values are bounded to 256 characters with their length, in text and JSON", () => {
  const huge = "9".repeat(5_000_000);
  const text = textFormatter(record(["refusing ", huge, ""]));
  assert.ok(text.length < 400, `${text.length} characters`);
  assert.ok(text.includes(`${"9".repeat(256)}…(5000000 chars)`));
  const json = JSON.parse(jsonFormatter({
    ...record(["error: ", huge, ""]),
    properties: { error: huge, count: 3, line: "a\nb" },
  }));
  assert.equal(json.error, `${"9".repeat(256)}…(5000000 chars)`);
  assert.equal(json.message, `error: ${"9".repeat(256)}…(5000000 chars)`);
  assert.equal(json.count, 3);
  assert.equal(json.line, "a\nb", "JSON keeps the value, escaped by JSON itself");
  assert.equal(boundText("short"), "short");
  assert.equal(escapeControl("tab\there"), "tab\\there");
});
