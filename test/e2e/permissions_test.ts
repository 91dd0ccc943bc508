import assert from "node:assert/strict";
import { DEMO_SERVICE, FakeApiServer } from "../support/fake_apiserver.ts";
import { demoSlice } from "../support/endpoint_slices.ts";
import { Netns } from "../support/netns.ts";
import { bundleCommand, freePort, writeKubeconfig } from "../support/agent.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const decoder = new TextDecoder();

/** Bundles the planted entry (the real main.ts plus planted calls) like the shipped bundle. */
async function bundlePlanted(dir: string): Promise<string> {
  const output = `${dir}/planted.js`;
  const out = await new Deno.Command("deno", {
    args: [
      "bundle",
      "--quiet",
      "--platform=deno",
      "--output",
      output,
      "test/support/planted_entry.ts",
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`deno bundle failed: ${decoder.decode(out.stderr)}`);
  return output;
}

Deno.test("after start-up the agent, with the shipped flags, cannot run a shell, write a file, or read /etc/shadow", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kube-gw-planted-" });
  await using ns = await Netns.create("planted");
  const api = await FakeApiServer.start();
  try {
    const planted = await bundlePlanted(dir);
    await using kc = await writeKubeconfig(api, {});
    api.create(DEMO_SERVICE);
    api.createObject("endpointslices", demoSlice());
    const [cmd, ...args] = bundleCommand(planted);
    const out = await new Deno.Command(cmd, {
      args: [
        ...args,
        "run",
        "--network=10.0.100.0/24",
        `--netns=${ns.name}`,
        `--kubeconfig=${kc.path}`,
        `--metrics-address=127.0.0.1:${freePort()}`,
        "--kube-proxy-health=off",
      ],
      cwd: ROOT,
      stdin: "null",
      clearEnv: true,
      env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" },
    }).output();
    const stdout = decoder.decode(out.stdout);
    const line = stdout.split("\n").find((l) => l.startsWith("{"));
    if (!out.success || !line) {
      throw new Error(
        `planted run failed (${out.code}):\n${stdout}\n${decoder.decode(out.stderr)}`,
      );
    }
    // The agent really started: the Service's addresses are on lo.
    assert.deepEqual(await ns.hostAddresses(), ["10.0.100.30", "10.0.100.31"]);
    assert.deepEqual(JSON.parse(line), {
      // What it needs still works (so a "denied" below is not a broken harness).
      "run ip": "allowed",
      "query net": "granted",
      // Everything else is refused.
      "run /bin/sh": "denied",
      "run sh": "denied",
      "write /tmp": "denied",
      "write the kubeconfig": "denied",
      "read /etc/shadow": "denied",
      "read the kubeconfig": "denied",
      "read the service account token": "denied",
      "read /proc/self/environ": "denied",
      "env PATH": "denied",
      "env all": "denied",
      "sys hostname": "denied",
      "sys osRelease": "denied",
      "ffi dlopen": "denied",
      "query read /": "prompt",
      "query write": "prompt",
      "query run": "prompt",
      "query env": "denied",
      "query sys": "prompt",
      "query ffi": "prompt",
    });
  } finally {
    await api.close();
    await Deno.remove(dir, { recursive: true });
  }
});
