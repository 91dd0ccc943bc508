/**
 * `--address-lifetime` with the agent as a process: the agent keeps renewing
 * its addresses past their lifetime with no delete, and once it is killed the
 * kernel removes them within the lifetime.
 */
import { demoSlice } from "../support/fakes/endpoint_slices.ts";
import assert from "node:assert/strict";
import { DEMO_SERVICE } from "../support/fakes/apiserver.ts";
import { IpMonitor } from "../support/procs/netns.ts";
import { startAgent } from "../support/procs/agent.ts";
import { agentWorld } from "../support/procs/agent_world.ts";
import { statusOf } from "../support/procs/status.ts";
import { waitFor } from "../support/wait.ts";

const LIFETIME_MS = 3000;
const ADDR = "10.0.100.30";

Deno.test("with --address-lifetime 3s the agent renews its addresses past the lifetime, and a killed agent's addresses expire within it", async () => {
  await using w = await agentWorld("lft");
  const { ns, api } = w;
  // Every address event in the namespace, timed here: adds, renewals, deletes.
  await using monitor = new IpMonitor(ns.name, "address", { oneline: true });
  const marker = "10.0.0.250"; // outside the managed network: no agent's
  await ns.ip("address", "add", `${marker}/32`, "dev", "lo");
  await waitFor("ip monitor to run", () => monitor.lines.some((l) => l.text.includes(marker)));
  const events = (deleted: boolean) =>
    monitor.lines.filter((l) =>
      l.text.includes(` ${ADDR}/32`) && l.text.startsWith("Deleted") === deleted
    );

  api.create(DEMO_SERVICE);
  api.createObject("endpointslices", demoSlice());
  await using agent = startAgent([
    "run",
    ...w.args(
      "--network=10.0.100.0/24",
      "--metrics-address=127.0.0.1:0",
      "--address-lifetime=3s",
      "--kube-proxy-health=off",
    ),
  ]);
  await agent.waitForLine(/assuming address 10\.0\.100\.30/);
  await waitFor("the add event", () => events(false).length > 0);
  const added = events(false)[0].at;

  // Past the lifetime: an event (a renewal) more than a lifetime and a half after the add.
  await waitFor(
    "renewals past the lifetime",
    () => events(false).some((e) => e.at - added > LIFETIME_MS * 1.5),
    LIFETIME_MS * 3,
  );
  assert.deepEqual(events(true), [], "a renewal never deletes");
  assert.ok((await ns.hostAddresses()).includes(ADDR), "the address outlived its lifetime");
  const renewals = events(false).length - 1;
  assert.ok(renewals >= 4, `renewed every second: ${renewals} renewals`);
  const status = await statusOf(agent);
  const m = await status.metrics();
  assert.ok(
    (m.get('kubegw_address_renewals_total{result="ok"}') ?? 0) >= 4,
    `renewals counted: ${m.get('kubegw_address_renewals_total{result="ok"}')}`,
  );
  assert.equal(m.get('kubegw_address_renewals_total{result="error"}'), 0);

  // SIGKILL: nothing runs on the way out; the kernel alone removes the addresses.
  const lastRenewal = events(false).at(-1)!.at;
  await agent.stop("SIGKILL");
  await waitFor(
    "the kernel to remove the killed agent's addresses",
    async () => !(await ns.hostAddresses()).some((a) => a === ADDR || a === "10.0.100.31"),
    LIFETIME_MS + 2000,
    50,
  );
  await waitFor("the Deleted event", () => events(true).length === 1, 2000);
  const expiredAfter = events(true)[0].at - lastRenewal;
  assert.ok(
    expiredAfter <= LIFETIME_MS + 1000,
    `expired ${Math.round(expiredAfter)}ms after the last renewal`,
  );
  assert.ok(
    (await ns.hostAddresses()).includes(marker),
    "an address outside the managed network stays",
  );
});
