import assert from "node:assert/strict";
import { ENV_VARS } from "../../lib/cli.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test("scripts/kube-gw.env documents every variable the agent reads, and no other", async () => {
  const text = await Deno.readTextFile(`${ROOT}scripts/kube-gw.env`);
  const named = new Set(
    [...text.matchAll(/\b(KUBEGW_[A-Z0-9_]+|KUBECONFIG|KUBERNETES_[A-Z0-9_]+|HOME|NODE_NAME)\b/g)]
      .map((m) => m[1]),
  );
  assert.deepEqual([...named].sort(), [...ENV_VARS].sort());
  // The only setting that is not commented out is the one without a default.
  const set = text.split("\n").filter((l) => /^[A-Z_]+=/.test(l)).map((l) => l.split("=")[0]);
  assert.deepEqual(set, ["KUBEGW_NETWORK"]);
});
