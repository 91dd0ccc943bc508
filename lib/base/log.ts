/**
 * Logging on LogTape: text lines by default, JSON lines on request, written to
 * stderr in batches so that thousands of address lines at start-up cost one
 * write per tick, not one per line.
 *
 * @module
 */

import { configure, type LogLevel, type LogRecord, type Sink } from "@logtape/logtape";
import { boundText, escapeControl } from "./text.ts";

/** Log levels kube-gw accepts. */
export type Level = "debug" | "info" | "warning" | "error";

/** Output formats kube-gw accepts. */
export type LogFormat = "text" | "json";

function renderMessage(record: LogRecord): string {
  return record.message.map((part, i) => i % 2 === 0 ? String(part) : renderValue(part)).join("");
}

/** An interpolated value: strings as they are, anything else as JSON; bounded. */
function renderValue(v: unknown): string {
  return boundText(typeof v === "string" ? v : JSON.stringify(v) ?? String(v));
}

function boundProperties(props: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(props)) out[k] = typeof v === "string" ? boundText(v) : v;
  return out;
}

const LEVEL_TEXT: Record<LogLevel, string> = {
  trace: "TRACE",
  debug: "DEBUG",
  info: "INFO",
  warning: "WARN",
  error: "ERROR",
  fatal: "FATAL",
};

/**
 * `2026-11-26T05:35:06.123Z INFO assuming address 10.0.100.30`. Every value
 * is bounded and the line's control characters are escaped, so no value
 * (a Service name from a hostile API server) can start a line of its own.
 */
export function textFormatter(record: LogRecord): string {
  return `${new Date(record.timestamp).toISOString()} ${LEVEL_TEXT[record.level]} ${
    escapeControl(renderMessage(record))
  }\n`;
}

/**
 * One JSON object per line: time, level, logger, the rendered message and its
 * properties. JSON escapes control characters; string values are bounded.
 */
export function jsonFormatter(record: LogRecord): string {
  return JSON.stringify({
    time: new Date(record.timestamp).toISOString(),
    level: LEVEL_TEXT[record.level].toLowerCase(),
    logger: record.category.join("."),
    message: renderMessage(record),
    ...boundProperties(record.properties),
  }) + "\n";
}

/**
 * LogTape's marker (a registered symbol, as its own stream sink sets it) for a
 * sink that is done with a record when it returns. Without it LogTape copies
 * every record before handing it over, which at 20,000 "assuming address"
 * lines in one reconcile costs about 20 MB of peak RSS.
 */
const IMMEDIATE = Symbol.for("LogTape.sinkSnapshotPolicy.immediate");

/** Buffered characters past which the batched sink writes at once. */
const FLUSH_CHARS = 64 * 1024;

/**
 * A sink that formats each record at once and writes the lines together at the
 * end of the tick, or as soon as 64 K characters are waiting.
 */
export function batchedSink(
  write: (bytes: Uint8Array) => void,
  format: (r: LogRecord) => string,
): Sink & { flush(): void } {
  const encoder = new TextEncoder();
  let pending: string[] = [];
  let scheduled = false;
  let size = 0;
  const flush = () => {
    if (pending.length === 0) return;
    const text = pending.join("");
    pending = [];
    size = 0;
    const bytes = encoder.encode(text);
    try {
      write(bytes);
    } catch {
      // stderr is gone (closed pipe): nothing sensible to do with a log line.
    }
  };
  const sink = (record: LogRecord) => {
    const line = format(record);
    pending.push(line);
    size += line.length;
    // A burst (thousands of refusals from one list) is written as it goes, 64 K characters at a
    // time, so that the lines of one tick are never all held at once.
    if (size >= FLUSH_CHARS) return flush();
    if (!scheduled) {
      scheduled = true;
      setTimeout(() => {
        scheduled = false;
        flush();
      }, 0);
    }
  };
  return Object.assign(sink, { flush, [IMMEDIATE]: true });
}

function writeAll(bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += Deno.stderr.writeSync(bytes.subarray(off));
}

let active: { flush(): void } | undefined;

/** Configures logging for the process. */
export async function setupLogging(level: Level, format: LogFormat): Promise<void> {
  const sink = batchedSink(writeAll, format === "json" ? jsonFormatter : textFormatter);
  active = sink;
  await configure({
    reset: true,
    sinks: { stderr: sink },
    loggers: [
      { category: ["kube-gw"], lowestLevel: level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

/** Writes out any lines still buffered; call before the process exits. */
export function flushLogs(): void {
  active?.flush();
}
