/**
 * Running a process: a small function type, and its implementation on
 * `Deno.Command` (argv arrays only, never a shell). Adapters take a
 * {@linkcode Spawn} so tests can stand in for the process. A run can be
 * stopped with an `AbortSignal`: the child gets SIGTERM, then SIGKILL, and
 * the call settles only once the child is gone, so no process is orphaned.
 *
 * @module
 */

/** The outcome of one process run. */
export interface SpawnResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** The signal that ended the process (e.g. `SIGTERM`), or null when it exited. */
  readonly signal?: string | null;
}

/** A run stopped through its `AbortSignal`; the child was signalled and has exited. */
export class SpawnAborted extends Error {
  constructor(readonly argv: readonly string[], options?: ErrorOptions) {
    super(`${argv[0]} was stopped`, options);
    this.name = "SpawnAborted";
  }
}

/**
 * Runs `argv` with `stdin` (if given) and collects its output. Once `signal`
 * aborts, the child is stopped and the promise rejects with
 * {@linkcode SpawnAborted} after it has exited.
 */
export type Spawn = (
  argv: readonly string[],
  stdin?: string,
  signal?: AbortSignal,
) => Promise<SpawnResult>;

/** How long an aborted child has between SIGTERM and SIGKILL. */
export const KILL_GRACE_MS = 1000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Spawns a real process with `Deno.Command`. */
export const denoSpawn: Spawn = async (argv, stdin, signal) => {
  if (signal?.aborted) throw new SpawnAborted(argv, { cause: signal.reason });
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const kill = (sig: Deno.Signal) => {
    try {
      child.kill(sig);
    } catch {
      // Already exited.
    }
  };
  const onAbort = () => {
    kill("SIGTERM");
    killTimer = setTimeout(() => kill("SIGKILL"), KILL_GRACE_MS);
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const output = child.output();
    if (stdin !== undefined) {
      const writer = child.stdin.getWriter();
      try {
        await writer.write(encoder.encode(stdin));
        await writer.close();
      } catch {
        // The process exited early; its exit code and stderr tell why.
      }
    }
    const out = await output;
    if (signal?.aborted) throw new SpawnAborted(argv, { cause: signal.reason });
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
      signal: out.signal,
    };
  } finally {
    signal?.removeEventListener("abort", onAbort);
    clearTimeout(killTimer);
  }
};
