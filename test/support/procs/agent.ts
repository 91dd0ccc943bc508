/**
 * Runs kube-gw as a separate process, as it ships, and watches its log: the
 * bundle `dist/kube-gw.js` (built by `deno task bundle`, which `deno task test`
 * runs before the groups that need it) under `deno run --cached-only
 * --no-config` with exactly the permission flags the compiled binary bakes in
 * (scripts/permissions.ts, from the `agent` set in deno.json).
 *
 * @module
 */

import { AGENT_V8_FLAG, agentFlags } from "../../../scripts/permissions.ts";
import type { FakeApiServer } from "../fakes/apiserver.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;
const decoder = new TextDecoder();
const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The bundle the tests run: the file the compiled binary embeds. */
export const BUNDLE = `${ROOT}dist/kube-gw.js`;

/** `deno run` and the shipped flags for a bundled entry point, before its arguments. */
export function bundleCommand(bundle: string): string[] {
  return [
    "deno",
    "run",
    "--quiet",
    "--cached-only",
    "--no-config",
    ...agentFlags(),
    AGENT_V8_FLAG,
    bundle,
  ];
}

/** The argv that starts kube-gw, before its own arguments. */
export function kubeGwCommand(): string[] {
  try {
    Deno.statSync(BUNDLE);
  } catch (cause) {
    throw new Error(`${BUNDLE} is missing: run "deno task bundle" (deno task test does)`, {
      cause,
    });
  }
  return bundleCommand(BUNDLE);
}

/** Options for {@linkcode LoggedProcess}. */
export interface LoggedProcessOptions {
  /** Variables besides PATH; nothing else of this process's environment is passed. */
  readonly env?: Record<string, string>;
  /** Keep stderr lines in `lines` (default); off for long, chatty runs. */
  readonly keepLines?: boolean;
}

/** A child process whose stderr lines are kept, counted and waited for. */
export class LoggedProcess implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  /** Every stderr line so far (unless `keepLines` is off). */
  readonly lines: string[] = [];
  readonly #counters: { re: RegExp; n: number }[] = [];
  readonly #waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  /** Resolves when the process exits and its output is read. */
  readonly status: Promise<Deno.CommandStatus>;
  /** `performance.now()` at spawn. */
  readonly started = performance.now();
  #stdout = "";

  constructor(argv: readonly string[], options: LoggedProcessOptions = {}) {
    const keep = options.keepLines ?? true;
    this.#child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      clearEnv: true,
      env: { PATH, ...options.env },
    }).spawn();
    const pump = async (stream: ReadableStream<Uint8Array>, onLine: (l: string) => void) => {
      let buf = "";
      for await (const chunk of stream) {
        buf += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          onLine(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      }
      if (buf) onLine(buf);
    };
    const pumped = Promise.all([
      pump(this.#child.stderr, (l) => this.#line(l, keep)),
      pump(this.#child.stdout, (l) => {
        this.#stdout += l + "\n";
        this.#line(l, false);
      }),
    ]);
    this.status = this.#child.status.then(async (st) => {
      await pumped;
      return st;
    });
  }

  get pid(): number {
    return this.#child.pid;
  }

  get stdout(): string {
    return this.#stdout;
  }

  #line(line: string, keep: boolean): void {
    if (keep) this.lines.push(line);
    for (const c of this.#counters) {
      const m = c.re.exec(line);
      if (m) c.n += m[1] === undefined ? 1 : Number(m[1]);
    }
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      if (this.#waiters[i].re.test(line)) this.#waiters.splice(i, 1)[0].resolve(line);
    }
  }

  /**
   * Counts lines matching `re` from now on; call before they can appear. A
   * line whose match has a first group counts as that number (a summary
   * line: `assuming 100000 addresses`).
   */
  track(re: RegExp): () => number {
    const c = { re, n: 0 };
    this.#counters.push(c);
    return () => c.n;
  }

  /**
   * Resolves with the first line that matches, looking back to kept line
   * `from` (default: the very first line) and forward.
   */
  waitForLine(re: RegExp, timeoutMs = 10_000, from = 0): Promise<string> {
    const seen = this.lines.slice(from).find((l) => re.test(l));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`no line matching ${re} within ${timeoutMs}ms; log:\n${this.tail()}`));
      }, timeoutMs);
      this.#waiters.push({
        re,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }

  /** The last kept lines of stderr, for error messages. */
  tail(n = 40): string {
    return this.lines.slice(-n).join("\n");
  }

  /** Sends a signal (SIGTERM by default) and waits for the exit. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    try {
      this.#child.kill(signal);
    } catch {
      // Already gone.
    }
    return await this.status;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop("SIGKILL");
  }
}

/** Starts `kube-gw` with `args` and, besides PATH, only the variables in `env`. */
export function startAgent(
  args: readonly string[],
  env: Record<string, string> = {},
): LoggedProcess {
  return new LoggedProcess([...kubeGwCommand(), ...args], { env });
}

/** Runs a `kube-gw` subcommand to completion, with PATH and `env` only. */
export async function runKubeGw(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const [cmd, ...rest] = kubeGwCommand();
  const out = await new Deno.Command(cmd, {
    args: [...rest, ...args],
    cwd: ROOT,
    stdin: "null",
    clearEnv: true,
    env: { PATH, ...env },
  }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Options for {@linkcode writeKubeconfig}. */
export interface KubeconfigFixture {
  readonly token?: string;
  /** PEM of the CA to trust, written to a file next to the kubeconfig. */
  readonly ca?: string;
  readonly clientCert?: { readonly cert: string; readonly key: string };
}

/** Writes a kubeconfig for `server` into a fresh temporary directory. */
export async function writeKubeconfig(
  server: FakeApiServer,
  fx: KubeconfigFixture = {},
): Promise<{ path: string; dir: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "kube-gw-test-" });
  const b64 = (s: string) => btoa(s);
  const cluster = [`    server: ${server.url}`];
  if (fx.ca) {
    await Deno.writeTextFile(`${dir}/ca.crt`, fx.ca);
    cluster.push(`    certificate-authority: ca.crt`);
  }
  const user: string[] = [];
  if (fx.token) user.push(`    token: ${fx.token}`);
  if (fx.clientCert) {
    user.push(`    client-certificate-data: ${b64(fx.clientCert.cert)}`);
    user.push(`    client-key-data: ${b64(fx.clientCert.key)}`);
  }
  const text = [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: fake",
    "  cluster:",
    ...cluster,
    "users:",
    "- name: kube-gw",
    "  user:" + (user.length ? "" : " {}"),
    ...user,
    "contexts:",
    "- name: fake",
    "  context:",
    "    cluster: fake",
    "    user: kube-gw",
    "current-context: fake",
    "",
  ].join("\n");
  const path = `${dir}/kubeconfig`;
  await Deno.writeTextFile(path, text);
  return {
    path,
    dir,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}
