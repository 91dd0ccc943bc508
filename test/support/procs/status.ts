/**
 * The agent's status server as tests see it: the port from the agent's log,
 * `/metrics` parsed into series, and polling until a condition holds.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { LoggedProcess } from "./agent.ts";
import { waitFor } from "../wait.ts";

/** Prometheus text format: `name{label="v",...}` (labels sorted) → value. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels = [...(m[2] ?? "").matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)]
      .map(([, k, v]) => `${k}="${v}"`).sort().join(",");
    const key = labels ? `${m[1]}{${labels}}` : m[1];
    if (out.has(key)) throw new Error(`duplicate series ${key}`);
    out.set(key, Number(m[3]));
  }
  return out;
}

/** The agent's status server: `/metrics`, `/healthz`, `/readyz`. */
export class Status {
  constructor(readonly base: string) {}

  async get(path: string): Promise<{ status: number; body: string; type: string }> {
    const res = await fetch(`${this.base}${path}`);
    return {
      status: res.status,
      body: await res.text(),
      type: res.headers.get("content-type") ?? "",
    };
  }

  async metrics(): Promise<Map<string, number>> {
    const r = await this.get("/metrics");
    assert.equal(r.status, 200);
    assert.ok(r.type.startsWith("text/plain"), r.type);
    return parseMetrics(r.body);
  }

  /** Polls until `check` holds (the agent works asynchronously), or throws with the last value. */
  async until<T>(what: () => Promise<T>, check: (v: T) => boolean, ms = 10_000): Promise<T> {
    let last: T | undefined;
    await waitFor(
      "a condition on the status server",
      async () => check(last = await what()),
      ms,
      50,
    )
      .catch((err) => {
        throw new Error(`${err.message}; last: ${JSON.stringify(last, replacer)}`);
      });
    return last!;
  }
}

function replacer(_k: string, v: unknown) {
  return v instanceof Map ? Object.fromEntries(v) : v;
}

/** The status server of an agent started with `--metrics-address=127.0.0.1:0`, from its log. */
export async function statusOf(agent: LoggedProcess): Promise<Status> {
  const line = await agent.waitForLine(/serving metrics on 127\.0\.0\.1:\d+/);
  return new Status(`http://127.0.0.1:${/:(\d+)$/.exec(line)![1]}`);
}

/**
 * Waits until `http://127.0.0.1:{port}/readyz` answers 200 (the agent's or the
 * controller's start-up is over), polling every 50 ms; a refused connection
 * counts as not yet.
 *
 * @default deadlineMs 20_000
 */
export async function waitReadyz(port: number, deadlineMs = 20_000): Promise<void> {
  await waitFor(
    `/readyz on 127.0.0.1:${port} to answer 200`,
    async () => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/readyz`);
        await res.body?.cancel();
        return res.status === 200;
      } catch {
        return false; // Not listening yet.
      }
    },
    deadlineMs,
    50,
  );
}
