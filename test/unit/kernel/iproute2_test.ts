import assert from "node:assert/strict";
import { batchScript, IpRoute2, parseAddressJson } from "../../../lib/kernel/iproute2.ts";
import { IpError } from "../../../lib/kernel/ip_command.ts";
import type { Spawn } from "../../../lib/kernel/spawn.ts";

const LO_JSON = JSON.stringify([
  {},
  {
    ifindex: 1,
    ifname: "lo",
    addr_info: [
      { family: "inet", local: "127.0.0.1", prefixlen: 8, scope: "host" },
      { family: "inet", local: "10.0.100.30", prefixlen: 32, scope: "global" },
      { family: "inet6", local: "::1", prefixlen: 128 },
      { family: "inet6", local: "2001:db8::30", prefixlen: 128 },
    ],
  },
  {},
]);

function recorder(results: { code?: number; stdout?: string; stderr?: string }[] = []) {
  const calls: { argv: readonly string[]; stdin?: string }[] = [];
  const spawn: Spawn = (argv, stdin) => {
    calls.push({ argv, stdin });
    const r = results.shift() ?? {};
    return Promise.resolve({ code: r.code ?? 0, stdout: r.stdout ?? "", stderr: r.stderr ?? "" });
  };
  return { calls, spawn };
}

Deno.test("parseAddressJson reads addresses and skips empty entries", () => {
  assert.deepEqual(parseAddressJson(LO_JSON), [
    { family: 4, local: "127.0.0.1", prefixlen: 8 },
    { family: 4, local: "10.0.100.30", prefixlen: 32 },
    { family: 6, local: "::1", prefixlen: 128 },
    { family: 6, local: "2001:db8::30", prefixlen: 128 },
  ]);
  assert.deepEqual(parseAddressJson("[]"), []);
  assert.throws(() => parseAddressJson("{}"), SyntaxError);
  assert.throws(() => parseAddressJson("Device does not exist"), SyntaxError);
});

Deno.test("batchScript adds before it removes, with host prefixes per family", () => {
  assert.equal(
    batchScript({ add: ["10.0.100.30", "2001:db8::30"], remove: ["10.0.100.99"] }, "lo"),
    "address replace 10.0.100.30/32 dev lo\n" +
      "address replace 2001:db8::30/128 dev lo\n" +
      "address del 10.0.100.99/32 dev lo\n",
  );
});

Deno.test("IpRoute2 reads with ip -json and applies a whole plan with one ip -batch process", async () => {
  const { calls, spawn } = recorder([{ stdout: LO_JSON }]);
  const ip = new IpRoute2({ device: "lo", spawn });
  const addrs = await ip.read();
  assert.equal(addrs.length, 4);
  const add = Array.from({ length: 1000 }, (_, i) => `10.0.${100 + (i >> 8)}.${i & 255}`);
  await ip.apply({ add, remove: ["10.0.100.99"] });
  assert.equal(calls.length, 2);
  assert.equal(ip.spawned, 2);
  assert.deepEqual(calls[0].argv, ["ip", "-json", "address", "show", "dev", "lo"]);
  assert.deepEqual(calls[1].argv, ["ip", "-force", "-batch", "-"]);
  assert.equal(calls[1].stdin!.split("\n").filter(Boolean).length, 1001);
});

Deno.test("IpRoute2 runs every command in the network namespace it was given", async () => {
  const { calls, spawn } = recorder([{ stdout: "[]" }]);
  const ip = new IpRoute2({ device: "lo", netns: "asic0", spawn });
  await ip.read();
  await ip.apply({ add: ["10.0.100.30"], remove: [] });
  assert.deepEqual(calls.map((c) => c.argv.slice(0, 3)), [["ip", "-n", "asic0"], [
    "ip",
    "-n",
    "asic0",
  ]]);
});

Deno.test("IpRoute2 starts no process for an empty plan", async () => {
  const { calls, spawn } = recorder();
  await new IpRoute2({ device: "lo", spawn }).apply({ add: [], remove: [] });
  assert.equal(calls.length, 0);
});

Deno.test("IpRoute2 errors say what is wrong: missing ip, interface, namespace, capability", async () => {
  const missing = new IpRoute2({
    device: "lo",
    spawn: () => Promise.reject(new Deno.errors.NotFound("No such file or directory (os error 2)")),
  });
  await assert.rejects(
    missing.read(),
    (e: unknown) =>
      e instanceof IpError && e.kind === "missing" && /install iproute2/.test(e.message) &&
      e.cause instanceof Deno.errors.NotFound,
  );

  const cases: [string, string, RegExp][] = [
    ['Device "lo0" does not exist.\n', "no_device", /interface "lo0" does not exist/],
    ['Cannot open network namespace "asic9": No such file or directory\n', "no_netns", /namespace/],
    ["RTNETLINK answers: Operation not permitted\n", "no_permission", /CAP_NET_ADMIN/],
    [
      'Error: inet prefix is expected rather than "x".\nCommand failed -:1\n',
      "failed",
      /ip -force -batch - exited with 2: .*inet prefix is expected/,
    ],
  ];
  for (const [stderr, kind, re] of cases) {
    const { spawn } = recorder([{ code: stderr.startsWith("Device") ? 1 : 2, stderr }]);
    const ip = new IpRoute2({ device: "lo0", spawn });
    await assert.rejects(
      ip.apply({ add: ["10.0.100.30"], remove: [] }),
      (e: unknown) =>
        e instanceof IpError && e.kind === kind && re.test(e.message) && e.stderrTail !== undefined,
      kind,
    );
  }
});

Deno.test("parseAddressJson hands over canonical addresses whatever form ip printed", () => {
  const json = JSON.stringify([{
    addr_info: [
      { family: "inet6", local: "::10.0.100.5", prefixlen: 128 },
      { family: "inet6", local: "2001:DB8:0:0::10", prefixlen: 128 },
      { family: "inet", local: "10.0.100.5", prefixlen: 32 },
    ],
  }]);
  assert.deepEqual(parseAddressJson(json).map((a) => a.local), [
    "::a00:6405",
    "2001:db8::10",
    "10.0.100.5",
  ]);
});

Deno.test("with a lifetime, adds and renewals carry valid_lft and preferred_lft, removals do not", async () => {
  assert.equal(
    batchScript({ add: ["10.0.100.30"], remove: ["10.0.100.99"] }, "lo", { lifetimeSeconds: 90 }),
    "address replace 10.0.100.30/32 dev lo valid_lft 90 preferred_lft 90\n" +
      "address del 10.0.100.99/32 dev lo\n",
  );
  const { calls, spawn } = recorder();
  const ip = new IpRoute2({ device: "lo", netns: "gw", spawn, lifetimeSeconds: 9 });
  await ip.apply({ add: ["2001:db8::30"], remove: [] });
  await ip.renew(new Set(["10.0.100.30", "2001:db8::30"]));
  await ip.renew([]);
  assert.equal(calls.length, 2, "one process per renewal, none for an empty one");
  assert.deepEqual(calls[1].argv, ["ip", "-n", "gw", "-force", "-batch", "-"]);
  assert.equal(
    calls[1].stdin,
    "address replace 10.0.100.30/32 dev lo valid_lft 9 preferred_lft 9\n" +
      "address replace 2001:db8::30/128 dev lo valid_lft 9 preferred_lft 9\n",
  );
  assert.match(calls[0].stdin ?? "", /^address replace 2001:db8::30\/128 dev lo valid_lft 9 /);
});

Deno.test("without a lifetime, renew makes the addresses permanent, and starts nothing for none", async () => {
  const { calls, spawn } = recorder();
  const ip = new IpRoute2({ device: "lo", spawn });
  await ip.renew([]);
  assert.equal(calls.length, 0);
  await ip.renew(["10.0.100.30"]);
  assert.equal(
    calls[0].stdin,
    "address replace 10.0.100.30/32 dev lo valid_lft forever preferred_lft forever\n",
  );
});

Deno.test("parseAddressJson reads an address with a finite lifetime like any other, and notes it", () => {
  const text = JSON.stringify([{
    ifname: "lo",
    addr_info: [{
      family: "inet",
      local: "10.0.100.30",
      prefixlen: 32,
      scope: "global",
      dynamic: true,
      valid_life_time: 87,
      preferred_life_time: 87,
    }],
  }]);
  assert.deepEqual(parseAddressJson(text), [
    { family: 4, local: "10.0.100.30", prefixlen: 32, expires: true },
  ]);
  const forever = text.replaceAll(":87", ":4294967295");
  assert.deepEqual(parseAddressJson(forever), [{ family: 4, local: "10.0.100.30", prefixlen: 32 }]);
});
