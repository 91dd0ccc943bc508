/**
 * Checks scripts/kube-gw.service with systemd's own tools, offline, as CI does:
 * `systemd-analyze verify` must print nothing (it exits 0 on unknown keys, so
 * any output counts as a failure), and `systemd-analyze security` must rate
 * the exposure below a bound (3.0 by default). Both run on a scratch root that
 * holds systemd's units, the unit as installed, and a stand-in for the binary
 * (verify checks that ExecStart= exists), once as shipped and once with the
 * --netns drop-in.
 *
 * Usage: deno task check-unit [--max EXPOSURE]
 *
 * @module
 */

const ROOT = new URL("../", import.meta.url).pathname;
const SYSTEM_UNITS = "/usr/lib/systemd/system";
const decoder = new TextDecoder();

async function analyze(args: string[]) {
  const out = await new Deno.Command("systemd-analyze", { args, stdin: "null" }).output();
  return {
    code: out.code,
    output: (decoder.decode(out.stdout) + decoder.decode(out.stderr)).trim(),
  };
}

async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    const src = `${from}/${e.name}`;
    const dst = `${to}/${e.name}`;
    // Aliases and .wants links are left out: verify needs the targets' files only.
    if (e.isDirectory) await copyDir(src, dst);
    else if (e.isFile) await Deno.copyFile(src, dst);
  }
}

/** Verifies the unit (with `dropIn`, if given) and returns its exposure score. */
async function check(label: string, dropIn?: string): Promise<number> {
  const root = await Deno.makeTempDir({ prefix: "kube-gw-unit-" });
  try {
    await copyDir(SYSTEM_UNITS, `${root}${SYSTEM_UNITS}`);
    await Deno.mkdir(`${root}/usr/local/bin`, { recursive: true });
    await Deno.writeTextFile(`${root}/usr/local/bin/kube-gw`, "#!/bin/sh\n", { mode: 0o755 });
    const dir = `${root}/etc/systemd/system`;
    await Deno.mkdir(`${dir}/kube-gw.service.d`, { recursive: true });
    await Deno.copyFile(`${ROOT}scripts/kube-gw.service`, `${dir}/kube-gw.service`);
    if (dropIn) {
      await Deno.copyFile(`${ROOT}scripts/${dropIn}`, `${dir}/kube-gw.service.d/${dropIn}`);
    }
    const verify = await analyze([
      "verify",
      "--man=no",
      `--root=${root}`,
      `${dir}/kube-gw.service`,
    ]);
    if (verify.code !== 0 || verify.output !== "") {
      throw new Error(`${label}: systemd-analyze verify (${verify.code}):\n${verify.output}`);
    }
    const security = await analyze([
      "security",
      "--offline=true",
      "--no-pager",
      `--root=${root}`,
      "kube-gw.service",
    ]);
    const m = /Overall exposure level for kube-gw\.service: ([0-9.]+)/.exec(security.output);
    if (!m) throw new Error(`${label}: no exposure level in:\n${security.output}`);
    console.log(`${label}: systemd-analyze verify: clean; systemd-analyze security: ${m[1]}`);
    return Number(m[1]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--max");
  const max = i >= 0 ? Number(Deno.args[i + 1]) : 3.0;
  try {
    const scores = [
      await check("kube-gw.service"),
      await check("kube-gw.service + kube-gw-netns.conf", "kube-gw-netns.conf"),
    ];
    const worst = Math.max(...scores);
    if (worst >= max) {
      console.error(`exposure ${worst} is not below ${max}`);
      Deno.exit(1);
    }
  } catch (err) {
    console.error((err as Error).message);
    Deno.exit(1);
  }
}
