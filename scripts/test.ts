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
}

const GROUPS: readonly Group[] = [
  // Pure code: no permissions at all.
  { name: "unit", paths: ["test/unit/"], flags: ["--ignore-env"] },
  // Real `ip` in throwaway namespaces, the fake API server, the agent as a process.
  { name: "integration", paths: ["test/integration/"], flags: ["-P=test"] },
  { name: "e2e", paths: ["test/e2e/"], flags: ["-P=test"] },
  // A BGP fabric of namespaces: FRR, nftables, pods, a client. Also needs `ps`
  // and `kill` to stop by pid what a killed run left, and `bird`/`vtysh` to
  // check the router configurations.
  { name: "fabric", paths: ["test/fabric/"], flags: ["-P=fabric"] },
];

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
for (const group of GROUPS) {
  if (wanted.length > 0 && !wanted.includes(group.name)) continue;
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
