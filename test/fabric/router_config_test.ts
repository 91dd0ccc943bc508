/**
 * The router configurations parse with the real daemons' own checkers:
 * `bird -p` for BIRD 2 and `vtysh -C` (dry run) for FRR. The fabric test runs
 * the FRR configs for real; BIRD's is checked here only.
 */

import assert from "node:assert/strict";
import { readRepoFile, renderTemplate } from "../support/fabric/router_config.ts";

const GATEWAY = { LOOPBACK: "10.0.0.20", ASN: "65001", UPLINK: "10.0.1.0" };
const decoder = new TextDecoder();

async function check(cmd: string, args: string[], text: string) {
  const dir = await Deno.makeTempDir({ prefix: "kgwt-routercfg-" });
  try {
    const path = `${dir}/router.conf`;
    await Deno.writeTextFile(path, text);
    const out = await new Deno.Command(cmd, {
      args: [...args, path],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: out.code, output: decoder.decode(out.stdout) + decoder.decode(out.stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("bird -p accepts the BIRD gateway config, and would refuse a broken one", async () => {
  const conf = renderTemplate(await readRepoFile("scripts/router/bird-gateway.conf"), GATEWAY);
  const good = await check("bird", ["-p", "-c"], conf);
  assert.deepEqual(good, { code: 0, output: "" });
  const bad = await check("bird", ["-p", "-c"], conf.replace("bfd on;", "bfd sometimes;"));
  assert.ok(bad.code !== 0, "bird -p accepted a broken config");
});

Deno.test("vtysh -C accepts the FRR gateway config, and would refuse a broken one", async () => {
  const conf = renderTemplate(await readRepoFile("scripts/router/frr-gateway.conf"), GATEWAY);
  const good = await check("vtysh", ["-C", "-f"], conf);
  assert.deepEqual(good.code, 0, good.output);
  const bad = await check("vtysh", ["-C", "-f"], conf.replace("timers bgp 1 3", "timers bgp soon"));
  assert.ok(bad.code !== 0, "vtysh -C accepted a broken config");
});

Deno.test("bird -p and vtysh -C accept the route-mode gateway configs, and would refuse broken ones", async () => {
  const bird = renderTemplate(
    await readRepoFile("scripts/router/bird-gateway-route.conf"),
    GATEWAY,
  );
  assert.deepEqual(await check("bird", ["-p", "-c"], bird), { code: 0, output: "" });
  const badBird = await check("bird", ["-p", "-c"], bird.replace("learn;", "learn sometimes;"));
  assert.ok(badBird.code !== 0, "bird -p accepted a broken config");
  const frr = renderTemplate(await readRepoFile("scripts/router/frr-gateway-route.conf"), GATEWAY);
  const good = await check("vtysh", ["-C", "-f"], frr);
  assert.deepEqual(good.code, 0, good.output);
  const badFrr = await check(
    "vtysh",
    ["-C", "-f"],
    frr.replace("redistribute kernel route-map", "redistribute kernels route-map"),
  );
  assert.ok(badFrr.code !== 0, "vtysh -C accepted a broken config");
});
