import assert from "node:assert/strict";
import { ENV_VARS } from "../../lib/cli.ts";
import {
  agentEnvAllowList,
  agentFlags,
  permissionFlags,
  PermissionSetError,
} from "../../scripts/permissions.ts";

Deno.test("the agent may read exactly the environment variables the code reads (lib/cli.ts ENV_VARS)", () => {
  assert.deepEqual([...agentEnvAllowList()].sort(), [...ENV_VARS].sort());
});

// The shipped permission list, written out. Widening deno.json's agent set (or
// narrowing it) fails here first; test/e2e/permissions_test.ts shows the
// effect from outside.
Deno.test("the shipped flags are exactly this list: no -A, write only SONiC's Redis socket, no ffi, no sys, run only ip", () => {
  assert.deepEqual(agentFlags(), [
    "--no-prompt",
    "--allow-read=/,/var/run/secrets/kubernetes.io/serviceaccount,/var/run/redis/redis.sock",
    // A unix connect needs read and write on the socket; the address store gives write up at start.
    "--allow-write=/var/run/redis/redis.sock",
    "--allow-net",
    "--allow-env=" + [
      "KUBEGW_NETWORK",
      "KUBEGW_INTERFACE",
      "KUBEGW_NETNS",
      "KUBECONFIG",
      "KUBEGW_IN_K8S",
      "KUBEGW_LOG_LEVEL",
      "KUBEGW_LOG_FORMAT",
      "KUBEGW_RESYNC_INTERVAL",
      "KUBEGW_NAMESPACE",
      "KUBEGW_SELECTOR",
      "KUBEGW_METRICS_ADDRESS",
      "KUBEGW_KUBE_PROXY_HEALTH",
      "KUBEGW_ADDRESS_LIFETIME",
      "KUBEGW_INSTALL_AS",
      "KUBEGW_ROUTE_PROTOCOL",
      "KUBEGW_ROUTE_TABLE",
      "KUBEGW_API_STALE_AFTER",
      "KUBEGW_EXTERNAL_IPS",
      "KUBEGW_ANNOUNCE",
      "KUBEGW_ANNOUNCE_DELAY",
      "KUBEGW_ANNOUNCE_DAMPING",
      "KUBEGW_NODE_NAME",
      "NODE_NAME",
      "KUBEGW_DEBUG",
      "KUBEGW_CLASS",
      "KUBEGW_DEFAULT_CLASS",
      "KUBEGW_POOL",
      "KUBEGW_CONFIG",
      "KUBEGW_LEADER_ELECT",
      "KUBEGW_LEASE_NAMESPACE",

      "KUBEGW_SONIC_LOOPBACK",
      "KUBEGW_SONIC_REDIS_SOCKET",
      "KUBEGW_SONIC_DB",
      "HOME",
      "KUBERNETES_SERVICE_HOST",
      "KUBERNETES_SERVICE_PORT",
    ].join(","),
    "--ignore-env",
    "--allow-run=ip",
  ]);
});

Deno.test("a permission set translates into deno flags, every form of every kind", () => {
  assert.deepEqual(
    permissionFlags({
      read: ["/a", "/b"],
      write: false,
      net: true,
      env: { allow: ["A"], deny: ["B"], ignore: true },
      run: { allow: ["ip"], deny: true },
      sys: ["hostname"],
      ffi: [],
      import: { allow: ["example.com:443"] },
    }),
    [
      "--no-prompt",
      "--allow-read=/a,/b",
      "--allow-net",
      "--allow-env=A",
      "--deny-env=B",
      "--ignore-env",
      "--allow-run=ip",
      "--deny-run",
      "--allow-sys=hostname",
      "--allow-import=example.com:443",
    ],
  );
});

Deno.test("the translation refuses -A, unknown permissions and values it cannot pass on", () => {
  assert.throws(() => permissionFlags({ all: true }), PermissionSetError);
  assert.throws(() => permissionFlags({ sockets: true }), PermissionSetError);
  assert.throws(() => permissionFlags({ env: { allow: ["A"], prompt: true } as never }), /prompt/);
  assert.throws(() => permissionFlags({ run: { ignore: true } }), /--ignore-run/);
  assert.throws(() => permissionFlags({ read: ["/a,/b"] }), /cannot be a flag value/);
  assert.throws(() => permissionFlags({ read: "/" as never }), PermissionSetError);
});

Deno.test("the binary, deno task start and the tests' bundle all run with the same V8 settings", async () => {
  const { AGENT_V8_FLAG } = await import("../../scripts/permissions.ts");
  const { bundleCommand } = await import("../support/procs/agent.ts");
  const { default: config } = await import("../../deno.json", { with: { type: "json" } });
  assert.equal(AGENT_V8_FLAG, "--v8-flags=--max-semi-space-size=2,--heap-growing-percent=30");
  assert.ok(config.tasks.start.split(" ").includes(AGENT_V8_FLAG), config.tasks.start);
  assert.ok(bundleCommand("x.js").includes(AGENT_V8_FLAG));
});
