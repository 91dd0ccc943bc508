import assert from "node:assert/strict";
import {
  LOCAL_ACCESS_PREF,
  parseLocalAccess,
  parseRoutes,
  routeBatchLines,
  routeBatchScript,
  RouteStore,
  SPLIT_MIN_LINES,
  splitBatch,
} from "../../../lib/kernel/route_store.ts";
import { IpError } from "../../../lib/kernel/ip_command.ts";
import { parseCidr } from "../../../lib/base/cidr.ts";
import type { Spawn } from "../../../lib/kernel/spawn.ts";

const SPEC = { protocol: 200, table: "main" } as const;

Deno.test("parseRoutes: every route is owned; another type than unreachable is misshapen", () => {
  // As `ip -json -N -4 route show table main proto 200` prints them.
  const v4 = [
    { type: "unreachable", dst: "10.0.100.5", flags: [] },
    { dst: "10.0.100.6", dev: "lo", scope: "link", flags: [] },
    { type: "unreachable", dst: "10.9.0.0/24", flags: [] },
    { type: "blackhole", dst: "default", flags: [] },
    // Not in canonical form: read as the address it names.
    { type: "unreachable", dst: "10.0.100.07", flags: [] },
  ];
  assert.deepEqual(parseRoutes(v4, 4), [
    { family: 4, local: "10.0.100.5", prefixlen: 32, owned: true },
    { family: 4, local: "10.0.100.6", prefixlen: 32, owned: true, misshapen: true },
    { family: 4, local: "10.9.0.0", prefixlen: 24, owned: true },
    { family: 4, local: "0.0.0.0", prefixlen: 0, owned: true, misshapen: true },
    { family: 4, local: "10.0.100.7", prefixlen: 32, owned: true },
  ]);
  const v6 = [
    { type: "unreachable", dst: "2001:db8::5", dev: "lo", metric: 1024, flags: [] },
    // iproute2 prints addresses inside ::/96 with a dotted quad.
    { type: "unreachable", dst: "::10.0.100.5", dev: "lo", metric: 1024, flags: [] },
    { type: "unreachable", dst: "2001:db8:1::/64", dev: "lo", metric: 1024, flags: [] },
  ];
  assert.deepEqual(parseRoutes(v6, 6), [
    { family: 6, local: "2001:db8::5", prefixlen: 128, owned: true },
    { family: 6, local: "::a00:6405", prefixlen: 128, owned: true },
    { family: 6, local: "2001:db8:1::", prefixlen: 64, owned: true },
  ]);
  // `ip -N` prints the type by number: 7 is unreachable.
  assert.deepEqual(
    parseRoutes([{ type: "7", dst: "10.0.100.5" }, { type: "6", dst: "10.0.100.6" }], 4),
    [
      { family: 4, local: "10.0.100.5", prefixlen: 32, owned: true },
      { family: 4, local: "10.0.100.6", prefixlen: 32, owned: true, misshapen: true },
    ],
  );
  // Entries without a destination of the family are skipped; a non-object is refused.
  assert.deepEqual(parseRoutes([{ type: "unreachable" }, { dst: "10.0.0.1" }], 6), []);
  assert.throws(() => parseRoutes(["x"], 4), SyntaxError);
});

Deno.test("parseLocalAccess: the rule of kube-gw's protocol from lo to its table, and lo routes there", () => {
  const rules = [
    { priority: 0, src: "all", table: "255" },
    { priority: LOCAL_ACCESS_PREF, src: "all", iif: "lo", table: "200", protocol: "200" },
    { priority: 32766, src: "all", table: "254" },
  ];
  const routes = [
    { dst: "10.0.100.0/24", dev: "lo", scope: "link", flags: [] },
    { type: "unreachable", dst: "10.0.101.0/24", flags: [] },
  ];
  assert.deepEqual(parseLocalAccess(rules, routes, SPEC, 4), {
    rule: true,
    routes: new Set(["10.0.100.0/24"]),
  });
  const foreign = [{ priority: 100, iif: "lo", table: "200", protocol: "4" }];
  assert.equal(parseLocalAccess(foreign, [], SPEC, 4).rule, false, "another protocol's rule");
});

Deno.test("routeBatchScript: local access, then adds, then removals, each naming table and protocol", () => {
  const script = routeBatchScript(
    { add: ["10.0.100.5", "2001:db8::5"], remove: ["10.0.100.6", "10.9.0.0/24", "192.0.2.1"] },
    { protocol: 77, table: "1000" },
    ["10.0.100.0/24"],
  );
  assert.equal(
    script,
    "route replace 10.0.100.0/24 dev lo table 77 proto 77\n" +
      "route replace unreachable 10.0.100.5/32 table 1000 proto 77\n" +
      "route replace unreachable 2001:db8::5/128 table 1000 proto 77\n" +
      "route del 10.0.100.6/32 table 1000 proto 77\n" +
      "route del 10.9.0.0/24 table 1000 proto 77\n" +
      "route del 192.0.2.1/32 table 1000 proto 77\n",
  );
  assert.equal(routeBatchScript({ add: [], remove: [] }, SPEC), "");
});

Deno.test("splitBatch: a small plan is one script; a large one contiguous parts, none lost", () => {
  const small = routeBatchLines({ add: ["10.0.100.5", "10.0.100.6"], remove: [] }, SPEC);
  assert.deepEqual(splitBatch(small, 4), [small.join("")]);
  const add = Array.from({ length: SPLIT_MIN_LINES + 1 }, (_, i) => `10.1.${i >> 8}.${i & 255}`);
  const lines = routeBatchLines({ add, remove: ["10.0.100.9"] }, SPEC, ["10.0.0.0/8"]);
  const parts = splitBatch(lines, 2);
  assert.equal(parts.length, 2);
  assert.equal(parts.join(""), lines.join(""), "every line once, in order");
  assert.ok(parts[0].startsWith("route replace 10.0.0.0/8 dev lo"), "local access first");
  const sizes = parts.map((p) => p.split("\n").length - 1);
  assert.ok(Math.abs(sizes[0] - sizes[1]) <= 1, `even halves: ${sizes}`);
  assert.equal(splitBatch(lines, 1).length, 1);
  assert.deepEqual(splitBatch([], 2), []);
  // A count that is no number loses nothing either.
  assert.deepEqual(splitBatch(lines, NaN), [lines.join("")]);
  assert.deepEqual(splitBatch(lines, Infinity), [lines.join("")]);
});

/** A spawn that records each run and answers reads from `reads` (family → three arrays). */
function fakeIp(reads: Record<"4" | "6", unknown[][]>) {
  const runs: { argv: readonly string[]; stdin?: string }[] = [];
  const spawn: Spawn = (argv, stdin) => {
    runs.push({ argv, stdin });
    const family = argv.find((a) => a === "-4" || a === "-6")?.slice(1) as "4" | "6" | undefined;
    if (argv.includes("-json") && family) {
      const stdout = reads[family].map((a) => JSON.stringify(a)).join("\n") + "\n";
      return Promise.resolve({ code: 0, stdout, stderr: "" });
    }
    return Promise.resolve({ code: 0, stdout: "", stderr: "" });
  };
  return { runs, spawn };
}

Deno.test("RouteStore reads both families in one process each and adds missing local access with the next plan", async () => {
  const { runs, spawn } = fakeIp({
    "4": [[{ type: "unreachable", dst: "10.0.100.5", flags: [] }], [], []],
    "6": [[], [], []],
  });
  const store = new RouteStore({
    ...SPEC,
    networks: [parseCidr("10.0.100.0/24"), parseCidr("2001:db8::/64")],
    netns: "asic0",
    spawn,
  });
  assert.deepEqual(await store.read(), [
    { family: 4, local: "10.0.100.5", prefixlen: 32, owned: true },
  ]);
  assert.deepEqual(runs.map((r) => r.argv), [
    ["ip", "-n", "asic0", "-json", "-N", "-4", "-batch", "-"],
    ["ip", "-n", "asic0", "-json", "-N", "-6", "-batch", "-"],
  ]);
  assert.equal(
    runs[0].stdin,
    "route show table main proto 200\nrule show\nroute show table 200 proto 200\n",
  );
  runs.length = 0;
  await store.apply({ add: ["10.0.100.6"], remove: [] });
  assert.deepEqual(runs.map((r) => r.argv), [
    [
      "ip",
      "-n",
      "asic0",
      "-4",
      "rule",
      "add",
      "pref",
      "32000",
      "iif",
      "lo",
      "lookup",
      "200",
      "proto",
      "200",
    ],
    [
      "ip",
      "-n",
      "asic0",
      "-6",
      "rule",
      "add",
      "pref",
      "32000",
      "iif",
      "lo",
      "lookup",
      "200",
      "proto",
      "200",
    ],
    ["ip", "-n", "asic0", "-force", "-batch", "-"],
  ]);
  assert.equal(
    runs[2].stdin,
    "route replace 10.0.100.0/24 dev lo table 200 proto 200\n" +
      "route replace 2001:db8::/64 dev lo table 200 proto 200\n" +
      "route replace unreachable 10.0.100.6/32 table main proto 200\n",
  );
  runs.length = 0;
  await store.apply({ add: [], remove: ["10.0.100.6"] });
  assert.deepEqual(runs.map((r) => r.stdin), ["route del 10.0.100.6/32 table main proto 200\n"]);
  assert.equal(store.spawned, 6);
});

Deno.test("RouteStore adds nothing of local access that a read found in place", async () => {
  const rule = { priority: 32000, iif: "lo", table: "200", protocol: "200" };
  const { runs, spawn } = fakeIp({
    "4": [[], [rule], [{ dst: "10.0.100.0/24", dev: "lo", flags: [] }]],
    "6": [[], [], []],
  });
  const store = new RouteStore({ ...SPEC, networks: [parseCidr("10.0.100.0/24")], spawn });
  await store.read();
  runs.length = 0;
  await store.apply({ add: ["10.0.100.6"], remove: [] });
  assert.deepEqual(runs.map((r) => r.stdin), [
    "route replace unreachable 10.0.100.6/32 table main proto 200\n",
  ]);
  // An empty plan runs nothing.
  await store.apply({ add: [], remove: [] });
  assert.equal(runs.length, 1);
});

Deno.test("RouteStore: output that is not ip's JSON is an IpError naming the command", async () => {
  const spawn: Spawn = () => Promise.resolve({ code: 0, stdout: "[]\n", stderr: "" });
  const store = new RouteStore({ ...SPEC, networks: [], spawn });
  await assert.rejects(
    store.read(),
    (e: unknown) => e instanceof IpError && /-batch -: unexpected output/.test(e.message),
  );
});

Deno.test("RouteStore runs a large plan as parallel ip -batch; a failed part is thrown once all finish", async () => {
  const add = Array.from({ length: SPLIT_MIN_LINES }, (_, i) => `10.1.${i >> 8}.${i & 255}`);
  let running = 0;
  const finished: string[] = [];
  let release = () => {};
  const released = new Promise<void>((r) => release = r);
  const spawn: Spawn = async (argv, stdin) => {
    if (argv.includes("-json")) return { code: 0, stdout: "[]\n[]\n[]\n", stderr: "" };
    running++;
    // The first part fails at once, as ip -force does when a line failed; the second runs on.
    const first = stdin?.startsWith(`route replace unreachable ${add[0]}/`);
    if (!first) await released;
    running--;
    finished.push(stdin ?? "");
    return first
      ? { code: 1, stdout: "", stderr: "Command failed -:7\n" }
      : { code: 0, stdout: "", stderr: "" };
  };
  const store = new RouteStore({ ...SPEC, networks: [], spawn, batches: 2 });
  await store.read();
  let settled = false;
  const applied = store.apply({ add, remove: [] }).then(
    () => undefined,
    (err: unknown) => err,
  ).finally(() => settled = true);
  // Every promise the fake can settle on its own has settled after one turn of the event loop.
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(finished.length, 1, "the first part failed");
  assert.equal(running, 1, "the second part runs beside it");
  assert.equal(settled, false, "the plan is not over while a part still runs");
  release();
  assert.ok(await applied instanceof IpError, "the failure is thrown");
  assert.equal(finished.sort().join(""), routeBatchScript({ add, remove: [] }, SPEC));
  assert.equal(store.running, 0);
});

Deno.test("RouteStore puts missing local access in place before the parts of a large plan run", async () => {
  const add = Array.from({ length: SPLIT_MIN_LINES }, (_, i) => `10.0.${i >> 8}.${i & 255}`);
  const events: string[] = [];
  const spawn: Spawn = async (argv, stdin) => {
    if (argv.includes("-json")) return { code: 0, stdout: "[]\n[]\n[]\n", stderr: "" };
    const what = argv.includes("rule") ? "rule" : stdin?.includes(" dev lo ") ? "local" : "part";
    events.push(`start ${what}`);
    await Promise.resolve();
    events.push(`end ${what}`);
    return { code: 0, stdout: "", stderr: "" };
  };
  const store = new RouteStore({
    ...SPEC,
    networks: [parseCidr("10.0.0.0/16")],
    spawn,
    batches: 2,
  });
  await store.read();
  assert.equal(
    store.missing(),
    "local access: the rule iif lo lookup 200 (IPv4), the route 10.0.0.0/16 dev lo in table 200",
  );
  await store.apply({ add, remove: [] });
  assert.deepEqual(events, [
    "start rule",
    "end rule",
    "start local",
    "end local",
    "start part",
    "start part",
    "end part",
    "end part",
  ]);
  assert.equal(store.missing(), undefined);
});

Deno.test("RouteStore: when one part fails and another is stopped, the failure of ip is thrown", async () => {
  const add = Array.from({ length: SPLIT_MIN_LINES }, (_, i) => `10.1.${i >> 8}.${i & 255}`);
  const spawn: Spawn = (argv, stdin) => {
    if (argv.includes("-json")) {
      return Promise.resolve({ code: 0, stdout: "[]\n[]\n[]\n", stderr: "" });
    }
    // The first part is killed by a signal; the second fails.
    return Promise.resolve(
      stdin?.startsWith(`route replace unreachable ${add[0]}/`)
        ? { code: 1, stdout: "", stderr: "", signal: "SIGKILL" }
        : { code: 1, stdout: "", stderr: "RTNETLINK answers: No buffer space available\n" },
    );
  };
  const store = new RouteStore({ ...SPEC, networks: [], spawn, batches: 2 });
  await store.read();
  await assert.rejects(
    store.apply({ add, remove: [] }),
    (e: unknown) => e instanceof IpError && /No buffer space/.test(e.message),
  );
});

Deno.test("RouteStore: an older read that ends last does not hide what a newer read found missing", async () => {
  let releaseOld = () => {};
  const oldGate = new Promise<void>((r) => releaseOld = r);
  let reads = 0;
  const spawn: Spawn = async (argv) => {
    if (!argv.includes("-json")) return { code: 0, stdout: "", stderr: "" };
    reads++;
    const rule = { priority: 32000, iif: "lo", table: "200", protocol: "200" };
    const local = { dst: "10.0.100.0/24", dev: "lo", flags: [] };
    // The first is the old read's IPv4 dump: it saw local access in place, and ends last.
    if (reads === 1) {
      await oldGate;
      return {
        code: 0,
        stdout: `[]\n${JSON.stringify([rule])}\n${JSON.stringify([local])}\n`,
        stderr: "",
      };
    }
    return { code: 0, stdout: "[]\n[]\n[]\n", stderr: "" };
  };
  const store = new RouteStore({ ...SPEC, networks: [parseCidr("10.0.100.0/24")], spawn });
  const old = store.read();
  // Let the old read reach its first ip, then a newer read finds the rule and the route gone.
  await Promise.resolve();
  const newer = store.read();
  await new Promise((r) => setTimeout(r, 0));
  releaseOld();
  await Promise.all([old, newer]);
  assert.match(store.missing() ?? "", /the rule iif lo lookup 200/);
});
