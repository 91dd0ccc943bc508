/**
 * The one poll loop, for tests (and scripts) that watch something they cannot
 * be told about: another process, the kernel, an API server. Unit tests do
 * not poll; they move a fake clock.
 *
 * @module
 */

/**
 * Resolves once `predicate` holds, checking every `intervalMs`; rejects
 * naming `what` after `deadlineMs`.
 *
 * @param deadlineMs @default 10000
 * @param intervalMs @default 10
 */
export async function waitFor(
  what: string,
  predicate: () => boolean | Promise<boolean>,
  deadlineMs = 10_000,
  intervalMs = 10,
): Promise<void> {
  const end = performance.now() + deadlineMs;
  while (!await predicate()) {
    if (performance.now() > end) {
      throw new Error(`timed out after ${deadlineMs}ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
