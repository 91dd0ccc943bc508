/**
 * Captures what kube-gw logs during a test: logtape configured with a memory
 * sink for the `kube-gw` category, reset afterwards even when the test fails.
 *
 * @module
 */

import { configure, type LogLevel, type LogRecord, reset } from "@logtape/logtape";

/**
 * Runs `fn` with kube-gw's records at `lowestLevel` and above collected in
 * the array it is given (in order), then resets logging.
 */
export async function withLogs<T>(
  lowestLevel: LogLevel,
  fn: (records: LogRecord[]) => Promise<T>,
): Promise<T> {
  const records: LogRecord[] = [];
  await configure({
    reset: true,
    sinks: { mem: (r) => records.push(r) },
    loggers: [
      { category: ["kube-gw"], lowestLevel, sinks: ["mem"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: [] },
    ],
  });
  try {
    return await fn(records);
  } finally {
    await reset();
  }
}
