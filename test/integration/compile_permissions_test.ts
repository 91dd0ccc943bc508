import assert from "node:assert/strict";
import { AGENT_SET, agentFlags } from "../../scripts/permissions.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const decoder = new TextDecoder();

/** The `"permissions":{...}` object deno compile wrote into a binary's metadata. */
function bakedPermissions(binary: Uint8Array): Record<string, unknown> {
  const text = decoder.decode(binary);
  const start = text.indexOf('"permissions":{');
  assert.ok(start >= 0, "no permissions in the compiled binary's metadata");
  let depth = 0;
  let i = start + '"permissions":'.length;
  for (; i < text.length; i++) {
    if (text[i] === "{") depth++;
    if (text[i] === "}" && --depth === 0) break;
  }
  return JSON.parse(text.slice(start + '"permissions":'.length, i + 1));
}

// deno compile appends its metadata to a runtime binary. Any ELF file will do
// to read that metadata back (this one is never run), so no denort download is
// needed: this check runs wherever the tests run.
async function compile(dir: string, name: string, flags: string[]): Promise<Uint8Array> {
  const output = `${dir}/${name}`;
  const out = await new Deno.Command("deno", {
    args: ["compile", "--quiet", "--no-check", ...flags, `--output=${output}`, `${dir}/entry.ts`],
    cwd: ROOT,
    env: { DENORT_BIN: "/bin/true" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`deno compile failed: ${decoder.decode(out.stderr)}`);
  return await Deno.readFile(output);
}

Deno.test("the flags the binary is compiled with bake exactly what deno compile -P=agent bakes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kube-gw-compile-" });
  try {
    await Deno.writeTextFile(`${dir}/entry.ts`, 'console.log("entry");\n');
    const fromSet = bakedPermissions(
      await compile(dir, "from-set", ["--config=deno.json", `-P=${AGENT_SET}`, "--no-prompt"]),
    );
    const fromFlags = bakedPermissions(
      await compile(dir, "from-flags", ["--no-config", ...agentFlags()]),
    );
    assert.deepEqual(fromFlags, fromSet);
    // And it is the narrow set: write only SONiC's Redis socket, no ffi, no sys, run only ip.
    assert.deepEqual(
      [fromSet.allow_write, fromSet.allow_ffi, fromSet.allow_sys, fromSet.allow_run],
      [["/var/run/redis/redis.sock"], null, null, ["ip"]],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
