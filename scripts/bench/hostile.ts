/**
 * Costs a hostile Service can impose, measured on the pure
 * pieces in this process: the desired-state edit of one IP in a Service with
 * many externalIPs, parsing one long watch line, and the peak resident memory
 * of one 5 MB Service event from the stream to the desired set. Standalone:
 * each measurement runs in a fresh process so that its peak RSS is its own.
 *
 *   deno run scripts/bench/hostile.ts edit
 *   deno run scripts/bench/hostile.ts lines
 *   /usr/bin/time -f 'peak RSS %M kB' deno run scripts/bench/hostile.ts rss 5
 *   /usr/bin/time -f 'peak RSS %M kB' deno run scripts/bench/hostile.ts rss 0   # baseline
 *
 * @module
 */

import { parseCidr } from "../../lib/base/cidr.ts";
import { DesiredState } from "../../lib/agent/desired.ts";
import { jsonLines } from "../../lib/kube/watch_stream.ts";
import { decodeService, MAX_EXTERNAL_IPS } from "../../lib/service/record.ts";

const NETS = [parseCidr("10.64.0.0/10")];

function ips(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `10.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`);
}

function service(externalIPs: string[]): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { namespace: "default", name: "wide", resourceVersion: "1" },
    spec: { type: "ClusterIP", clusterIP: "10.96.0.10", externalIPs },
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** Current resident memory of this process, in MB. */
function rssMb(): number {
  return Deno.memoryUsage().rss / 1e6;
}

function stream(bytes: Uint8Array, chunk = 64 * 1024): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream({
    pull(c) {
      if (off >= bytes.length) return c.close();
      c.enqueue(bytes.slice(off, off + chunk));
      off += chunk;
    },
  });
}

/** Time to apply one edited IP to the desired state of a Service with n externalIPs. */
function edit(): void {
  // Above MAX_EXTERNAL_IPS (1,000) the Service is refused whole: the edit costs the refusal.
  for (const n of [1_000, 10_000, 20_000, 40_000]) {
    const all = ips(n);
    const state = new DesiredState(NETS);
    state.upsert(decodeService(service(all)));
    const times: number[] = [];
    for (let round = 0; round < 5; round++) {
      const edited = [...all];
      edited[n >> 1] = `10.127.255.${round}`;
      const t0 = performance.now();
      state.upsert(decodeService(service(edited)));
      times.push(performance.now() - t0);
    }
    console.log(
      `edit one IP of ${n} externalIPs (decode and desired state${
        n > MAX_EXTERNAL_IPS ? "; refused whole" : ""
      }): ${median(times).toFixed(2)} ms (median of 5)`,
    );
  }
}

/** Time to read one watch line of about `mb` MB through jsonLines, in 64 KiB chunks. */
async function lines(): Promise<void> {
  for (const mb of [1, 4, 16]) {
    const target = mb * 1_000_000;
    const per = 17; // `"10.64.x.y",` is about 13 to 15 bytes
    const event = JSON.stringify({ type: "ADDED", object: service(ips(Math.floor(target / per))) });
    const bytes = new TextEncoder().encode(event.padEnd(target - 1, " ") + "\n");
    const times: number[] = [];
    for (let round = 0; round < 3; round++) {
      const t0 = performance.now();
      for await (const _ of jsonLines(stream(bytes))) { /* parse only */ }
      times.push(performance.now() - t0);
    }
    console.log(
      `parse a ${(bytes.length / 1e6).toFixed(1)} MB watch line: ${
        median(times).toFixed(0)
      } ms (median of 3)`,
    );
  }
}

/**
 * One Service event of `mb` MB: bytes in, through jsonLines and the decoder,
 * into the desired set. The peak is the process's: run under `/usr/bin/time`.
 * `rss 0` is the baseline (the same process with no event).
 */
async function rss(mb: number): Promise<void> {
  const start = rssMb();
  const event = JSON.stringify({ type: "ADDED", object: service(ips(Math.floor(mb * 1e6 / 17))) });
  const bytes = new TextEncoder().encode(event + "\n");
  const state = new DesiredState(NETS);
  const built = rssMb();
  for await (const ev of jsonLines(stream(bytes))) {
    state.upsert(decodeService((ev as { object: unknown }).object));
  }
  console.log(
    `one ${
      (bytes.length / 1e6).toFixed(1)
    } MB Service event (${state.addresses.size} addresses): ` +
      `RSS ${start.toFixed(0)} MB at start, ${built.toFixed(0)} MB with the event's bytes built, ` +
      `${rssMb().toFixed(0)} MB after`,
  );
}

if (import.meta.main) {
  const [what, arg] = Deno.args;
  if (what === "edit") edit();
  else if (what === "lines") await lines();
  else if (what === "rss") await rss(Number(arg ?? 5));
  else {
    console.error("usage: hostile.ts edit | lines | rss [MB]");
    Deno.exit(2);
  }
}
