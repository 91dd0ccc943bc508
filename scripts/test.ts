/**
 * The test command: runs each group of tests with its own permissions, shows
 * their TAP output, and ends with one line `N passed, N failed`. Skipped tests
 * count as failed: nothing is allowed to pass by not running.
 *
 * Usage: deno task test [--filter TEXT] [group...]
 *
 * @module
 */

/** A group of test files and the permissions they run with. */
interface Group {
  readonly name: string;
  readonly paths: readonly string[];
  readonly flags: readonly string[];
  /** Runs the agent as a process: needs dist/kube-gw.js, built once per run. */
  readonly needsBundle: boolean;
}

const GROUPS: readonly Group[] = [
  // Pure code: no permissions at all.
  { name: "unit", paths: ["test/unit/"], flags: ["--ignore-env"], needsBundle: false },
  // Real `ip` in throwaway namespaces, the fake API server, the agent as a process.
  { name: "integration", paths: ["test/integration/"], flags: ["-P=test"], needsBundle: true },
  { name: "e2e", paths: ["test/e2e/"], flags: ["-P=test"], needsBundle: true },
  // What ships around the agent: the installer against a throwaway sshd, the unit's sandbox
  // applied by hand, the Kubernetes manifests (ssh, mount namespaces, setpriv, seccomp).
  { name: "ship", paths: ["test/ship/"], flags: ["-P=ship"], needsBundle: true },
];

/** Builds dist/kube-gw.js, the file the agent runs from in tests, as `deno task bundle` does. */
async function buildBundle(): Promise<boolean> {
  console.log("\n== bundle (deno task bundle) ==");
  const out = await new Deno.Command("deno", {
    args: ["run", "--quiet", "-P=build", "scripts/build.ts", "bundle"],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  return out.success;
}

const TOP = /^(not )?ok \d+ - (.*?)(?: # (SKIP|TODO)\b.*)?$/;

async function runGroup(group: Group, extra: readonly string[]) {
  const args = ["test", "--reporter=tap", "--no-prompt", ...group.flags, ...extra, ...group.paths];
  const child = new Deno.Command("deno", { args, stdout: "piped", stderr: "inherit" }).spawn();
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const failures: string[] = [];
  let buffered = "";
  const decoder = new TextDecoder();
  const handle = (line: string) => {
    console.log(line);
    const m = TOP.exec(line);
    if (!m) return;
    if (m[3]) {
      skipped++;
      failures.push(`${m[2]} (skipped)`);
    } else if (m[1]) {
      failed++;
      failures.push(m[2]);
    } else {
      passed++;
    }
  };
  for await (const chunk of child.stdout) {
    buffered += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      handle(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
    }
  }
  if (buffered) handle(buffered);
  const status = await child.status;
  // A crash before any result (a type error, a missing file) is a failure too.
  if (!status.success && failed === 0 && skipped === 0) {
    failed++;
    failures.push(`${group.name}: deno test exited with ${status.code}`);
  }
  return { passed, failed: failed + skipped, failures };
}

const extra: string[] = [];
const wanted: string[] = [];
for (let i = 0; i < Deno.args.length; i++) {
  const a = Deno.args[i];
  if (a === "--filter") extra.push("--filter", Deno.args[++i]);
  else if (a.startsWith("--filter=")) extra.push(a);
  else wanted.push(a);
}

let passed = 0;
let failed = 0;
const failures: string[] = [];
let bundled = false;
for (const group of GROUPS) {
  if (wanted.length > 0 && !wanted.includes(group.name)) continue;
  if (group.needsBundle && !bundled) {
    bundled = true;
    if (!await buildBundle()) {
      failed++;
      failures.push("bundle: deno task bundle failed");
    }
  }
  console.log(`\n== ${group.name} ==`);
  const r = await runGroup(group, extra);
  passed += r.passed;
  failed += r.failed;
  failures.push(...r.failures);
}
if (failures.length > 0) {
  console.log("\nFailed:");
  for (const f of failures) console.log(`  - ${f}`);
}
console.log(`${passed} passed, ${failed} failed`);
Deno.exit(failed === 0 ? 0 : 1);
