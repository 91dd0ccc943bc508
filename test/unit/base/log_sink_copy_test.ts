import assert from "node:assert/strict";
import { configure, getLogger, type LogRecord, reset } from "@logtape/logtape";
import { batchedSink } from "../../../lib/base/log.ts";

// The batched sink formats a record before it returns, so LogTape must hand it
// the record itself rather than a copy of each one (a copy per "assuming
// address" line cost about 20 MB of peak RSS at 20,000 addresses). LogTape
// copies through snapshotLogRecordProperties, which turns the record's lazy
// `properties` getter into a plain value; the original keeps the getter.
Deno.test("LogTape hands the batched sink its records without copying them", async () => {
  const seen: LogRecord[] = [];
  const sink = batchedSink(() => {}, (r) => {
    seen.push(r);
    return "";
  });
  await configure({
    reset: true,
    sinks: { s: sink },
    loggers: [
      { category: ["copy-test"], lowestLevel: "info", sinks: ["s"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: [] },
    ],
  });
  try {
    getLogger(["copy-test"]).info("assuming address {address}", { address: "10.0.100.30" });
    assert.equal(seen.length, 1);
    const properties = Object.getOwnPropertyDescriptor(seen[0], "properties");
    assert.ok(properties?.get, "the sink got a copy of the record, not the record");
    assert.deepEqual(seen[0].properties, { address: "10.0.100.30" });
  } finally {
    sink.flush();
    await reset();
  }
});
