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

/**
 * SONiC's own connected-routes maps, as multi-ASIC front-end, VOQ and chassis
 * devices have them: one `redistribute connected` per family already there.
 */
const SONIC_CONNECTED = [
  "route-map V4_CONNECTED_ROUTES permit 10",
  "exit",
  "route-map V6_CONNECTED_ROUTES permit 10",
  "exit",
  "router bgp 65100",
  " address-family ipv4 unicast",
  "  redistribute connected route-map V4_CONNECTED_ROUTES",
  " exit-address-family",
  " address-family ipv6 unicast",
  "  redistribute connected route-map V6_CONNECTED_ROUTES",
  " exit-address-family",
  "exit",
  "",
].join("\n");

Deno.test("vtysh -C accepts SONiC's snippet after the default template's part, with and without V4/V6_CONNECTED_ROUTES, applied twice", async () => {
  const base = await readRepoFile("test/support/fabric/frr-sonic-base.conf");
  const snippet = renderTemplate(await readRepoFile("scripts/router/frr-sonic.conf"), {
    ASN: "65100",
  });
  for (const conf of [base + snippet, base + SONIC_CONNECTED + snippet, base + snippet + snippet]) {
    const r = await check("vtysh", ["-C", "-f"], conf);
    assert.equal(r.code, 0, r.output);
  }
  const bad = await check("vtysh", ["-C", "-f"], base + snippet.replace("le 32", "le 33"));
  assert.ok(bad.code !== 0, "vtysh -C accepted a broken snippet");
});
