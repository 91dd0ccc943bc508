/**
 * Where both programs' API connection comes from: a kubeconfig list merged
 * as kubectl does (files missing from a list skipped), `$HOME/.kube/config`
 * by default, or in-cluster.
 */
import assert from "node:assert/strict";
import { loadConnection, readKubeconfigList } from "../../../lib/kube/connect.ts";
import { KubeconfigError } from "../../../lib/kube/kubeconfig.ts";
import { parseArgs } from "../../../lib/cli.ts";
import { parseControllerConfig } from "../../../lib/controller/config.ts";

/** The first file names the cluster and the user; only the second sets a context. */
const files: Record<string, string> = {
  "/etc/kube-gw/a": `clusters:
- name: c
  cluster: {server: "https://10.0.0.1:6443", certificate-authority: ca.crt}
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
  "/etc/kube-gw/ca.crt": "CA-PEM",
  "/home/op/.kube/config": `clusters:
- name: h
  cluster: {server: "https://home:6443"}
contexts:
- name: x
  context: {cluster: h}
current-context: x
`,
};

const readFile = (p: string) => {
  if (p in files) return files[p];
  if (p.startsWith("/denied")) throw new Deno.errors.PermissionDenied(`read access to ${p}`);
  throw new Deno.errors.NotFound(`No such file: ${p}`);
};
const noEnv = () => undefined;

Deno.test("a kubeconfig list merges as kubectl: the first file to name an entry wins, the context from the second", () => {
  const conn = loadConnection(
    { inCluster: false, kubeconfig: "/etc/kube-gw/a:/home/op/b" },
    { env: noEnv, readFile },
  );
  assert.equal(conn.server, "https://10.0.0.1:6443", "cluster c of the first file");
  assert.deepEqual(conn.caCerts, ["CA-PEM"], "its CA relative to its own file");
  assert.equal(conn.token?.(), "first", "user u of the first file");
});

Deno.test("a file missing from a list of several is skipped; a single missing file, or none left, is an error", () => {
  const text = readKubeconfigList("/nope:/home/op/b::", readFile);
  assert.deepEqual(text.files, ["/home/op/b"]);
  assert.equal(text.text, files["/home/op/b"], "one file left: its own text, not a merge");
  assert.throws(
    () => readKubeconfigList("/nope", readFile),
    (e: unknown) => e instanceof KubeconfigError && /"\/nope" cannot be read/.test(e.message),
  );
  assert.throws(
    () => readKubeconfigList("/nope:/gone", readFile),
    (e: unknown) => e instanceof KubeconfigError && /"\/gone" does not exist/.test(e.message),
  );
  assert.throws(
    () => readKubeconfigList("/denied:/home/op/b", readFile),
    (e: unknown) => e instanceof KubeconfigError && /"\/denied" cannot be read/.test(e.message),
    "a file that exists but cannot be read is not skipped",
  );
});

Deno.test("without --kubeconfig, $HOME/.kube/config; without HOME either, a usage error", () => {
  const env = (n: string) => n === "HOME" ? "/home/op" : undefined;
  assert.equal(loadConnection({ inCluster: false }, { env, readFile }).server, "https://home:6443");
  assert.throws(
    () => loadConnection({ inCluster: false }, { env: noEnv, readFile }),
    (e: unknown) => e instanceof KubeconfigError && /HOME is not set/.test(e.message),
  );
});

Deno.test("in-cluster ignores --kubeconfig and reads the service account", () => {
  const reads: string[] = [];
  const env = (n: string) =>
    ({ KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" })[n];
  const sa = (p: string) => {
    reads.push(p);
    return p.endsWith("ca.crt") ? "SA-CA" : "sa-token";
  };
  const conn = loadConnection({ inCluster: true, kubeconfig: "/etc/kube-gw/a" }, {
    env,
    readFile: sa,
  });
  assert.equal(conn.server, "https://10.96.0.1:443");
  assert.ok(!reads.includes("/etc/kube-gw/a"));
});

Deno.test("the controller merges a KUBECONFIG list from its flags to the connection, not only its first file", () => {
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
