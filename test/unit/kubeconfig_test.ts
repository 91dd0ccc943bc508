import assert from "node:assert/strict";
import {
  connectionFromKubeconfig,
  inClusterConnection,
  KubeconfigError,
} from "../../lib/kubeconfig.ts";

const files: Record<string, string> = {
  "/etc/kube-gw/ca.crt": "CA-PEM",
  "/etc/kube-gw/pki/client.crt": "CERT-PEM",
  "/etc/kube-gw/pki/client.key": "KEY-PEM",
};
const readFile = (p: string) => {
  if (p in files) return files[p];
  throw new Deno.errors.NotFound(`No such file: ${p}`);
};

function kubeconfig(cluster: string, user: string, extra = ""): string {
  return `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
${cluster}
users:
- name: u
  user:
${user}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
${extra}`;
}

Deno.test("a kubeconfig with a CA file and a bearer token", () => {
  const conn = connectionFromKubeconfig(
    kubeconfig(
      "    server: https://10.0.0.1:6443/\n    certificate-authority: ca.crt",
      "    token: s3cret",
    ),
    { path: "/etc/kube-gw/kubeconfig", readFile },
  );
  assert.equal(conn.server, "https://10.0.0.1:6443");
  assert.deepEqual(conn.caCerts, ["CA-PEM"]);
  assert.equal(conn.token?.(), "s3cret");
  assert.equal(conn.cert, undefined);
  assert.match(conn.source, /kubeconfig \/etc\/kube-gw\/kubeconfig \(context x\)/);
});

Deno.test("a kubeconfig with inline CA data and client certificate files relative to it", () => {
  const conn = connectionFromKubeconfig(
    kubeconfig(
      `    server: https://api:6443\n    certificate-authority-data: ${btoa("INLINE-CA")}`,
      "    client-certificate: pki/client.crt\n    client-key: pki/client.key",
    ),
    { path: "/etc/kube-gw/kubeconfig", readFile },
  );
  assert.deepEqual(conn.caCerts, ["INLINE-CA"]);
  assert.equal(conn.cert, "CERT-PEM");
  assert.equal(conn.key, "KEY-PEM");
  assert.equal(conn.token, undefined);
});

Deno.test("a kubeconfig with inline client certificate data", () => {
  const conn = connectionFromKubeconfig(
    kubeconfig(
      "    server: https://api:6443",
      `    client-certificate-data: ${btoa("C")}\n    client-key-data: ${btoa("K")}`,
    ),
    { path: "kubeconfig", readFile },
  );
  assert.equal(conn.cert, "C");
  assert.equal(conn.key, "K");
  assert.equal(conn.caCerts, undefined);
});

Deno.test("kubeconfig errors name the problem", () => {
  const cases: [string, RegExp][] = [
    [
      kubeconfig("    server: https://a", "    exec: {command: aws}"),
      /exec plugin.*may run no program but ip/,
    ],
    [
      kubeconfig("    server: https://a\n    insecure-skip-tls-verify: true", "    token: t"),
      /insecure-skip-tls-verify/,
    ],
    [
      kubeconfig("    server: https://a\n    certificate-authority: missing.crt", "    token: t"),
      /Cannot read certificate-authority "\/etc\/kube-gw\/missing.crt"/,
    ],
    [
      kubeconfig("    server: https://a", `    client-certificate-data: ${btoa("C")}`),
      /without a key/,
    ],
    [
      kubeconfig("    server: https://a", "    token: t").replace(
        "current-context: x",
        "current-context: y",
      ),
      /no context "y"/,
    ],
    [kubeconfig("    insecure: true", "    token: t"), /clusters\[0\]\.cluster\.server is missing/],
    ["clusters: [", /Cannot parse kubeconfig/],
    ["just a string", /Cannot parse kubeconfig/],
  ];
  for (const [text, re] of cases) {
    assert.throws(
      () => connectionFromKubeconfig(text, { path: "/etc/kube-gw/kubeconfig", readFile }),
      (e: unknown) => e instanceof KubeconfigError && re.test(e.message),
      re.source,
    );
  }
});

Deno.test("in-cluster connection re-reads the rotated token and keeps the old one mid-rotation", () => {
  const sa: Record<string, string> = { "/sa/ca.crt": "SA-CA", "/sa/token": "token-1\n" };
  const read = (p: string) => {
    if (p in sa) return sa[p];
    throw new Deno.errors.NotFound(p);
  };
  const env = (n: string) =>
    ({ KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" } as Record<
      string,
      string
    >)[n];
  const conn = inClusterConnection(env, read, "/sa");
  assert.equal(conn.server, "https://[fd00::1]:443");
  assert.deepEqual(conn.caCerts, ["SA-CA"]);
  assert.equal(conn.token?.(), "token-1");
  sa["/sa/token"] = "token-2";
  assert.equal(conn.token?.(), "token-2");
  delete sa["/sa/token"];
  assert.equal(conn.token?.(), "token-2");
});

Deno.test("in-cluster connection outside a pod says so", () => {
  assert.throws(() => inClusterConnection(() => undefined, readFile), /KUBERNETES_SERVICE_HOST/);
});
