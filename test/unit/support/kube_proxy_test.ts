import assert from "node:assert/strict";
import { base32, kubeProxyRuleset, parseKubeProxyConfig } from "../../support/fabric/kube_proxy.ts";

const SETTINGS = { mode: "nftables", clusterCIDR: "10.244.0.0/16", masqueradeBit: 14 };
const NGINX = {
  metadata: { name: "nginx", namespace: "default" },
  spec: {
    clusterIP: "10.96.0.10",
    externalIPs: ["10.0.100.30", "10.0.100.31"],
    ports: [
      { name: "port1", port: 80, protocol: "TCP", targetPort: 80 },
      { name: "port2", port: 81, protocol: "TCP", targetPort: 80 },
    ],
  },
};

Deno.test("base32 is RFC 4648's alphabet, as Go's StdEncoding without padding", () => {
  const enc = (s: string) => base32(new TextEncoder().encode(s));
  assert.deepEqual(["", "f", "fo", "foo", "foob", "fooba", "foobar"].map(enc), [
    "",
    "MY",
    "MZXQ",
    "MZXW6",
    "MZXW6YQ",
    "MZXW6YTB",
    "MZXW6YTBOI",
  ]);
});

Deno.test("kube-proxy rules: every external IP and port goes to its external chain, then a random pod", async () => {
  const rules = await kubeProxyRuleset(SETTINGS, [{
    service: NGINX,
    endpoints: ["10.244.1.10", "10.244.2.10"],
  }]);
  const elements = [...rules.matchAll(/(\S+ \. tcp \. \d+) : goto (\w+)-/g)].map((m) =>
    `${m[1]} ${m[2]}`
  );
  assert.deepEqual(elements.sort(), [
    "10.0.100.30 . tcp . 80 external",
    "10.0.100.30 . tcp . 81 external",
    "10.0.100.31 . tcp . 80 external",
    "10.0.100.31 . tcp . 81 external",
    "10.96.0.10 . tcp . 80 service",
    "10.96.0.10 . tcp . 81 service",
  ]);
  assert.deepEqual(rules.match(/numgen random mod 2 vmap/g)?.length, 2);
  assert.ok(rules.includes("meta l4proto tcp dnat to 10.244.1.10:80"));
  assert.ok(rules.includes("meta l4proto tcp dnat to 10.244.2.10:80"));
  assert.ok(rules.includes("meta mark set meta mark | 0x4000"));
  assert.ok(rules.includes("ip saddr != 10.244.0.0/16 jump mark-for-masquerade"));
  // Port 81 targets the pods' port 80, in its own chains.
  assert.ok(/chain service-[A-Z2-7]{8}-default\/nginx\/tcp\/port2 \{/.test(rules));
});

Deno.test("kube-proxy rules without Services: an empty map, the table still replaced", async () => {
  const rules = await kubeProxyRuleset(SETTINGS, []);
  assert.ok(rules.startsWith("add table ip kube-proxy\ndelete table ip kube-proxy\n"));
  assert.ok(!rules.includes("elements"));
  assert.ok(!rules.includes("chain service-"));
});

Deno.test("parseKubeProxyConfig refuses other kinds", () => {
  assert.throws(() => parseKubeProxyConfig("kind: Pod\n"), SyntaxError);
});

const LB = {
  metadata: { name: "web", namespace: "default" },
  spec: { clusterIP: "10.96.0.11", ports: [{ name: "http", port: 80, protocol: "TCP" }] },
  status: {
    loadBalancer: {
      ingress: [{ ip: "10.0.100.40", ipMode: "VIP" }, { ip: "10.0.100.41", ipMode: "Proxy" }],
    },
  },
};

Deno.test("kube-proxy rules: a LoadBalancer ingress address in VIP mode joins the service-ips map like an external IP; Proxy mode does not", async () => {
  const rules = await kubeProxyRuleset(SETTINGS, [{ service: LB, endpoints: ["10.244.1.10"] }]);
  const elements = [...rules.matchAll(/(\S+ \. tcp \. \d+) : goto (\w+)-/g)].map((m) =>
    `${m[1]} ${m[2]}`
  );
  assert.deepEqual(elements.sort(), [
    "10.0.100.40 . tcp . 80 external",
    "10.96.0.11 . tcp . 80 service",
  ]);
  assert.ok(/chain external-\S+ \{\n\t\tjump mark-for-masquerade\n\t\tgoto service-/.test(rules));
});

Deno.test("kube-proxy rules: externalTrafficPolicy Local keeps the source and sends external traffic to this node's endpoints, or drops", async () => {
  const local = { ...LB, spec: { ...LB.spec, externalTrafficPolicy: "Local" } };
  const endpoints = ["10.244.1.10", "10.244.2.10"];
  const onNode = await kubeProxyRuleset(SETTINGS, [{
    service: local,
    endpoints,
    localEndpoints: ["10.244.1.10"],
  }]);
  const ext = /chain external-\S+ \{\n([^}]*)\}/.exec(onNode)?.[1] ?? "";
  assert.ok(!ext.includes("\t\tjump mark-for-masquerade\n\t\tgoto service-"), ext);
  assert.ok(ext.includes("ip saddr 10.244.0.0/16 goto service-"), ext);
  assert.ok(/goto local-\S+\n\t$/.test(ext), ext);
  assert.ok(
    /chain local-\S+ \{\n\t\tnumgen random mod 1 vmap \{ 0 : goto endpoint-\S+__10\.244\.1\.10\/80 \}/
      .test(onNode),
  );
  const elsewhere = await kubeProxyRuleset(SETTINGS, [{ service: local, endpoints }]);
  assert.ok(/chain local-\S+ \{\n\t\tdrop\n\t\}/.test(elsewhere));
  // ClusterIP traffic still goes to every endpoint.
  assert.ok(elsewhere.includes("numgen random mod 2 vmap"));
});

Deno.test("kube-proxy rules, ip6: the IPv6 addresses and endpoints only, in the ip6 table", async () => {
  const dual = {
    metadata: { name: "web", namespace: "default" },
    spec: {
      clusterIP: "fd00:10:96::10",
      externalIPs: ["10.0.100.30", "2001:db8:100::30"],
      ports: [{ name: "port1", port: 80, protocol: "TCP", targetPort: 8080 }],
    },
  };
  const endpoints = ["10.244.1.10", "2001:db8:244:1::10"];
  const v6 = await kubeProxyRuleset(
    { ...SETTINGS, clusterCIDR: "10.244.0.0/16,fd00:244::/56" },
    [{ service: dual, endpoints }],
    "ip6",
  );
  assert.ok(v6.startsWith("add table ip6 kube-proxy\ndelete table ip6 kube-proxy\n"));
  assert.ok(v6.includes("type ipv6_addr . inet_proto . inet_service : verdict"));
  const elements = [...v6.matchAll(/(\S+ \. tcp \. \d+) : goto (\w+)-/g)].map((m) =>
    `${m[1]} ${m[2]}`
  );
  assert.deepEqual(elements.sort(), [
    "2001:db8:100::30 . tcp . 80 external",
    "fd00:10:96::10 . tcp . 80 service",
  ]);
  assert.ok(v6.includes("meta l4proto tcp dnat to [2001:db8:244:1::10]:8080"));
  assert.ok(v6.includes("ip6 saddr 2001:db8:244:1::10 jump mark-for-masquerade"));
  assert.ok(v6.includes("ip6 saddr != fd00:244::/56 jump mark-for-masquerade"));
  assert.ok(!v6.includes("10.244.1.10"), "no IPv4 endpoint in the ip6 table");
  const v4 = await kubeProxyRuleset(SETTINGS, [{ service: dual, endpoints }]);
  assert.ok(!v4.includes("2001:db8"), "no IPv6 address in the ip table");
  assert.ok(!v4.includes("fd00:"), "the IPv6 ClusterIP stays out of the ip table");
});
