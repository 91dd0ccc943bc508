import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { DEMO_SERVICE, FakeApiServer } from "../support/fake_apiserver.ts";
import { Netns } from "../support/netns.ts";
import { startAgent, writeKubeconfig } from "../support/agent.ts";

Deno.test("the demo Service appears as two /32s on lo and leaves when deleted", async () => {
  await using ns = await Netns.create("demo");
  const api = await FakeApiServer.start();
  try {
    await using kc = await writeKubeconfig(api, {});
    api.create(DEMO_SERVICE);
    await using agent = startAgent([
      "run",
      "--network=10.0.100.0/24",
      `--netns=${ns.name}`,
      `--kubeconfig=${kc.path}`,
      "--metrics-address=off",
    ]);
    await agent.waitForLine(/assuming address 10\.0\.100\.31/);
    assertEquals(await ns.hostAddresses(), ["10.0.100.30", "10.0.100.31"]);
    api.delete("nginx");
    await agent.waitForLine(/forfeiting address 10\.0\.100\.31/);
    assertEquals(await ns.hostAddresses(), []);
  } finally {
    await api.close();
  }
});
