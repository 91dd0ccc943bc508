/**
 * The agent confined as scripts/kube-gw.service confines it (user, capabilities,
 * system-call filter, address families, read-only file system; see
 * test/support/procs/unit_sandbox.ts for what is applied and what is not), because
 * no systemd runs here to start the unit itself.
 */
import { demoSlice } from "../support/fakes/endpoint_slices.ts";
import assert from "node:assert/strict";
import { DEMO_SERVICE, FakeApiServer } from "../support/fakes/apiserver.ts";
import { Netns } from "../support/procs/netns.ts";
import { waitFor } from "../support/wait.ts";
import { BUNDLE, bundleCommand, writeKubeconfig } from "../support/procs/agent.ts";
import { sandboxCommand, serviceDirectives, unitProfile } from "../support/procs/unit_sandbox.ts";
import { seedSonicConfigDb, startRedis } from "../support/procs/redis.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const UNIT = `${ROOT}scripts/kube-gw.service`;
const NETNS_DROP_IN = `${ROOT}scripts/kube-gw-netns.conf`;
const SONIC_DROP_IN = `${ROOT}scripts/sonic/kube-gw-sonic.conf`;
const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const decoder = new TextDecoder();

/** A kubeconfig the sandboxed user (nobody) can read. */
async function readableKubeconfig(url: string) {
  const kc = await writeKubeconfig({ url } as FakeApiServer, {});
  await Deno.chmod(kc.dir, 0o755);
  await Deno.chmod(kc.path, 0o644);
  return kc;
}

/** Starts argv, collects stderr, stops it when `done` resolves or after `ms`. */
async function runUntil(
  argv: string[],
  done: (stderr: () => string) => Promise<unknown>,
  ms = 20_000,
): Promise<{ code: number; stderr: string }> {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    clearEnv: true,
    env: { PATH },
  }).spawn();
  let stderr = "";
  const pump = (async () => {
    for await (const c of child.stderr) stderr += decoder.decode(c);
  })();
  const timer = setTimeout(() => child.kill("SIGKILL"), ms);
  try {
    await Promise.race([done(() => stderr), child.status]);
  } finally {
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
  }
  const status = await child.status;
  clearTimeout(timer);
  await pump;
  return { code: status.code, stderr };
}

/**
 * The fake API server as a process inside network namespace `netns` (where
 * the agent runs without --netns), stopped by pid when disposed.
 */
async function apiServerIn(netns: string): Promise<{ url: string } & AsyncDisposable> {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", netns, "deno", "run", "--quiet", "-P=test", API_MAIN],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const stop = async () => {
    child.kill("SIGKILL");
    await child.status;
    await child.stdout.cancel().catch(() => {});
  };
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const url = (await reader.read()).value?.trim() ?? "";
  reader.releaseLock();
  if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(url)) {
    await stop();
    throw new Error(`the fake API server in ${netns} said ${JSON.stringify(url)}`);
  }
  return { url, [Symbol.asyncDispose]: stop };
}

const API_MAIN = "test/support/fakes/apiserver_main.ts";

const until = (check: () => Promise<boolean>) => waitFor("the confined agent", check, 15_000, 100);

Deno.test("confined as kube-gw.service (nobody, CAP_NET_ADMIN only, its syscall filter), the agent keeps the Service's addresses", async () => {
  await using ns = await Netns.create("unit");
  // The API server runs inside the namespace too: the agent, without --netns, works there.
  await using api = await apiServerIn(ns.name);
  {
    const url = api.url;
    await using kc = await readableKubeconfig(url);
    const profile = await unitProfile([UNIT]);
    const agent = sandboxCommand(profile, [
      ...bundleCommand(BUNDLE),
      "run",
      "--network=10.0.100.0/24",
      `--kubeconfig=${kc.path}`,
      "--kube-proxy-health=off",
    ]);
    const result = await runUntil(
      ["ip", "netns", "exec", ns.name, ...agent],
      () => until(async () => (await ns.hostAddresses()).length === 2),
    );
    assert.deepEqual(await ns.hostAddresses(), ["10.0.100.30", "10.0.100.31"], result.stderr);
    // It ran as nobody with CAP_NET_ADMIN and stopped cleanly on SIGTERM.
    assert.deepEqual(result.code, 0, result.stderr);
    assert.match(result.stderr, /assuming address 10\.0\.100\.31/);
  }
});

Deno.test("--netns needs kube-gw-netns.conf: without it the agent says CAP_SYS_ADMIN, with it it works", async () => {
  await using ns = await Netns.create("unitns");
  const api = await FakeApiServer.start();
  try {
    api.create(DEMO_SERVICE);
    api.createObject("endpointslices", demoSlice());
    await using kc = await readableKubeconfig(api.url);
    const args = [
      ...bundleCommand(BUNDLE),
      "run",
      "--network=10.0.100.0/24",
      `--netns=${ns.name}`,
      `--kubeconfig=${kc.path}`,
      "--metrics-address=127.0.0.1:0",
      "--kube-proxy-health=off",
    ];

    const without = await runUntil(
      sandboxCommand(await unitProfile([UNIT]), args),
      () => new Promise(() => {}),
    );
    assert.deepEqual(without.code, 1, without.stderr);
    assert.match(without.stderr, /CAP_SYS_ADMIN/);
    assert.deepEqual(await ns.hostAddresses(), []);

    const withDropIn = await runUntil(
      sandboxCommand(await unitProfile([UNIT, NETNS_DROP_IN]), args),
      () => until(async () => (await ns.hostAddresses()).length === 2),
    );
    assert.deepEqual(await ns.hostAddresses(), ["10.0.100.30", "10.0.100.31"], withDropIn.stderr);
    assert.deepEqual(withDropIn.code, 0, withDropIn.stderr);
  } finally {
    await api.close();
  }
});

/**
 * World-readable files that a Debian-like router has under the paths the unit
 * hides; the test tries the first that the unconfined user nobody can read.
 * (The test's own permissions cannot read /etc or /var to look.)
 */
const HIDDEN_CANDIDATES = [
  "/etc/default/kube-gw",
  "/etc/ssh/ssh_config",
  "/var/lib/dpkg/status",
  "/var/log/dpkg.log",
  "/var/log/alternatives.log",
];

Deno.test("confined as kube-gw.service, ip -batch cannot read the files the unit hides, nor /etc/shadow", async () => {
  // What a compromised agent could still do with run: ["ip"]: `ip -batch FILE`
  // prints the first word of each line of FILE in its errors.
  const profile = await unitProfile([UNIT]);
  assert.deepEqual(profile.inaccessible.some((p) => p.endsWith("/etc/kube-gw")), true);
  const tryRead = async (p: typeof profile, file: string) => {
    const out = await new Deno.Command(sandboxCommand(p, ["ip", "-batch", file])[0], {
      args: sandboxCommand(p, ["ip", "-batch", file]).slice(1),
      stdin: "null",
      clearEnv: true,
      env: { PATH },
    }).output();
    return { code: out.code, stderr: decoder.decode(out.stderr) };
  };
  // The same sandbox without InaccessiblePaths= reads the file: the fence is the unit's.
  let hidden = "";
  let open = { code: 0, stderr: "" };
  for (const file of HIDDEN_CANDIDATES) {
    open = await tryRead({ ...profile, inaccessible: [] }, file);
    if (!/Cannot open file/.test(open.stderr)) {
      hidden = file;
      break;
    }
  }
  assert.deepEqual(hidden !== "", true, `none of ${HIDDEN_CANDIDATES.join(" ")} is readable here`);
  assert.deepEqual(
    profile.inaccessible.some((p) => hidden.startsWith(p.replace(/^-/, ""))),
    true,
    `${hidden} is under the unit's InaccessiblePaths=`,
  );
  assert.match(open.stderr, /Object ".*" is unknown|Command line is not complete/, open.stderr);
  const fenced = await tryRead(profile, hidden);
  assert.match(
    fenced.stderr,
    /Cannot open file ".*" for reading: Permission denied/,
    fenced.stderr,
  );
  const shadow = await tryRead(profile, "/etc/shadow");
  assert.match(shadow.stderr, /Cannot open file "\/etc\/shadow" for reading: Permission denied/);
});

Deno.test("the unit lets the agent bind the metrics port only and connect to localhost only (systemd applies it, not this emulation)", async () => {
  // SocketBind*= and IPAddress*= are cgroup BPF programs that only systemd attaches
  // (see test/support/procs/unit_sandbox.ts): this checks what the unit asks for.
  const d = await serviceDirectives([UNIT]);
  const all = (key: string) => d.filter(([k]) => k === key).map(([, v]) => v.trim());
  assert.deepEqual(all("SocketBindDeny"), ["any"]);
  assert.deepEqual(all("SocketBindAllow"), ["tcp:9472"]);
  assert.deepEqual(all("IPAddressDeny"), ["any"]);
  assert.deepEqual(all("IPAddressAllow"), ["localhost"]);
  const dropIn = await serviceDirectives([`${ROOT}scripts/kube-gw-apiserver.conf`]);
  assert.deepEqual(dropIn.map(([k]) => k), ["IPAddressAllow"]);
});

Deno.test("confined as kube-gw.service with SONiC's drop-in, the SONiC store writes CONFIG_DB through the socket", async () => {
  await using ns = await Netns.create("unitsonic");
  await using redis = await startRedis({ socketPerm: "777" });
  await seedSonicConfigDb(redis, 4);
  await using api = await apiServerIn(ns.name);
  {
    const url = api.url;
    await using kc = await readableKubeconfig(url);
    const profile = await unitProfile([UNIT, SONIC_DROP_IN]);
    const shipped = bundleCommand(BUNDLE);
    const at = shipped.indexOf(BUNDLE);
    const agent = sandboxCommand(profile, [
      ...shipped.slice(0, at),
      // The test socket's grant besides the shipped one (docs/sonic.md, Permissions).
      `--allow-read=${redis.socket}`,
      `--allow-write=${redis.socket}`,
      ...shipped.slice(at),
      "run",
      "--network=10.0.100.0/24",
      `--kubeconfig=${kc.path}`,
      "--kube-proxy-health=off",
      "--install-as=sonic",
      `--sonic-redis-socket=${redis.socket}`,
    ]);
    const entries = async () =>
      Object.keys(await redis.dump(4)).filter((k) =>
        k.startsWith("LOOPBACK_INTERFACE|Loopback1000|")
      )
        .sort();
    const result = await runUntil(
      ["ip", "netns", "exec", ns.name, ...agent],
      () => until(async () => (await entries()).length === 2),
    );
    assert.deepEqual(await entries(), [
      "LOOPBACK_INTERFACE|Loopback1000|10.0.100.30/32",
      "LOOPBACK_INTERFACE|Loopback1000|10.0.100.31/32",
    ], result.stderr);
    assert.deepEqual(result.code, 0, result.stderr);
    // Nothing on the namespace's lo: the store wrote CONFIG_DB only.
    assert.deepEqual(await ns.hostAddresses(), []);
  }
});
