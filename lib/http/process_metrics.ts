/**
 * The process metrics that the agent and the controller both export: the
 * build (version and commit) and the memory the process holds, registered on
 * a registry the caller owns. Knows nothing of the domain.
 *
 * @module
 */

import { Gauge, type Registry } from "prom-client";

/**
 * Registers `kubegw_build_info{version,commit}` (always 1) and the memory
 * gauges, read at each scrape: `process_resident_memory_bytes`,
 * `kubegw_heap_total_bytes`, `kubegw_heap_used_bytes`,
 * `kubegw_external_memory_bytes`.
 */
export function registerProcessMetrics(registry: Registry, version: string, commit: string): void {
  const registers = [registry];
  new Gauge({
    name: "kubegw_build_info",
    help: "Version and commit of the running kube-gw; always 1.",
    labelNames: ["version", "commit"],
    registers,
  }).set({ version, commit }, 1);
  // Memory, one gauge per quantity: a label would invite sums that mean nothing
  // (heap_used is part of heap_total, which is part of rss). The resident size
  // takes the standard name that dashboards and alerts already know.
  const memory = (name: string, help: string, pick: (m: Deno.MemoryUsage) => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect(this: Gauge) {
        this.set(pick(Deno.memoryUsage()));
      },
    });
  memory("process_resident_memory_bytes", "Resident memory size in bytes.", (m) => m.rss);
  memory("kubegw_heap_total_bytes", "V8 heap size in bytes.", (m) => m.heapTotal);
  memory("kubegw_heap_used_bytes", "V8 heap in use in bytes.", (m) => m.heapUsed);
  memory(
    "kubegw_external_memory_bytes",
    "Memory held outside the V8 heap by JavaScript objects, in bytes.",
    (m) => m.external,
  );
}
