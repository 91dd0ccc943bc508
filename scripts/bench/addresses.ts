/**
 * Address plan for the benchmarks: everything lies in one managed network,
 * 10.64.0.0/10 (10.64.0.0 – 10.127.255.255), which does not overlap loopback
 * or anything else on a fresh namespace's `lo`. Pure.
 *
 * @module
 */

/** The managed network every scenario uses. */
export const NETWORK = "10.64.0.0/10";

/** First address of the block each scenario draws from (all inside {@linkcode NETWORK}). */
export const BLOCK = {
  /** Addresses present before a scenario starts, or created by it. */
  seeded: 0x0a40_0000, // 10.64.0.0
  /** Fresh addresses the churn scenario adds. */
  fresh: 0x0a64_0000, // 10.100.0.0
} as const;

/** The i-th address (0-based) of a block, as canonical dotted-quad text. */
export function addressAt(block: number, i: number): string {
  const v = block + 1 + i;
  if (v > 0x0a7f_fffe) throw new RangeError(`address index ${i} leaves ${NETWORK}`);
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** Whether an IPv4 text lies inside {@linkcode NETWORK}. */
export function inNetwork(address: string): boolean {
  const [a, b] = address.split(".").map(Number);
  return a === 10 && b >= 64 && b <= 127;
}

/** The `ip -batch` script that adds addresses the way the agent does. */
export function addBatch(addresses: readonly string[], device = "lo"): string {
  return addresses.map((a) => `address replace ${a}/32 dev ${device}\n`).join("");
}
