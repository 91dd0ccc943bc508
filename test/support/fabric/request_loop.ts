/**
 * Client requests sent one after another through the fabric until stopped,
 * each on a new connection, with their start and end times: what a test
 * checks for failures while routes change under it.
 *
 * @module
 */

import type { ProbeClient, ProbeResult } from "./probe_client.ts";
import { waitFor } from "../wait.ts";

/** One request of a {@linkcode RequestLoop}, timed with `performance.now()`. */
export interface TimedResult {
  readonly started: number;
  readonly ended: number;
  readonly r: ProbeResult;
}

/** Options for {@linkcode RequestLoop}. */
export interface RequestLoopOptions {
  /** Targets, taken in turn. */
  readonly targets: readonly (readonly [host: string, port: number])[];
  /**
   * Pause between requests: back to back, a loopback round trip is about
   * 1 ms, and the loop would take the CPU the routers share with it (their
   * BGP hold time is 3 s). @default 5
   */
  readonly gapMs?: number;
}

/** Requests in a loop, from when it is made until {@linkcode RequestLoop.stop}. */
export class RequestLoop implements AsyncDisposable {
  readonly results: TimedResult[] = [];
  #stop = false;
  readonly #done: Promise<void>;

  constructor(probe: ProbeClient, options: RequestLoopOptions) {
    const gapMs = options.gapMs ?? 5;
    this.#done = (async () => {
      for (let i = 0; !this.#stop; i++) {
        const [host, port] = options.targets[i % options.targets.length];
        const started = performance.now();
        const r = await probe.get(host, port);
        this.results.push({ started, ended: performance.now(), r });
        await new Promise((resolve) => setTimeout(resolve, gapMs));
      }
    })();
  }

  /**
   * Waits until `n` more requests than now have been made.
   *
   * @param timeoutMs @default 20000
   */
  async more(n: number, timeoutMs = 20_000): Promise<void> {
    const want = this.results.length + n;
    await waitFor(`${n} more requests`, () => this.results.length >= want, timeoutMs, 5);
  }

  /** Stops after the request in flight; idempotent. */
  async stop(): Promise<void> {
    this.#stop = true;
    await this.#done;
  }

  /** The requests that failed, described. */
  get failed(): string[] {
    return this.results.filter((x) => !x.r.ok).map((x) => describeResult(x.r));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/** `ok <body>` or `FAILED <why>`, for assertion messages. */
export function describeResult(r: ProbeResult): string {
  return r.ok ? `ok ${r.body?.trim()}` : `FAILED ${r.error ?? `status ${r.status}`}`;
}
