/**
 * On a SONiC switch (detected from /etc/sonic/sonic_version.yml) the agent
 * with the `address` store warns, once, that the ASIC will not send the
 * addresses' traffic to the CPU; with `--install-as sonic` it does not. The
 * bundle runs with the shipped flags in a private mount namespace whose /etc
 * is an overlay holding that file, so this machine's /etc is untouched.
 */
import assert from "node:assert/strict";
import { BUNDLE, bundleCommand } from "../support/procs/agent.ts";
import { Netns } from "../support/procs/netns.ts";

const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const decoder = new TextDecoder();

/** Runs the bundle's `args` with /etc/sonic/sonic_version.yml present (or not); returns stderr. */
async function onSwitch(
  sonic: boolean,
  args: readonly string[],
): Promise<{ code: number; stderr: string }> {
  const dir = await Deno.makeTempDir({ prefix: "kube-gw-sonic-etc-" });
  try {
    await Deno.mkdir(`${dir}/upper`);
    await Deno.mkdir(`${dir}/work`);
    const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
    const script = [
      "set -e",
      `mount -t overlay overlay -o lowerdir=/etc,upperdir=${dir}/upper,workdir=${dir}/work /etc`,
      ...(sonic
        ? [
          "mkdir -p /etc/sonic",
          "echo \"build_version: 'SONiC.202405.0'\" > /etc/sonic/sonic_version.yml",
        ]
        : []),
      `exec ${[...bundleCommand(BUNDLE), ...args].map(quote).join(" ")}`,
    ].join("\n");
    const out = await new Deno.Command("unshare", {
      args: ["--mount", "--propagation", "private", "sh", "-c", script],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      clearEnv: true,
      env: { PATH },
    }).output();
    return { code: out.code, stderr: decoder.decode(out.stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("the address store on a SONiC switch warns once; elsewhere, or with --install-as sonic, it does not", async () => {
  await using ns = await Netns.create("sonicdet");
  const drain = ["drain", "--network=10.0.100.0/24", `--netns=${ns.name}`];
  const sonic = await onSwitch(true, drain);
  assert.equal(sonic.code, 0, sonic.stderr);
  const warnings = sonic.stderr.split("\n").filter((l) => /this is a SONiC switch/.test(l));
  assert.equal(warnings.length, 1, sonic.stderr);
  assert.match(
    warnings[0],
    /WARN.*the ASIC will not send their traffic to the CPU; use --install-as sonic/,
  );
  const plain = await onSwitch(false, drain);
  assert.equal(plain.code, 0, plain.stderr);
  assert.doesNotMatch(plain.stderr, /SONiC/);
  // The SONiC store: no warning (it fails here for want of SONiC's Redis, which is not the point).
  const store = await onSwitch(true, ["drain", "--network=10.0.100.0/24", "--install-as=sonic"]);
  assert.doesNotMatch(store.stderr, /this is a SONiC switch/);
  assert.match(store.stderr, /cannot connect to Redis at \/var\/run\/redis\/redis\.sock/);
});
