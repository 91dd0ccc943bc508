/**
 * `--address-lifetime` with the agent as a process: the agent keeps renewing
 * its addresses past their lifetime with no delete, and once it is killed the
 * kernel removes them within the lifetime.
 */
import { demoSlice } from "../support/fakes/endpoint_slices.ts";
import assert from "node:assert/strict";
import { DEMO_SERVICE } from "../support/fakes/apiserver.ts";
import { AddressMonitor } from "../support/procs/address_monitor.ts";
import { startAgent } from "../support/procs/agent.ts";
import { agentWorld } from "../support/procs/agent_world.ts";
import { statusOf } from "../support/procs/status.ts";

const LIFETIME_MS = 3000;
const ADDR = "10.0.100.30";

Deno.test("with --address-lifetime 3s the agent renews its addresses past the lifetime, and a killed agent's addresses expire within it", async () => {
  await using w = await agentWorld("lft");
  const { ns, api } = w;
  // Every address event in the namespace, timed here: adds, renewals, deletes.
  await using changes = await AddressMonitor.start(ns.name);
  const marker = "10.0.0.250"; // outside the managed network: no agent's
  await ns.ip("address", "add", `${marker}/32`, "dev", "lo");
  const events = (deleted: boolean) =>
    changes.history.filter((e) => e.address === ADDR && e.deleted === deleted);

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
  await changes.waitFor("the add event", () => events(false).length > 0);
  const added = events(false)[0].at;

  // Past the lifetime: four renewals (one a second), and one more than a lifetime and a half
  // after the add. However late a loaded machine makes them, the address must never lapse.
  await changes.waitFor(
    "four renewals and one past the lifetime",
    () => events(false).length >= 5 && events(false).some((e) => e.at - added > LIFETIME_MS * 1.5),
  );
  await changes.sync();
  assert.deepEqual(events(true), [], "a renewal never deletes");
  assert.ok((await ns.hostAddresses()).includes(ADDR), "the address outlived its lifetime");
  const times = events(false).map((e) => e.at);
  const gaps = times.slice(1).map((t, i) => t - times[i]);
  assert.ok(
    gaps.every((g) => g < LIFETIME_MS),
    `renewed within every lifetime: ${gaps.map(Math.round)} ms apart`,
  );
  const status = await statusOf(agent);
  // Counted once `ip` has returned, which may be after the monitor saw the change.
  const m = await status.until(
    () => status.metrics(),
    (m) => (m.get('kubegw_address_renewals_total{result="ok"}') ?? 0) >= 4,
  );
  assert.equal(m.get('kubegw_address_renewals_total{result="error"}'), 0);

  // SIGKILL: nothing runs on the way out; the kernel alone removes the addresses.
  await agent.stop("SIGKILL");
  // The agent is gone: once the marker is through, its last renewal is in the history.
  await changes.sync();
  const lastRenewal = events(false).at(-1)!.at;
  await changes.waitFor(
    "the kernel to remove the killed agent's addresses",
    () =>
      ["10.0.100.30", "10.0.100.31"].every((a) =>
        changes.history.some((e) => e.deleted && e.address === a)
      ),
    LIFETIME_MS + 10_000,
  );
  assert.equal(events(true).length, 1);
  const expiredAfter = events(true)[0].at - lastRenewal;
  // The kernel checks lifetimes on a timer that may run up to a second late, and both events
  // are timed when this process reads them.
  assert.ok(
    expiredAfter <= LIFETIME_MS + 2000,
    `expired ${Math.round(expiredAfter)}ms after the last renewal`,
  );
  assert.deepEqual(
    (await ns.hostAddresses()).filter((a) => a.startsWith("10.0.100.")),
    [],
    "the kernel removed every managed address",
  );
  assert.ok(
    (await ns.hostAddresses()).includes(marker),
    "an address outside the managed network stays",
  );
});
