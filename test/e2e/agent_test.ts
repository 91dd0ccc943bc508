import assert from "node:assert/strict";
import { DEMO_SERVICE, type FakeApiServerOptions } from "../support/fakes/apiserver.ts";
import { AddressMonitor } from "../support/procs/address_monitor.ts";
import { runKubeGw, startAgent, writeKubeconfig } from "../support/procs/agent.ts";
import { agentWorld } from "../support/procs/agent_world.ts";
import { demoSlice } from "../support/fakes/endpoint_slices.ts";
import { statusOf } from "../support/procs/status.ts";

const fixture = (name: string) =>
  Deno.readTextFileSync(new URL(`../fixtures/${name}`, import.meta.url));

/** A namespace, a fake API server and a kubeconfig for it. */
async function world(opts: FakeApiServerOptions = {}) {
  const w = await agentWorld("e2e", opts);
  // The demo Service's pods: ready, so it is announced whenever a test creates it.
  w.api.createObject("endpointslices", demoSlice());
  return {
    ...w,
    args: (...extra: string[]) =>
      w.args(
        `--network=10.0.100.0/24`,
        // No kube-proxy here: its health would hold every address back after a boot.
        "--kube-proxy-health=off",
        ...extra,
      ),
    /** Creates the demo Service, starts the agent, and waits until it holds both addresses. */
    async demoAgent(...extra: string[]) {
      w.api.create(DEMO_SERVICE);
      const agent = startAgent(["run", ...this.args("--metrics-address=off", ...extra)]);
      await agent.waitForLine(/assuming address 10\.0\.100\.31/);
      return agent;
    },
  };
}

Deno.test("the demo Service becomes two /32s; hostile externalIPs change nothing and run nothing; deletion removes both", async () => {
  await using w = await world();
  const marker = `/tmp/kube-gw-e2e-${Deno.pid}`;
  w.api.create(DEMO_SERVICE);
  w.api.create({
    name: "hostile",
    externalIPs: [
      `10.0.100.40; touch ${marker}`,
      "-batch",
      "010.0.100.41",
      "10.9.9.9",
      "$(touch " + marker + ")",
    ],
  });
  await using agent = startAgent(["run", ...w.args("--metrics-address=off")]);
  await agent.waitForLine(/assuming address 10\.0\.100\.31/);
  assert.deepEqual(await w.ns.hostAddresses(), ["10.0.100.30", "10.0.100.31"]);
  for (const bad of ["10.0.100.40; touch", '"-batch"', '"010.0.100.41"', '"10.9.9.9"']) {
    await agent.waitForLine(
      new RegExp(`WARN refusing externalIP .*${bad.replace(/[.$()]/g, "\\$&")}`),
    );
  }
  await assert.rejects(Deno.stat(marker), Deno.errors.NotFound);
  // One warning per (Service, IP), not one per event.
  w.api.update({ name: "hostile", externalIPs: ["10.9.9.9"] });
  w.api.delete("nginx");
  await agent.waitForLine(/forfeiting address 10\.0\.100\.31/);
  assert.deepEqual(await w.ns.hostAddresses(), []);
  assert.equal(agent.lines.filter((l) => l.includes('"10.9.9.9"')).length, 1);
  assert.ok(!agent.lines.some((l) => l.includes("DEP0040") || l.includes("punycode")));
});

Deno.test("a restarted agent removes nothing that is still desired", async () => {
  await using w = await world();
  const first = await w.demoAgent();
  assert.equal((await first.stop("SIGTERM")).code, 0);
  assert.deepEqual(
    await w.ns.hostAddresses(),
    ["10.0.100.30", "10.0.100.31"],
    "SIGTERM leaves the addresses",
  );
  await using changes = await AddressMonitor.start(w.ns.name);
  await using second = startAgent(["run", ...w.args("--metrics-address=127.0.0.1:0")]);
  const status = await statusOf(second);
  // Ready means the first reconcile has run.
  await status.until(() => status.get("/readyz"), (r) => r.status === 200);
  const m = await status.metrics();
  assert.equal(m.get('kubegw_reconciles_total{result="noop"}'), 1);
  assert.equal(m.get('kubegw_reconciles_total{result="changed"}'), 0);
  // Every change the start made is in the history once the monitor's marker is.
  await changes.sync();
  assert.deepEqual(changes.history, [], "no address was deleted or added");
  assert.ok(!second.lines.some((l) => /assuming|forfeiting/.test(l)));
  assert.match(second.lines.join("\n"), /found 2 managed addresses on lo/);
});

Deno.test("SIGTERM and SIGINT stop the agent promptly and leave the addresses", async () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    await using w = await world();
    const agent = await w.demoAgent();
    const t0 = performance.now();
    const status = await agent.stop(signal);
    const took = performance.now() - t0;
    console.log(`${signal}: exited with ${status.code} after ${took.toFixed(0)} ms`);
    assert.equal(status.code, 0);
    assert.ok(took < 2000, `${signal} took ${took} ms`);
    assert.deepEqual(await w.ns.hostAddresses(), ["10.0.100.30", "10.0.100.31"]);
  }
});

Deno.test("the resync puts back an address deleted by hand", async () => {
  await using w = await world();
  await using agent = await w.demoAgent("--resync-interval=1s");
  await w.ns.ip("address", "del", "10.0.100.30/32", "dev", "lo");
  await agent.waitForLine(/assuming address 10\.0\.100\.30/, 10_000, agent.lines.length);
  assert.deepEqual(await w.ns.hostAddresses(), ["10.0.100.30", "10.0.100.31"]);
});

Deno.test("while the API server is down the addresses stay; when it returns the agent catches up", async () => {
  await using w = await world();
  await using agent = await w.demoAgent("--resync-interval=1s", "--metrics-address=127.0.0.1:0");
  const status = await statusOf(agent);
  await w.api.stop();
  await agent.waitForLine(/Kubernetes API .*retrying/);
  const clean = (await status.metrics()).get('kubegw_resyncs_total{result="clean"}')!;
  await status.until(
    () => status.metrics(),
    (m) => m.get('kubegw_resyncs_total{result="clean"}')! > clean,
  ); // a resync passes while the API is down
  assert.deepEqual(await w.ns.hostAddresses(), ["10.0.100.30", "10.0.100.31"]);
  w.api.delete("nginx");
  w.api.compact();
  await w.api.listen();
  await agent.waitForLine(/forfeiting address 10\.0\.100\.31/, 45_000);
  assert.deepEqual(await w.ns.hostAddresses(), []);
});

Deno.test("once, plan and drain do one job each and exit", async () => {
  await using w = await world();
  w.api.create(DEMO_SERVICE);
  await w.ns.ip("address", "add", "10.0.100.99/32", "dev", "lo");
  await w.ns.ip("address", "add", "192.0.2.1/32", "dev", "lo");

  const plan = await runKubeGw(["plan", ...w.args()]);
  assert.equal(plan.code, 0, plan.stderr);
  assert.match(plan.stdout, /^ACTION\s+ADDRESS\s+SOURCE\s+STATE$/m);
  assert.match(plan.stdout, /^add\s+10\.0\.100\.30\s+externalIP\s+announced \["default\/nginx"/m);
  assert.match(plan.stdout, /^remove\s+10\.0\.100\.99\s+-\s+not claimed by any Service$/m);
  assert.match(plan.stdout, /2 to add, 1 to remove, 0 withheld/);
  assert.deepEqual(
    await w.ns.hostAddresses(),
    ["10.0.100.99", "192.0.2.1"],
    "plan changes nothing",
  );

  const once = await runKubeGw(["once", ...w.args()]);
  assert.equal(once.code, 0, once.stderr);
  assert.deepEqual(await w.ns.hostAddresses(), ["10.0.100.30", "10.0.100.31", "192.0.2.1"]);

  const drain = await runKubeGw(["drain", `--network=10.0.100.0/24`, `--netns=${w.ns.name}`]);
  assert.equal(drain.code, 0, drain.stderr);
  assert.match(drain.stderr, /forfeiting address 10\.0\.100\.30/);
  assert.deepEqual(await w.ns.hostAddresses(), ["192.0.2.1"], "drain leaves what is not managed");
});

Deno.test("settings come from the environment variables as documented", async () => {
  await using w = await world();
  w.api.create(DEMO_SERVICE);
  const r = await runKubeGw(["once"], {
    KUBEGW_NETWORK: "10.0.100.0/24,2001:db8::/64",
    KUBEGW_NETNS: w.ns.name,
    KUBECONFIG: w.kc.path,
    KUBEGW_LOG_FORMAT: "json",
    KUBEGW_DEBUG: "1",
  });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await w.ns.hostAddresses(), ["10.0.100.30", "10.0.100.31"]);
  const records = r.stderr.trim().split("\n").map((l) => JSON.parse(l));
  assert.ok(records.some((x) => x.message === "using network 2001:db8::/64"));
  assert.ok(records.some((x) => x.level === "debug"), "KUBEGW_DEBUG=1 turns on debug lines");
});

Deno.test("bad input exits 2 with one line naming the flag and the value", async () => {
  const cases: [string[], RegExp][] = [
    [["--network", "10.0.100.0/33"], /^kube-gw: --network: "10\.0\.100\.0\/33" is not a CIDR/],
    [
      ["run", "--network", "10.0.100.0/24", "--interface", "lo; id"],
      /^kube-gw: --interface: "lo; id" is not/,
    ],
    [["run", "--bogus"], /^kube-gw: unknown option '--bogus'/],
    [
      ["run", "--network", "10.0.100.0/24", "--kubeconfig", "/nonexistent/kubeconfig"],
      /^kube-gw: --kubeconfig: "\/nonexistent\/kubeconfig" cannot be read/,
    ],
  ];
  for (const [args, re] of cases) {
    const r = await runKubeGw(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], re);
  }
});

Deno.test("the agent refuses to start next to a subnet that overlaps a managed network", async () => {
  await using w = await world();
  await w.ns.ip("address", "add", "10.0.100.1/24", "dev", "lo");
  const r = await runKubeGw(["run", ...w.args("--metrics-address=off")]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /kube-gw: the interface holds 10\.0\.100\.1\/24, which overlaps a managed network/,
  );
  assert.deepEqual(await w.ns.hostAddresses(), []);
});

Deno.test("a kubeconfig with TLS and a token in any directory works; JSON logs parse", async () => {
  await using w = await world({
    tls: { cert: fixture("server.crt"), key: fixture("server.key") },
    token: "s3cret",
  });
  await using kc = await writeKubeconfig(w.api, { token: "s3cret", ca: fixture("ca.crt") });
  w.api.create(DEMO_SERVICE);
  await using agent = startAgent([
    "run",
    "--network=10.0.100.0/24",
    `--netns=${w.ns.name}`,
    `--kubeconfig=${kc.path}`,
    "--metrics-address=off",
    "--kube-proxy-health=off",
    "--log-format=json",
  ]);
  await agent.waitForLine(/assuming address 10\.0\.100\.31/);
  const records = agent.lines.map((l) => JSON.parse(l));
  for (const rec of records) {
    assert.equal(typeof rec.time, "string");
    assert.equal(typeof rec.level, "string");
    assert.equal(typeof rec.message, "string");
  }
  assert.ok(
    records.some((r) =>
      r.message === "using network 10.0.100.0/24" && r.network === "10.0.100.0/24"
    ),
  );
  assert.ok(
    records.some((r) => r.message === "assuming address 10.0.100.30" && r.level === "info"),
  );
});
