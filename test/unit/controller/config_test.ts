import assert from "node:assert/strict";
import { parseArgs } from "../../../lib/cli.ts";
import { parseControllerConfig } from "../../../lib/controller/config.ts";
import { UsageError } from "../../../lib/base/flags.ts";

function parse(argv: string[], env: Record<string, string> = {}) {
  const inv = parseArgs(["controller", ...argv], (n) => env[n], () => {});
  assert.equal(inv?.command, "controller");
  return parseControllerConfig(inv!.options);
}

Deno.test("controller defaults: class kube-gw.io/anycast, leader election on, Lease in kube-system, 127.0.0.1:9473", () => {
  const c = parse(["--pool", "198.51.100.0/24"]);
  assert.deepEqual(c.classes, { class: "kube-gw.io/anycast", defaultClass: false });
  assert.equal(c.leaderElect, true);
  assert.equal(c.leaseNamespace, "kube-system");
  assert.deepEqual(c.metricsAddress, {
    hostname: "127.0.0.1",
    port: 9473,
    source: "--metrics-address",
  });
  assert.deepEqual(c.flagPool?.cidrs.map((x) => x.text), ["198.51.100.0/24"]);
  assert.equal(c.configMap, undefined);
});

Deno.test("controller flags and their environment variables, the flag winning", () => {
  const c = parse(["--leader-elect=false", "--default-class", "--pool", "198.51.100.0/24"], {
    KUBEGW_CLASS: "example.com/lb",
    KUBEGW_CONFIG: "kube-system/kube-gw-pools",
    KUBEGW_LEASE_NAMESPACE: "gw",
    KUBEGW_POOL: "203.0.113.0/24",
    KUBEGW_LEADER_ELECT: "true",
  });
  assert.deepEqual(c.classes, { class: "example.com/lb", defaultClass: true });
  assert.equal(c.leaderElect, false);
  assert.equal(c.leaseNamespace, "gw");
  assert.deepEqual(c.configMap, { namespace: "kube-system", name: "kube-gw-pools" });
  assert.deepEqual(c.flagPool?.cidrs.map((x) => x.text), ["198.51.100.0/24"]);
  assert.equal(
    parse([], { KUBEGW_POOL: "203.0.113.0/24,198.51.100.0/24" }).flagPool?.cidrs.length,
    2,
  );
  assert.equal(
    parse(["--pool=198.51.100.0/24"], { KUBEGW_LEADER_ELECT: "false" }).leaderElect,
    false,
  );
});

Deno.test("neither --pool nor --config is needed: the pools may all be AddressPool resources", () => {
  const c = parse([], {});
  assert.deepEqual([c.flagPool, c.configMap], [undefined, undefined]);
});

Deno.test("bad controller input is one line naming the flag or the variable", () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [["--pool", "198.51.100.1/24"], {}, /^--pool: /],
    [[], { KUBEGW_POOL: "nonsense" }, /^KUBEGW_POOL: /],
    [["--config", "kube-gw-pools"], {}, /^--config: "kube-gw-pools" is not NAMESPACE\/NAME/],
    [["--pool=198.51.100.0/24", "--class", "no class"], {}, /^--class: /],
    [["--pool=198.51.100.0/24"], { KUBEGW_LEADER_ELECT: "maybe" }, /^KUBEGW_LEADER_ELECT: /],
    [["--pool=198.51.100.0/24", "--lease-namespace", "Kube"], {}, /^--lease-namespace: /],
  ];
  for (const [argv, env, re] of cases) {
    assert.throws(() => parse(argv, env), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.match(e.message, re);
      assert.equal(e.message.includes("\n"), false);
      return true;
    });
  }
});
