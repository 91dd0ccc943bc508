/**
 * The controller takes its connection from the same place as the agent:
 * from its flags and `KUBECONFIG` to the connection, a list of kubeconfig
 * files is merged whole, not cut to its first file.
 */
import assert from "node:assert/strict";
import { loadConnection } from "../../../lib/kube/connect.ts";
import { parseArgs } from "../../../lib/cli.ts";
import { parseControllerConfig } from "../../../lib/controller/config.ts";

/** The first file names the cluster and the user; only the second sets a context. */
const files: Record<string, string> = {
  "/etc/kube-gw/a": `clusters:
- name: c
  cluster: {server: "https://10.0.0.1:6443"}
users:
- name: u
  user: {token: first}
`,
  "/home/op/b": `clusters:
- name: c
  cluster: {server: "https://10.9.9.9:6443"}
users:
- name: u
  user: {token: second}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
`,
};
const readFile = (p: string) => {
  if (p in files) return files[p];
  throw new Deno.errors.NotFound(`No such file: ${p}`);
};

Deno.test("the controller merges a KUBECONFIG list, not only its first file", () => {
  const env = (n: string) => n === "KUBECONFIG" ? "/etc/kube-gw/a:/home/op/b" : undefined;
  const invocation = parseArgs(["controller", "--pool", "10.0.100.0/24"], env, () => {});
  assert.equal(invocation?.command, "controller");
  const config = parseControllerConfig(invocation!.options);
  assert.equal(config.kubeconfig, "/etc/kube-gw/a:/home/op/b");
  const conn = loadConnection(config, { env, readFile });
  assert.equal(conn.server, "https://10.0.0.1:6443", "cluster c of the first file");
  assert.equal(conn.token?.(), "first");
  assert.match(conn.source, /context x/, "the context only the second file sets");
});
