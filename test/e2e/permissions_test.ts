import assert from "node:assert/strict";
import { DEMO_SERVICE, FakeApiServer } from "../support/fakes/apiserver.ts";
import { demoSlice } from "../support/fakes/endpoint_slices.ts";
import { Netns } from "../support/procs/netns.ts";
import { freePort, writeKubeconfig } from "../support/procs/agent.ts";
import { runPlanted } from "../support/procs/planted_run.ts";

Deno.test("after start-up the agent, with the shipped flags, cannot run a shell, write a file, or read /etc/shadow", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kube-gw-planted-" });
  await using ns = await Netns.create("planted");
  const api = await FakeApiServer.start();
  try {
    await using kc = await writeKubeconfig(api, {});
    api.create(DEMO_SERVICE);
    api.createObject("endpointslices", demoSlice());
    const report = await runPlanted(dir, [
      "run",
      "--network=10.0.100.0/24",
      `--netns=${ns.name}`,
      `--kubeconfig=${kc.path}`,
      `--metrics-address=127.0.0.1:${freePort()}`,
      "--kube-proxy-health=off",
    ]);
    // The agent really started: the Service's addresses are on lo.
    assert.deepEqual(await ns.hostAddresses(), ["10.0.100.30", "10.0.100.31"]);
    assert.deepEqual(report, {
      // What it needs still works (so a "denied" below is not a broken harness).
      "run ip": "allowed",
      "query net": "granted",
      // Everything else is refused.
      "run /bin/sh": "denied",
      "run sh": "denied",
      "write /tmp": "denied",
      "write the kubeconfig": "denied",
      "read /etc/shadow": "denied",
      "read the kubeconfig": "denied",
      "read the service account token": "denied",
      "read /proc/self/environ": "denied",
      "env PATH": "denied",
      "env all": "denied",
      "sys hostname": "denied",
      "sys osRelease": "denied",
      "ffi dlopen": "denied",
      "query read /": "prompt",
      "query write": "prompt",
      "query run": "prompt",
      "query env": "denied",
      "query sys": "prompt",
      "query ffi": "prompt",
    });
  } finally {
    await api.close();
    await Deno.remove(dir, { recursive: true });
  }
});
