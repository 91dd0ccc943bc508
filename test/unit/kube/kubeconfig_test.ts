import assert from "node:assert/strict";
import {
  connectionFromKubeconfig,
  inClusterConnection,
  KubeconfigError,
} from "../../../lib/kube/kubeconfig.ts";
import { UsageError } from "../../../lib/base/flags.ts";

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

Deno.test("in-cluster connection re-reads the rotated token at most every minute, at once when asked, and keeps the old one mid-rotation", () => {
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
  let now = 0;
  const conn = inClusterConnection(env, read, "/sa", () => now);
  assert.equal(conn.server, "https://[fd00::1]:443");
  assert.deepEqual(conn.caCerts, ["SA-CA"]);
  assert.equal(conn.token?.(), "token-1");
  sa["/sa/token"] = "token-2";
  now = 59_999;
  assert.equal(conn.token?.(), "token-1", "not re-read within the minute");
  now = 60_000;
  assert.equal(conn.token?.(), "token-2");
  sa["/sa/token"] = "token-3";
  conn.refreshToken!();
  assert.equal(conn.token?.(), "token-3", "re-read at once after a 401");
  delete sa["/sa/token"];
  now = 200_000;
  assert.equal(conn.token?.(), "token-3");
});

Deno.test("a kubeconfig tokenFile (or token-file) is read relative to the kubeconfig and re-read", () => {
  for (const field of ["tokenFile", "token-file"]) {
    const disk: Record<string, string> = { "/etc/kube-gw/tok": "one\n" };
    const read = (p: string) => {
      if (p in disk) return disk[p];
      throw new Deno.errors.NotFound(p);
    };
    let now = 0;
    const conn = connectionFromKubeconfig(
      kubeconfig("    server: https://10.0.0.1:6443", `    ${field}: tok`),
      { path: "/etc/kube-gw/kubeconfig", readFile: read, now: () => now },
    );
    assert.equal(conn.token?.(), "one", field);
    assert.equal(conn.tokenFile, "/etc/kube-gw/tok");
    disk["/etc/kube-gw/tok"] = "two";
    now = 60_000;
    assert.equal(conn.token?.(), "two", field);
    disk["/etc/kube-gw/tok"] = "three";
    conn.refreshToken!();
    assert.equal(conn.token?.(), "three", field);
  }
  assert.match(
    refusal(kubeconfig("    server: https://10.0.0.1:6443", "    tokenFile: missing")),
    /^Cannot read tokenFile of user "u" "\/etc\/kube-gw\/missing"/,
  );
});

Deno.test("in-cluster connection outside a pod says so", () => {
  assert.throws(() => inClusterConnection(() => undefined, readFile), /KUBERNETES_SERVICE_HOST/);
});

function refusal(text: string, opts = { path: "/etc/kube-gw/kubeconfig", readFile }): string {
  try {
    connectionFromKubeconfig(text, opts);
  } catch (err) {
    assert.ok(err instanceof KubeconfigError, `expected a KubeconfigError, got ${err}`);
    assert.ok(err instanceof UsageError, "a configuration error exits 2 like a bad flag");
    assert.ok(!err.message.includes("\n"), "one line");
    return err.message;
  }
  throw new Error("expected the kubeconfig to be refused");
}

Deno.test("a token an HTTP header cannot carry is refused at load, and never shown", () => {
  for (
    const token of [
      '"s3cret\\r\\nX-Evil: 1"',
      '"s3cret\\u0000tail"',
      '"s3cret with space"',
      '"s3crét"',
    ]
  ) {
    const message = refusal(kubeconfig("    server: https://10.0.0.1:6443", `    token: ${token}`));
    assert.match(message, /^user "u": the token holds a character an HTTP header cannot carry/);
    assert.ok(!message.includes("s3cr"), message);
  }
});

Deno.test("a token or password over plain http is refused; a URL with a password is refused unshown", () => {
  assert.match(
    refusal(kubeconfig("    server: http://10.0.0.1:8080", "    token: s3cret")),
    /^cluster "c": the server http:\/\/10.0.0.1:8080 is plain http, and kube-gw sends no token or password in clear: use https$/,
  );
  assert.match(
    refusal(
      kubeconfig("    server: http://10.0.0.1:8080", "    username: admin\n    password: hunter2"),
    ),
    /plain http/,
  );
  const message = refusal(
    kubeconfig("    server: https://admin:hunter2@10.0.0.1:6443", "    token: s3cret"),
  );
  assert.match(message, /the server URL holds a user name or password \(not shown\)/);
  assert.ok(!message.includes("hunter2") && !message.includes("admin"), message);
  // Without credentials plain http stays possible (a local API proxy).
  const conn = connectionFromKubeconfig(kubeconfig("    server: http://127.0.0.1:8001", "    {}"), {
    path: "/k",
    readFile,
  });
  assert.equal(conn.server, "http://127.0.0.1:8001");
});

Deno.test("a kubeconfig YAML error gives line and column, never the file's text; it exits 2", () => {
  const text =
    `apiVersion: v1\nusers:\n- name: u\n  user:\n    token: SECRET-TOKEN-abc\n  bad: [\n`;
  const message = refusal(text);
  assert.match(
    message,
    /^Cannot parse kubeconfig "\/etc\/kube-gw\/kubeconfig": .+ at line \d+, column \d+$/,
  );
  assert.ok(!message.includes("SECRET") && !message.includes("token"), message);
  const tab = refusal("a: 1\n\tb: SECRET-TOKEN\n");
  assert.ok(!tab.includes("SECRET"), tab);
  assert.match(tab, /at line 2, column \d+$/);
});

Deno.test("the connection says where its CA comes from, for TLS errors", () => {
  const caFile = connectionFromKubeconfig(
    kubeconfig(
      "    server: https://10.0.0.1:6443\n    certificate-authority: ca.crt",
      "    token: t",
    ),
    { path: "/etc/kube-gw/kubeconfig", readFile },
  );
  assert.equal(
    caFile.caSource,
    'certificate-authority /etc/kube-gw/ca.crt of cluster "c" in kubeconfig /etc/kube-gw/kubeconfig',
  );
  const system = connectionFromKubeconfig(
    kubeconfig("    server: https://10.0.0.1:6443", "    token: t"),
    { path: "/k", readFile },
  );
  assert.match(system.caSource ?? "", /^the system's CA store/);
  const pod = inClusterConnection(
    (n) => ({ KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" })[n],
    (p) => p.endsWith("token") ? "tok" : "CA",
    "/sa",
  );
  assert.equal(pod.caSource, "the service account CA /sa/ca.crt");
});

Deno.test("an in-cluster token with a line break is refused at load and a bad rotated one is not used", () => {
  const env = (n: string) =>
    ({ KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" })[n];
  let token = "abc\ndef";
  const read = (p: string) => p.endsWith("token") ? token : "CA";
  assert.throws(
    () => inClusterConnection(env, read, "/sa"),
    (e: unknown) =>
      e instanceof KubeconfigError && !e.message.includes("abc") && /HTTP header/.test(e.message),
  );
  token = "good";
  const conn = inClusterConnection(env, read, "/sa");
  token = "evil\r\nX: 1";
  assert.equal(conn.token?.(), "good");
  assert.throws(
    () =>
      inClusterConnection(
        (n) => ({ KUBERNETES_SERVICE_HOST: "u:p@h", KUBERNETES_SERVICE_PORT: "443" })[n],
        read,
        "/sa",
      ),
    KubeconfigError,
  );
});

Deno.test("KUBECONFIG=a:b merges as kubectl: first file wins per entry, current-context from the first that sets it", async () => {
  const { mergeKubeconfigs } = await import("../../../lib/kube/kubeconfig.ts");
  const a = `clusters:
- name: c
  cluster: {server: "https://10.0.0.1:6443", certificate-authority: ca.crt}
users:
- name: u
  user: {token: first}
`;
  const b = `clusters:
- name: c
  cluster: {server: "https://10.9.9.9:6443"}
users:
- name: u
  user: {token: second}
- name: v
  user: {client-certificate: pki/client.crt, client-key: pki/client.key}
contexts:
- name: x
  context: {cluster: c, user: v}
current-context: x
`;
  const text = mergeKubeconfigs([
    { path: "/etc/kube-gw/a", text: a },
    { path: "/etc/kube-gw/b", text: b },
  ]);
  const conn = connectionFromKubeconfig(text, { path: "/etc/kube-gw/a", readFile });
  assert.equal(conn.server, "https://10.0.0.1:6443", "the first file's cluster c");
  assert.deepEqual(conn.caCerts, ["CA-PEM"], "its CA relative to its own file");
  assert.equal(conn.cert, "CERT-PEM", "user v from the second file, its paths relative to it");
  assert.equal(conn.token, undefined);
});
