/**
 * Drives http_probe.ts, running in a client namespace, from the test process:
 * one request at a time, each on a new connection.
 *
 * @module
 */

import type { ProbeResult } from "./http_probe.ts";

const SCRIPT = new URL("./http_probe.ts", import.meta.url).pathname;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export type { ProbeResult };

/** The probe process and its line protocol. */
export class ProbeClient implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #pending = new Map<number, (r: ProbeResult) => void>();
  readonly #done: Promise<void>;
  #seq = 0;
  #closed = false;

  /** Starts the probe in `netns`, allowed to connect to `hosts` only. */
  constructor(netns: string, hosts: readonly string[], marker: string) {
    this.#child = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        netns,
        "deno",
        "run",
        "--quiet",
        "--no-prompt",
        `--allow-net=${hosts.join(",")}`,
        SCRIPT,
        marker,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#done = this.#pump();
  }

  get pid(): number {
    return this.#child.pid;
  }

  async #pump(): Promise<void> {
    let buf = "";
    for await (const chunk of this.#child.stdout) {
      buf += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const r = JSON.parse(buf.slice(0, nl)) as ProbeResult;
        buf = buf.slice(nl + 1);
        this.#pending.get(r.id)?.(r);
        this.#pending.delete(r.id);
      }
    }
    this.#closed = true;
    for (const [id, resolve] of this.#pending) {
      resolve({ id, ok: false, error: "ProbeGone: the probe process exited", ms: 0 });
    }
    this.#pending.clear();
  }

  /** One HTTP GET to `host:port` on a new connection. */
  async get(host: string, port: number, timeoutMs = 2000): Promise<ProbeResult> {
    if (this.#closed) throw new Error("the probe process has exited");
    const id = ++this.#seq;
    const result = new Promise<ProbeResult>((resolve) => this.#pending.set(id, resolve));
    await this.#writer.write(encoder.encode(JSON.stringify({ id, host, port, timeoutMs }) + "\n"));
    return await result;
  }

  /** Ends the probe. */
  async close(): Promise<void> {
    await this.#writer.close().catch(() => {});
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }, 2000);
    await this.#child.status;
    clearTimeout(timer);
    await this.#done.catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
