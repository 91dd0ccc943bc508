/**
 * The start command the operator documentation shows (`deno task start --
 * run ...`), run as written: the documented arguments unchanged, with only a
 * kubeconfig and a namespace appended so that it talks to a fake API server
 * and changes a throwaway namespace, not this host.
 *
 * @module
 */
import { demoSlice } from "../support/fakes/endpoint_slices.ts";
import assert from "node:assert/strict";
import { DEMO_SERVICE, FakeApiServer } from "../support/fakes/apiserver.ts";
import { LoggedProcess, writeKubeconfig } from "../support/procs/agent.ts";
import { Netns } from "../support/procs/netns.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** Every `deno task start run ...` command line (with or without `--`) in README.md and docs/*.md. */
function documentedStartCommands(): string[][] {
  const files = ["README.md"];
  try {
    for (const e of Deno.readDirSync(`${ROOT}docs`)) {
      if (e.name.endsWith(".md")) files.push(`docs/${e.name}`);
    }
  } catch {
    // No docs/ yet.
  }
  const found: string[][] = [];
  for (const f of files) {
    for (const line of Deno.readTextFileSync(`${ROOT}${f}`).split("\n")) {
      if (/^deno task start (-- )?run /.test(line)) found.push(line.trim().split(/\s+/));
    }
  }
  return found;
}

Deno.test("the documented deno task start command runs the agent as written", async () => {
  const commands = documentedStartCommands();
  assert.ok(commands.length > 0, "the docs show a deno task start command");
  for (const argv of commands) {
    const api = await FakeApiServer.start();
    try {
      api.create(DEMO_SERVICE);
      api.createObject("endpointslices", demoSlice());
      await using kc = await writeKubeconfig(api);
      await using ns = await Netns.create("readme");
      const extra = ["--kubeconfig", kc.path, "--netns", ns.name, "--metrics-address", "off"];
      // No kube-proxy here: its health would hold every address back after a boot.
      extra.push("--kube-proxy-health", "off");
      // deno task forwards SIGTERM to the agent it started; SIGKILL would orphan it.
      const agent = new LoggedProcess([...argv, ...extra], {
        env: { DENO_NO_UPDATE_CHECK: "1" },
      });
      try {
        await agent.waitForLine(/10\.0\.100\.30/, 60_000);
        assert.ok(!agent.lines.some((l) => /too many arguments/.test(l)), agent.tail());
        const held = await ns.hostAddresses();
        assert.ok(held.includes("10.0.100.30"), `${argv.join(" ")} holds ${held.join(", ")}`);
      } finally {
        const status = await agent.stop("SIGTERM");
        assert.equal(status.code, 0, agent.tail());
      }
    } finally {
      await api.close();
    }
  }
});

Deno.test("the documented start command with a garbage kubeconfig exits 2 with line and column", async () => {
  const [argv] = documentedStartCommands();
  const dir = await Deno.makeTempDir({ prefix: "kube-gw-test-" });
  try {
    await Deno.writeTextFile(`${dir}/kubeconfig`, "clusters: [\n  token: SECRET-abc\n");
    const out = await new Deno.Command(argv[0], {
      args: [...argv.slice(1), "--kubeconfig", `${dir}/kubeconfig`],
      cwd: ROOT,
      stdin: "null",
      clearEnv: true,
      env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", DENO_NO_UPDATE_CHECK: "1" },
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 2, stderr);
    assert.match(stderr, /kube-gw: Cannot parse kubeconfig ".*": .* at line \d+, column \d+\n/);
    assert.ok(!stderr.includes("SECRET"), stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
