/**
 * The flags of the announce path and of LoadBalancer addresses: defaults,
 * environment variables (NODE_NAME from the downward API), and one-line
 * errors naming the flag or the variable.
 */
import assert from "node:assert/strict";
import { parseArgs } from "../../../lib/cli.ts";
import { parseConfig } from "../../../lib/agent/config.ts";
import { UsageError } from "../../../lib/base/flags.ts";
import { DEFAULT_CLASS, parseClassOptions } from "../../../lib/service/class.ts";

const NET = ["--network", "10.0.100.0/24"];

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
    assert.ok(!err.message.includes("\n"));
    return err.message;
  }
  throw new Error(`expected ${argv.join(" ")} to be refused`);
}

Deno.test("run, once and plan default to announcing what is ready, with a 2 s hold-down and kube-proxy's health", () => {
  for (const command of ["run", "once", "plan"]) {
    const c = configFrom([command, ...NET]);
    assert.equal(c.announce, "ready");
    assert.equal(c.announceDelayMs, 2000);
    assert.equal(c.nodeName, undefined);
    assert.equal(c.kubeProxyHealth, "http://127.0.0.1:10256/healthz");
    assert.deepEqual(c.classes, { class: "kube-gw.io/anycast", defaultClass: false });
    assert.equal(c.externalIPs, true);
  }
});

Deno.test("the announce flags take their values from the command line or the environment", () => {
  const c = configFrom([
    ...NET,
    "--announce=always",
    "--announce-delay=0",
    "--node-name=gw1.example",
    "--kube-proxy-health=off",
    "--class=example.com/lb",
    "--default-class",
    "--external-ips=false",
  ]);
  assert.equal(c.announce, "always");
  assert.equal(c.announceDelayMs, 0);
  assert.equal(c.nodeName, "gw1.example");
  assert.equal(c.kubeProxyHealth, undefined);
  assert.deepEqual(c.classes, { class: "example.com/lb", defaultClass: true });
  assert.equal(c.externalIPs, false);
  const e = configFrom(NET, {
    KUBEGW_ANNOUNCE: "always",
    KUBEGW_ANNOUNCE_DELAY: "500ms",
    KUBEGW_EXTERNAL_IPS: "0",
    KUBEGW_DEFAULT_CLASS: "1",
    KUBEGW_KUBE_PROXY_HEALTH: "http://10.0.0.1:10256/healthz",
  });
  assert.equal(e.announce, "always");
  assert.equal(e.announceDelayMs, 500);
  assert.equal(e.externalIPs, false);
  assert.equal(e.classes.defaultClass, true);
  assert.equal(e.kubeProxyHealth, "http://10.0.0.1:10256/healthz");
  // --external-ips alone means true.
  assert.equal(configFrom([...NET, "--external-ips"]).externalIPs, true);
});

Deno.test("the node name comes from the flag, else KUBEGW_NODE_NAME, else the downward API's NODE_NAME", () => {
  assert.equal(configFrom(NET, { NODE_NAME: "n1" }).nodeName, "n1");
  assert.equal(configFrom(NET, { NODE_NAME: "n1", KUBEGW_NODE_NAME: "n2" }).nodeName, "n2");
  assert.equal(configFrom([...NET, "--node-name=n3"], { KUBEGW_NODE_NAME: "n2" }).nodeName, "n3");
  assert.equal(
    usage(NET, { NODE_NAME: "Not A Node" }),
    'NODE_NAME: "Not A Node" is not a node name (a DNS subdomain)',
  );
});

Deno.test("bad announce values get one line naming the flag or the variable", () => {
  assert.equal(usage([...NET, "--announce=maybe"]), '--announce: "maybe" is not ready or always');
  assert.equal(
    usage(NET, { KUBEGW_ANNOUNCE: "sometimes" }),
    'KUBEGW_ANNOUNCE: "sometimes" is not ready or always',
  );
  assert.match(
    usage([...NET, "--announce-delay=soon"]),
    /^--announce-delay: "soon" is not a duration/,
  );
  assert.match(usage([...NET, "--announce-delay=2h"]), /^--announce-delay: "2h" is longer than/);
  assert.equal(
    usage([...NET, "--kube-proxy-health=ftp://x/healthz"]),
    '--kube-proxy-health: "ftp://x/healthz" is not an http(s) URL or off',
  );
  assert.match(
    usage(NET, { KUBEGW_KUBE_PROXY_HEALTH: "nope" }),
    /^KUBEGW_KUBE_PROXY_HEALTH: "nope" is not an http\(s\) URL or off/,
  );
  assert.match(
    usage([...NET, "--external-ips=perhaps"]),
    /^--external-ips: "perhaps" is not a boolean/,
  );
});

Deno.test("parseClassOptions: one parser of --class and --default-class for agent and controller", () => {
  assert.deepEqual(parseClassOptions({}, DEFAULT_CLASS), {
    class: "kube-gw.io/anycast",
    defaultClass: false,
  });
  assert.deepEqual(parseClassOptions({ class: "a.b/c", defaultClass: "true" }, DEFAULT_CLASS), {
    class: "a.b/c",
    defaultClass: true,
  });
  for (const bad of ["anycast", "Kube-gw.io/x", "a/b/c", "a.b/", "/x", "a.b/-x"]) {
    assert.throws(() => parseClassOptions({ class: bad }, DEFAULT_CLASS), (err: Error) => {
      assert.ok(err instanceof UsageError);
      assert.equal(
        err.message,
        `--class: ${
          JSON.stringify(bad)
        } is not a load-balancer class (a prefixed name like kube-gw.io/anycast)`,
      );
      return true;
    });
  }
  assert.throws(
    () => parseClassOptions({ class: "x", fromEnv: { class: "KUBEGW_CLASS" } }, DEFAULT_CLASS),
    /^UsageError: KUBEGW_CLASS: "x"/,
  );
});
