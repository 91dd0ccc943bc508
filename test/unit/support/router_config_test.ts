import assert from "node:assert/strict";
import routerDoc from "../../../docs/router.md" with { type: "text" };
import frrGateway from "../../../scripts/router/frr-gateway.conf" with { type: "text" };
import birdGateway from "../../../scripts/router/bird-gateway.conf" with { type: "text" };
import frrGatewayRoute from "../../../scripts/router/frr-gateway-route.conf" with { type: "text" };
import birdGatewayRoute from "../../../scripts/router/bird-gateway-route.conf" with {
  type: "text",
};
import sysctlGateway from "../../../scripts/router/sysctl-gateway.conf" with { type: "text" };
import nftHandoff from "../../../scripts/router/nft-handoff.conf" with { type: "text" };
import kubeProxyNft from "../../../scripts/router/kube-proxy-nftables.yaml" with { type: "text" };
import frrSonic from "../../../scripts/router/frr-sonic.conf" with { type: "text" };
import kubeProxyIpvs from "../../../scripts/router/kube-proxy-ipvs.yaml" with { type: "text" };
import {
  fencedSnippets,
  placeholders,
  renderTemplate,
  ROUTER_FILES,
  TemplateError,
} from "../../support/fabric/router_config.ts";
import { parseKubeProxyConfig } from "../../support/fabric/kube_proxy.ts";
import yaml from "js-yaml";

const FILES: Record<(typeof ROUTER_FILES)[number], string> = {
  "scripts/router/frr-gateway.conf": frrGateway,
  "scripts/router/bird-gateway.conf": birdGateway,
  "scripts/router/frr-gateway-route.conf": frrGatewayRoute,
  "scripts/router/bird-gateway-route.conf": birdGatewayRoute,
  "scripts/router/sysctl-gateway.conf": sysctlGateway,
  "scripts/router/nft-handoff.conf": nftHandoff,
  "scripts/router/kube-proxy-nftables.yaml": kubeProxyNft,
  "scripts/router/kube-proxy-ipvs.yaml": kubeProxyIpvs,
};

Deno.test("docs/router.md: every snippet is its file, word for word", () => {
  const snippets = fencedSnippets(routerDoc);
  assert(snippets.length > 0, "no snippets in docs/router.md");
  for (const s of snippets) {
    assert(
      s.file,
      `docs/router.md line ${s.line}: a code block without <!-- file: PATH --> before it`,
    );
    assert(s.file in FILES, `docs/router.md line ${s.line}: ${s.file} is not a router file`);
    assert.deepEqual(
      s.body,
      FILES[s.file as keyof typeof FILES],
      `docs/router.md line ${s.line} != ${s.file}`,
    );
  }
  assert.deepEqual(new Set(snippets.map((s) => s.file)), new Set(ROUTER_FILES));
});

Deno.test("fencedSnippets finds marked and unmarked blocks, with their lines", () => {
  const md = [
    "# Router configuration",
    "<!-- file: x.conf -->",
    "",
    "```",
    "one",
    "## not a heading inside a block",
    "```",
    "text",
    "```yaml",
    "bare: true",
    "```",
  ].join("\n");
  assert.deepEqual(fencedSnippets(md), [
    { file: "x.conf", lang: "", body: "one\n## not a heading inside a block\n", line: 4 },
    { file: undefined, lang: "yaml", body: "bare: true\n", line: 9 },
  ]);
  assert.throws(() => fencedSnippets("```\nnever closed\n"), SyntaxError);
});

Deno.test("renderTemplate fills placeholders and refuses missing or unused values", () => {
  assert.deepEqual(renderTemplate("a {{X}} b {{Y_2}} {{X}}", { X: "1", Y_2: "2" }), "a 1 b 2 1");
  assert.throws(() => renderTemplate("{{X}} {{Y}}", { X: "1" }), TemplateError);
  assert.throws(() => renderTemplate("{{X}}", { X: "1", Z: "3" }), TemplateError);
});

Deno.test("the FRR and BIRD gateway configs take the same placeholders, managed network and a fixed router-id", () => {
  assert.deepEqual(placeholders(frrGateway).sort(), ["ASN", "LOOPBACK", "UPLINK"]);
  assert.deepEqual(placeholders(birdGateway).sort(), ["ASN", "LOOPBACK", "UPLINK"]);
  assert(frrGateway.includes("permit 10.0.100.0/24 le 32"));
  assert(birdGateway.includes("[ 10.0.100.0/24{24,32} ]"));
  // An explicit router-id in both: one chosen by the daemon could be a Service
  // address kube-gw adds to lo, and changing it resets every BGP session.
  assert.deepEqual(frrGateway.split("\n").filter((l) => /^\s*bgp router-id /.test(l)), [
    " bgp router-id {{LOOPBACK}}",
  ]);
  assert.deepEqual(birdGateway.split("\n").filter((l) => /^router id /.test(l)), [
    "router id {{LOOPBACK}};",
  ]);
  // Never a bare `redistribute connected`: that would announce every
  // connected address, kube-ipvs0's ClusterIPs included.
  const redistribute = frrGateway.split("\n").filter((l) => l.includes("redistribute"));
  assert.deepEqual(redistribute, ["  redistribute connected route-map KUBE-GW-CONNECTED"]);
});

Deno.test("the kube-proxy configurations: nftables as the fabric runs it, IPVS with source hashing", () => {
  assert.deepEqual(parseKubeProxyConfig(kubeProxyNft), {
    mode: "nftables",
    clusterCIDR: "10.244.0.0/16",
    masqueradeBit: 14,
  });
  const ipvs = yaml.load(kubeProxyIpvs) as { mode: string; ipvs: { scheduler: string } };
  assert.deepEqual([ipvs.mode, ipvs.ipvs.scheduler], ["ipvs", "sh"]);
});

Deno.test("SONiC's FRR snippet: the ASN only, Loopback1000's host routes in the managed networks, SONiC's own connected-routes maps", () => {
  const text = frrSonic;
  assert.deepEqual(placeholders(text), ["ASN"]);
  const lines = text.split("\n").filter((l) => l !== "" && !l.startsWith("!"));
  // One `redistribute connected` per family, through the maps SONiC's template uses.
  assert.deepEqual(lines.filter((l) => l.includes("redistribute")), [
    "  redistribute connected route-map V4_CONNECTED_ROUTES",
    "  redistribute connected route-map V6_CONNECTED_ROUTES",
  ]);
  // Each of its route-map sequences matches the dedicated loopback and the managed networks.
  assert.deepEqual(lines.filter((l) => /^route-map|^ match/.test(l)), [
    "route-map V4_CONNECTED_ROUTES permit 5",
    " match interface Loopback1000",
    " match ip address prefix-list KUBE-GW-SERVICES",
    "route-map V6_CONNECTED_ROUTES permit 5",
    " match interface Loopback1000",
    " match ipv6 address prefix-list KUBE-GW-SERVICES-V6",
  ]);
  assert(text.includes("permit 10.0.100.0/24 le 32"));
});
