/**
 * Running a process: a small function type, and its implementation on
 * `Deno.Command` (argv arrays only, never a shell). Adapters take a
 * {@linkcode Spawn} so tests can stand in for the process.
 *
 * @module
 */

/** The outcome of one process run. */
export interface SpawnResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `argv` with `stdin` (if given) and collects its output. */
export type Spawn = (argv: readonly string[], stdin?: string) => Promise<SpawnResult>;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Spawns a real process with `Deno.Command`. */
export const denoSpawn: Spawn = async (argv, stdin) => {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
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
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
};
