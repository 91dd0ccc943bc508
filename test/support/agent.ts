/**
 * Runs kube-gw as a separate process, as it ships, and watches its log: the
 * bundle `dist/kube-gw.js` (built by `deno task bundle`, which `deno task test`
 * runs before the groups that need it) under `deno run --cached-only
 * --no-config` with exactly the permission flags the compiled binary bakes in
 * (scripts/permissions.ts, from the `agent` set in deno.json).
 *
 * @module
 */

import { agentFlags } from "../../scripts/permissions.ts";
import type { FakeApiServer } from "./fake_apiserver.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const decoder = new TextDecoder();
const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The bundle the tests run: the file the compiled binary embeds. */
export const BUNDLE = `${ROOT}dist/kube-gw.js`;

/** `deno run` and the shipped flags for a bundled entry point, before its arguments. */
export function bundleCommand(bundle: string): string[] {
  return ["deno", "run", "--quiet", "--cached-only", "--no-config", ...agentFlags(), bundle];
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

/** A running agent. */
export class AgentProcess implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  /** Every stderr line so far. */
  readonly lines: string[] = [];
  readonly #waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  /** Resolves when the process exits. */
  readonly status: Promise<Deno.CommandStatus>;
  #stdout = "";

  constructor(args: readonly string[], env: Record<string, string> = {}) {
    const [cmd, ...rest] = kubeGwCommand();
    this.#child = new Deno.Command(cmd, {
      args: [...rest, ...args],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      clearEnv: true,
      env: { PATH, ...env },
    }).spawn();
    const pump = async () => {
      let buf = "";
      for await (const chunk of this.#child.stderr) {
        buf += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          this.#line(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      }
      if (buf) this.#line(buf);
    };
    const out = async () => {
      for await (const chunk of this.#child.stdout) this.#stdout += decoder.decode(chunk);
    };
    const pumped = Promise.all([pump(), out()]);
    this.status = this.#child.status.then(async (s) => {
      await pumped;
      return s;
    });
  }

  get pid(): number {
    return this.#child.pid;
  }

  get stdout(): string {
    return this.#stdout;
  }

  #line(line: string): void {
    this.lines.push(line);
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      if (this.#waiters[i].re.test(line)) this.#waiters.splice(i, 1)[0].resolve(line);
    }
  }

  /**
   * Resolves with the first log line that matches, looking back to line
   * `from` (default: the very first line) and forward.
   */
  waitForLine(re: RegExp, timeoutMs = 10_000, from = 0): Promise<string> {
    const seen = this.lines.slice(from).find((l) => re.test(l));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new Error(
            `no log line matching ${re} within ${timeoutMs}ms; log:\n${this.lines.join("\n")}`,
          ),
        );
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
): AgentProcess {
  return new AgentProcess(args, env);
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
