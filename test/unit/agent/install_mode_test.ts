import assert from "node:assert/strict";
import { parseArgs } from "../../../lib/cli.ts";
import { parseConfig } from "../../../lib/agent/config.ts";
import { UsageError } from "../../../lib/base/flags.ts";
import { CLAIMED_PROTOCOLS, parseRouteProtocol } from "../../../lib/agent/install_mode.ts";

function configFrom(argv: string[], env: Record<string, string> = {}) {
  const inv = parseArgs(argv, (n) => env[n], () => {});
  assert.ok(inv);
  return parseConfig(inv.options);
}

function usage(argv: string[], env: Record<string, string> = {}): string {
  try {
    configFrom(argv, env);
  } catch (err) {
    assert.ok(err instanceof UsageError, `expected a UsageError, got ${err}`);
    assert.ok(!err.message.includes("\n"), "the message is one line");
    return err.message;
  }
  throw new Error(`expected ${argv.join(" ")} to be refused`);
}

const NET = ["--network", "10.0.100.0/24"];

Deno.test("--install-as is address by default, with no route settings", () => {
  const config = configFrom(NET);
  assert.equal(config.installAs, "address");
  assert.equal(config.route, undefined);
});

Deno.test("--install-as route takes protocol 200 in main by default, or the flags, or the variables", () => {
  assert.deepEqual(configFrom([...NET, "--install-as", "route"]).route, {
    protocol: 200,
    table: "main",
  });
  const flags = configFrom([
    ...NET,
    "--install-as=route",
    "--route-protocol",
    "77",
    "--route-table",
    "1000",
  ]);
  assert.equal(flags.installAs, "route");
  assert.deepEqual(flags.route, { protocol: 77, table: "1000" });
  const env = configFrom(NET, {
    KUBEGW_INSTALL_AS: "route",
    KUBEGW_ROUTE_PROTOCOL: "150",
    KUBEGW_ROUTE_TABLE: "254",
  });
  assert.deepEqual(env.route, { protocol: 150, table: "main" });
});

Deno.test("drain takes --install-as too: it must know what to remove", () => {
  const inv = parseArgs(["drain", ...NET, "--install-as", "route"], () => undefined, () => {});
  assert.ok(inv);
  assert.equal(parseConfig(inv.options).installAs, "route");
});

Deno.test("--address-lifetime with --install-as route is refused in one line naming both", () => {
  assert.equal(
    usage([...NET, "--install-as", "route", "--address-lifetime", "90s"]),
    "--address-lifetime cannot be used with --install-as route: a route has no lifetime",
  );
  assert.equal(
    usage(NET, { KUBEGW_INSTALL_AS: "route", KUBEGW_ADDRESS_LIFETIME: "90s" }),
    "KUBEGW_ADDRESS_LIFETIME cannot be used with KUBEGW_INSTALL_AS route: a route has no lifetime",
  );
  // off is no lifetime: accepted.
  assert.equal(
    configFrom([...NET, "--install-as", "route", "--address-lifetime", "off"]).installAs,
    "route",
  );
});

Deno.test("bad install values are refused, naming the flag or the variable", () => {
  assert.equal(
    usage([...NET, "--install-as", "routes"]),
    '--install-as: "routes" is not address, route or sonic',
  );
  assert.equal(
    usage([...NET, "--install-as", "route", "--route-protocol", "256"]),
    '--route-protocol: "256" is not a protocol number (1 to 255)',
  );
  assert.equal(
    usage(NET, { KUBEGW_ROUTE_PROTOCOL: "0x10" }),
    'KUBEGW_ROUTE_PROTOCOL: "0x10" is not a protocol number (1 to 255)',
  );
  assert.equal(
    usage([...NET, "--route-protocol", "186"]),
    `--route-protocol: "186" is FRR's; kube-gw needs a number of its own`,
  );
  assert.equal(
    usage([...NET, "--route-protocol", "12"]),
    `--route-protocol: "12" is BIRD's; kube-gw needs a number of its own`,
  );
  assert.equal(
    usage([...NET, "--route-table", "local"]),
    '--route-table: "local" is not main or a table number (1 to 4294967295)',
  );
  assert.equal(usage([...NET, "--route-table", "255"]), '--route-table: "255" is the local table');
  assert.match(
    usage([...NET, "--install-as", "route", "--route-table", "200"]),
    /^--route-table: table 200 is the table route mode keeps the router's own way/,
  );
});

Deno.test("every protocol number FRR, BIRD or the kernel claims is refused, and 200 is not", () => {
  for (const n of [0, 1, 2, 3, 4, 11, 12, 42, ...Array.from({ length: 13 }, (_, i) => 186 + i)]) {
    assert.ok(CLAIMED_PROTOCOLS.has(n), `${n} is claimed`);
    if (n > 0) assert.throws(() => parseRouteProtocol("--route-protocol", String(n)), UsageError);
  }
  assert.equal(parseRouteProtocol("--route-protocol", "200"), 200);
  assert.equal(parseRouteProtocol("--route-protocol", "248"), 248);
});
