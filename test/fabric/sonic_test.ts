/**
 * The fabric through the SONiC store: each gateway's agent runs with
 * `--install-as sonic` against its own CONFIG_DB (one redis-server, a
 * database per gateway), a stand-in for intfmgrd mirrors the entries into
 * `Loopback1000` of the gateway's namespace, and the gateway's FRR gets the
 * shipped SONiC snippet through the shipped apply script. The leaf must learn
 * both Service addresses with a next hop per gateway, the client's requests
 * must succeed, after a drain of one gateway too, and a deletion must
 * withdraw them. Prints one `SONIC_FABRIC {json}` line with the requests made
 * and failed.
 */

import assert from "node:assert/strict";
import { demoSlice } from "../support/fakes/endpoint_slices.ts";
import { BUNDLE, bundleCommand, LoggedProcess, writeKubeconfig } from "../support/procs/agent.ts";
import { FABRIC, Fabric, type GatewayName, gatewayOf } from "../support/fabric/fabric.ts";
import { DEMO_SERVICE, FakeApiServer } from "../support/fakes/apiserver.ts";
import type { ServiceObject } from "../support/fabric/kube_proxy.ts";
import type { FibView } from "../support/fabric/route_monitor.ts";
import { repoPath } from "../support/fabric/router_config.ts";
import { seedSonicConfigDb, startRedis } from "../support/procs/redis.ts";
import { startIntfmgrd } from "../support/procs/intfmgrd.ts";

const VIPS = ["10.0.100.30/32", "10.0.100.31/32"];
const TARGETS: readonly [string, number][] = [
  ["10.0.100.30", 80],
  ["10.0.100.31", 80],
  ["10.0.100.30", 81],
];
const GWS: readonly GatewayName[] = ["gw1", "gw2"];
const DB: Record<GatewayName, number> = { gw1: 4, gw2: 5 };
const LOOPBACK = "Loopback1000";

function hopsAre(fib: FibView, dst: string, want: readonly string[]): boolean {
  const got = fib.get(dst);
  return got !== undefined && got.length === want.length && want.every((h) => got.includes(h));
}

/** The shipped command plus the grant for the test socket (docs/sonic.md, Permissions). */
function agentCommand(socket: string, args: readonly string[]): string[] {
  const shipped = bundleCommand(BUNDLE);
  const at = shipped.indexOf(BUNDLE);
  return [
    ...shipped.slice(0, at),
    `--allow-read=${socket}`,
    `--allow-write=${socket}`,
    ...shipped.slice(at),
    ...args,
  ];
}

Deno.test("fabric through the SONiC store: CONFIG_DB entries, intfmgrd's netdev, the SONiC FRR snippet, ECMP, requests, a drain", async (t) => {
  await using fabric = await Fabric.start();
  await using redis = await startRedis();
  const api = await FakeApiServer.start();
  const requests = { made: 0, failed: 0, byGateway: { gw1: 0, gw2: 0 } as Record<string, number> };
  const probe = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const [host, port] = TARGETS[i % TARGETS.length];
      const r = await fabric.probe.get(host, port);
      requests.made++;
      if (!r.ok) {
        requests.failed++;
        continue;
      }
      const gw = gatewayOf((r.body ?? "").trim().split(" ")[1]);
      if (gw) requests.byGateway[gw]++;
    }
  };
  const stopping: AsyncDisposable[] = [];
  try {
    for (const gw of GWS) {
      await seedSonicConfigDb(redis, DB[gw]);
      stopping.push(
        startIntfmgrd({
          socket: redis.socket,
          db: DB[gw],
          loopback: LOOPBACK,
          ns: { ip: (...a: string[]) => fabric.ip(gw, ...a) },
        }),
      );
      // The shipped apply script, with the fabric's vtysh and ASN in place of the bgp container's.
      const out = await new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          fabric.ns(gw),
          "sh",
          repoPath("scripts/sonic/kube-gw-frr.sh"),
          repoPath("scripts/router/frr-sonic.conf"),
        ],
        env: {
          VTYSH: `vtysh --vty_socket ${fabric.runDir}/frr-${gw}`,
          CONFIG_ASN: `echo ${FABRIC.asn.gateways}`,
        },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.ok(out.success, text);
      assert.ok(!/% ?(Unknown|Ambiguous|Command incomplete)/.test(text), text);
    }
    await using kc = await writeKubeconfig(api, {});
    const args = (gw: GatewayName, command: string) => [
      command,
      `--network=${FABRIC.serviceNetwork}`,
      "--install-as=sonic",
      `--sonic-redis-socket=${redis.socket}`,
      `--sonic-db=${DB[gw]}`,
      ...(command === "run"
        ? [
          `--kubeconfig=${kc.path}`,
          `--node-name=${gw}`,
          `--kube-proxy-health=${fabric.kubeProxyHealth(gw).url}`,
          "--metrics-address=off",
        ]
        : []),
    ];
    const agents = GWS.map((gw) => new LoggedProcess(agentCommand(redis.socket, args(gw, "run"))));
    stopping.push(...agents);
    await Promise.all(agents.map((a) => a.waitForLine(/first list complete/, 30_000)));

    await t.step("the Service's addresses reach the leaf with a next hop per gateway", async () => {
      api.createObject("endpointslices", demoSlice());
      const svc = api.create(DEMO_SERVICE) as unknown as ServiceObject;
      await fabric.programKubeProxy(svc);
      await fabric.monitor.waitFor(
        (fib) => VIPS.every((v) => hopsAre(fib, v, [FABRIC.gw1.uplink, FABRIC.gw2.uplink])),
        10_000,
        "both Service addresses with a next hop per gateway",
      );
      for (const gw of GWS) {
        const held = JSON.parse(
          await fabric.ip(gw, "-json", "address", "show", "dev", LOOPBACK),
        ) as { addr_info: { local: string; scope: string }[] }[];
        const global = held[0].addr_info.filter((a) => a.scope !== "link");
        assert.deepEqual(global.map((a) => a.local).sort(), [
          "10.0.100.30",
          "10.0.100.31",
        ]);
        // Not on lo: the ASIC would not send that to the CPU.
        assert.ok(!(await fabric.ip(gw, "address", "show", "dev", "lo")).includes("10.0.100.3"));
      }
    });

    await t.step("the client's requests succeed, through both gateways", async () => {
      await probe(60);
      assert.equal(requests.failed, 0, JSON.stringify(requests));
      assert.ok(requests.byGateway.gw1 > 0 && requests.byGateway.gw2 > 0, JSON.stringify(requests));
    });

    await t.step(
      "after kube-gw drain on gw1 every route goes through gw2, and no request fails",
      async () => {
        // As an operator would: stop the service, then drain.
        await agents[0].stop("SIGTERM");
        const drain = new LoggedProcess(agentCommand(redis.socket, args("gw1", "drain")));
        stopping.push(drain);
        assert.equal((await drain.status).code, 0, drain.lines.join("\n"));
        await fabric.monitor.waitFor(
          (fib) => VIPS.every((v) => hopsAre(fib, v, [FABRIC.gw2.uplink])),
          10_000,
          "both Service addresses through gw2 only",
        );
        const before = requests.failed;
        await probe(30);
        assert.equal(requests.failed, before, JSON.stringify(requests));
      },
    );

    await t.step("deleting the Service withdraws its addresses", async () => {
      api.delete(DEMO_SERVICE.name);
      await fabric.monitor.waitFor(
        (fib) => VIPS.every((v) => !fib.has(v)),
        10_000,
        "no route for a Service address",
      );
    });
    console.log(`SONIC_FABRIC ${JSON.stringify(requests)}`);
  } finally {
    for (const s of stopping.reverse()) await s[Symbol.asyncDispose]();
    await api.close();
  }
});
