/**
 * The test command: runs each group of tests with its own permissions, shows
 * deno's own output, counts results from its JUnit report, and ends with one
 * line `N passed, N failed`. Skipped tests count as failed: nothing may pass
 * by not running (with `--filter`, the tests filtered out are not counted). Test steps are part of their test and not counted apart.
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
  // Pure code: no permissions at all. The tests of the scripts' own pure helpers live beside
  // them (scripts/**/*_test.ts), so that test/ imports nothing from scripts/.
  // Files run in parallel: each costs a worker start, the tests themselves take about 1.5 s.
  {
    name: "unit",
    paths: ["test/unit/", "scripts/"],
    flags: ["--ignore-env", "--parallel"],
    needsBundle: false,
  },
  // Real `ip` in throwaway namespaces, the fake API server, the agent as a process.
  { name: "integration", paths: ["test/integration/"], flags: ["-P=test"], needsBundle: true },
  { name: "e2e", paths: ["test/e2e/"], flags: ["-P=test"], needsBundle: true },
  // What ships around the agent: the installer against a throwaway sshd, the unit's sandbox
  // applied by hand, the Kubernetes manifests (ssh, mount namespaces, setpriv, seccomp).
  { name: "ship", paths: ["test/ship/"], flags: ["-P=ship"], needsBundle: true },
  // A BGP fabric of namespaces: FRR, nftables, pods, a client. Also needs `ps`
  // and `kill` to stop by pid what a killed run left, and `bird`/`vtysh` to
  // check the router configurations.
  { name: "fabric", paths: ["test/fabric/"], flags: ["-P=fabric"], needsBundle: true },
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

const RESULTS = ".test-results";

/** Counts top-level test cases in a deno JUnit report. */
export function countJunit(xml: string): { passed: number; failed: string[]; skipped: string[] } {
  const unescape = (s: string) =>
    s.replaceAll("&gt;", ">").replaceAll("&lt;", "<").replaceAll("&quot;", '"').replaceAll(
      "&apos;",
      "'",
    )
      .replaceAll("&amp;", "&");
  const cases = [...xml.matchAll(/<testcase name="([^"]*)"[^>]*>([\s\S]*?)<\/testcase>/g)].map((
    m,
  ) => ({
    name: unescape(m[1]),
    body: m[2],
  }));
  const names = new Set(cases.map((c) => c.name));
  const isStep = (n: string) => [...names].some((p) => p !== n && n.startsWith(`${p} > `));
  let passed = 0;
  const failed: string[] = [];
  const skipped: string[] = [];
  for (const c of cases) {
    if (isStep(c.name)) continue;
    if (c.body.includes("<failure") || c.body.includes("<error")) failed.push(c.name);
    else if (c.body.includes("<skipped")) skipped.push(c.name);
    else passed++;
  }
  return { passed, failed, skipped };
}

async function runGroup(group: Group, extra: readonly string[]) {
  const junit = `${RESULTS}/${group.name}.xml`;
  await Deno.remove(junit).catch(() => {});
  const args = [
    "test",
    "--no-prompt",
    `--junit-path=${junit}`,
    ...group.flags,
    ...extra,
    ...group.paths,
  ];
  const status = await new Deno.Command("deno", { args, stdout: "inherit", stderr: "inherit" })
    .output();
  let xml = "";
  try {
    xml = await Deno.readTextFile(junit);
  } catch {
    // No report: deno test failed before running anything (a type error, say).
  }
  const r = countJunit(xml);
  // With --filter, deno reports the tests it filtered out as skipped; only then are skips not failures.
  const filtered = extra.some((a) => a.startsWith("--filter"));
  const failures = [...r.failed, ...(filtered ? [] : r.skipped.map((n) => `${n} (skipped)`))];
  // A crash without a failing test case is a failure too.
  if (!status.success && failures.length === 0) {
    failures.push(`${group.name}: deno test exited with ${status.code}`);
  }
  return { passed: r.passed, failures };
}

if (import.meta.main) {
  const extra: string[] = [];
  const wanted: string[] = [];
  for (let i = 0; i < Deno.args.length; i++) {
    const a = Deno.args[i];
    if (a === "--filter") extra.push("--filter", Deno.args[++i]);
    else if (a.startsWith("--filter=")) extra.push(a);
    else wanted.push(a);
  }
  const unknown = wanted.filter((w) => !GROUPS.some((g) => g.name === w));
  if (unknown.length > 0) {
    console.error(
      `unknown test group ${unknown.join(", ")}; groups: ${GROUPS.map((g) => g.name).join(", ")}`,
    );
    Deno.exit(2);
  }
  await Deno.mkdir(RESULTS, { recursive: true });
  let passed = 0;
  const failures: string[] = [];
  let bundled = false;
  for (const group of GROUPS) {
    if (wanted.length > 0 && !wanted.includes(group.name)) continue;
    if (group.needsBundle && !bundled) {
      bundled = true;
      if (!await buildBundle()) failures.push("bundle: deno task bundle failed");
    }
    console.log(`\n== ${group.name} ==`);
    const r = await runGroup(group, extra);
    passed += r.passed;
    failures.push(...r.failures);
  }
  if (failures.length > 0) {
    console.log("\nFailed:");
    for (const f of failures) console.log(`  - ${f}`);
  }
  console.log(`${passed} passed, ${failures.length} failed`);
  Deno.exit(failures.length === 0 ? 0 : 1);
}
