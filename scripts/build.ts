/**
 * Builds what ships.
 *
 * - `bundle`: `dist/kube-gw.js`, one JavaScript file with every dependency,
 *   from `main.ts`, with the git commit written into it. The tests run this
 *   file with `deno run --cached-only --no-config` and the agent's flags.
 * - `compile [--target T]...`: the bundle, then `dist/kube-gw`
 *   (x86_64-unknown-linux-gnu) and `dist/kube-gw-aarch64`
 *   (aarch64-unknown-linux-gnu): the same file compiled with the same flags
 *   baked in. `deno compile` downloads the Deno runtime (denort) per target, or
 *   takes it from `DENORT_BIN` (one file, so then only one target is built).
 *   When the runtime cannot be had, prints one `SKIPPED` line per target and
 *   exits with status 3.
 *
 * The commit goes into the bundle, never into the tree: `lib/base/version.ts`
 * says `COMMIT = "source"`, and the build replaces that one literal in its
 * output, so a build leaves `git status` clean and a run from source says
 * "source".
 *
 * @module
 */

import { AGENT_V8_FLAG, agentFlags } from "./permissions.ts";
import { VERSION } from "../lib/base/version.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const DIST = `${ROOT}dist`;
/** The bundle the tests run and the binaries embed. */
export const BUNDLE = `${DIST}/kube-gw.js`;

/** Each compile target and the file it produces. */
export const TARGETS: Readonly<Record<string, string>> = {
  "x86_64-unknown-linux-gnu": `${DIST}/kube-gw`,
  "aarch64-unknown-linux-gnu": `${DIST}/kube-gw-aarch64`,
};

/** Exit status when the runtime for compiling is not available. */
export const SKIPPED = 3;

const decoder = new TextDecoder();

/** Raised when the bundle does not have exactly one commit literal to replace. */
export class BuildError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BuildError";
  }
}

/**
 * Writes `commit` into bundled JavaScript in place of `COMMIT = "source"`.
 *
 * @throws {BuildError} unless the literal occurs exactly once.
 */
export function injectCommit(bundle: string, commit: string): string {
  if (!/^[0-9a-z.-]+$/.test(commit)) throw new BuildError(`bad commit text ${commit}`);
  const re = /\b(COMMIT\d*) = "source";/g;
  const found = [...bundle.matchAll(re)];
  if (found.length !== 1) {
    throw new BuildError(
      `expected one 'COMMIT = "source";' in the bundle, found ${found.length}: did lib/base/version.ts change?`,
    );
  }
  return bundle.replace(re, (_m, name) => `${name} = "${commit}";`);
}

async function run(cmd: string, args: string[], env?: Record<string, string>) {
  const out = await new Deno.Command(cmd, { args, cwd: ROOT, stdin: "null", env }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** The commit of the tree, with `-dirty` when it has changes; `unknown` outside git. */
export async function treeCommit(): Promise<string> {
  try {
    const head = await run("git", ["rev-parse", "--short=12", "HEAD"]);
    if (head.code !== 0) return "unknown";
    const status = await run("git", ["status", "--porcelain"]);
    return head.stdout.trim() + (status.stdout.trim() ? "-dirty" : "");
  } catch {
    return "unknown";
  }
}

/** Bundles main.ts into {@linkcode BUNDLE} with the commit; returns the commit. */
export async function bundle(): Promise<string> {
  await Deno.mkdir(DIST, { recursive: true });
  const tmp = `${DIST}/kube-gw.tmp.js`; // the extension tells deno bundle what to write
  const out = await run("deno", [
    "bundle",
    "--quiet",
    "--frozen",
    "--platform=deno",
    "--output",
    tmp,
    "main.ts",
  ]);
  if (out.code !== 0) throw new BuildError(`deno bundle failed:\n${out.stderr}`);
  const commit = await treeCommit();
  const text = injectCommit(await Deno.readTextFile(tmp), commit);
  const banner = `// kube-gw ${VERSION} (commit ${commit}), built by scripts/build.ts.\n` +
    `// Run it as the binary runs: deno run --cached-only --no-config ${
      [...agentFlags(), AGENT_V8_FLAG].join(" ")
    } kube-gw.js\n`;
  await Deno.writeTextFile(tmp, banner + text);
  await Deno.rename(tmp, BUNDLE);
  return commit;
}

/** Removes the `*.tmp-*` files a failed `deno compile` leaves behind. */
async function removeLeftovers(output: string): Promise<void> {
  const base = output.slice(output.lastIndexOf("/") + 1);
  for await (const e of Deno.readDir(DIST)) {
    if (e.name.startsWith(`${base}.tmp-`)) await Deno.remove(`${DIST}/${e.name}`);
  }
}

/** Compiles the bundle for one target: "ok", or "skipped" when the runtime is missing. */
async function compileTarget(target: string): Promise<"ok" | "skipped"> {
  const output = TARGETS[target];
  const out = await run("deno", [
    "compile",
    "--quiet",
    "--no-config",
    "--no-code-cache",
    `--target=${target}`,
    `--output=${output}`,
    ...agentFlags(),
    AGENT_V8_FLAG,
    BUNDLE,
  ]);
  if (out.code === 0) return "ok";
  await removeLeftovers(output);
  // deno compile fetches the runtime while "setting up the base binary". A
  // DENORT_BIN that does not work is an error, not a reason to skip.
  const download = /Setting up base binary/.test(out.stderr) &&
    /error sending request/.test(out.stderr);
  if (download && !Deno.env.get("DENORT_BIN")) {
    const why = out.stderr.split("\n").find((l) => /error sending request|No such file/.test(l))
      ?.replace(/^\s*\d+: /, "").trim() ?? "download failed";
    console.log(
      `SKIPPED compile ${target}: cannot get the Deno runtime (denort): ${why}; ` +
        "set DENORT_BIN to a denort for this target, or build where dl.deno.land is reachable",
    );
    return "skipped";
  }
  throw new BuildError(`deno compile --target=${target} failed:\n${out.stderr}`);
}

async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (command !== "bundle" && command !== "compile") {
    console.error("usage: build.ts bundle | compile [--target TARGET]...");
    return 2;
  }
  const commit = await bundle();
  const size = (await Deno.stat(BUNDLE)).size;
  console.log(`bundled dist/kube-gw.js: kube-gw ${VERSION} (commit ${commit}), ${size} bytes`);
  if (command === "bundle") return 0;

  let targets: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const t = rest[i] === "--target" ? rest[++i] : rest[i].replace(/^--target=/, "");
    if (!(t in TARGETS)) {
      console.error(`unknown target ${t}; known: ${Object.keys(TARGETS).join(", ")}`);
      return 2;
    }
    targets.push(t);
  }
  if (targets.length === 0) {
    targets = Object.keys(TARGETS);
    if (Deno.env.get("DENORT_BIN")) {
      // DENORT_BIN is one runtime binary: deno compile would use it for every target.
      targets = [Deno.build.target];
      console.log(`DENORT_BIN is set: building ${Deno.build.target} only`);
    }
  }
  let skipped = 0;
  for (const target of targets) {
    if (await compileTarget(target) === "skipped") {
      skipped++;
      continue;
    }
    const file = TARGETS[target];
    const mb = ((await Deno.stat(file)).size / 1e6).toFixed(1);
    console.log(`compiled ${file.slice(ROOT.length)} for ${target}: ${mb} MB`);
  }
  return skipped > 0 ? SKIPPED : 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (err) {
    console.error(`build: ${(err as Error).message}`);
    Deno.exit(1);
  }
}
