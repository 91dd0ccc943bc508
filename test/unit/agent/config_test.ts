import assert from "node:assert/strict";
import { parseArgs } from "../../../lib/cli.ts";
import { parseConfig } from "../../../lib/agent/config.ts";
import { parseDuration, parseListen, UsageError } from "../../../lib/base/flags.ts";

const noEnv = () => undefined;
const quiet = () => {};

function configFrom(argv: string[], env: Record<string, string> = {}) {
  const inv = parseArgs(argv, (n) => env[n], quiet);
  assert.ok(inv);
  return {
    command: inv.command,
    config: inv.command === "version" ? undefined : parseConfig(inv.options),
  };
}

function usage(argv: string[], env: Record<string, string> = {}): string {
  try {
    configFrom(argv, env);
  } catch (err) {
    assert.ok(err instanceof UsageError, `expected a UsageError, got ${err}`);
    assert.ok(!err.message.includes("\n"), "the message is one line");
    return err.message;
  }
  throw new Error(`expected ${argv.join(" ")} to be refused`);
}

Deno.test("run is the default command and takes the documented defaults", () => {
  const { command, config } = configFrom(["--network", "10.0.100.0/24"]);
  assert.equal(command, "run");
  assert.deepEqual(config?.networks.map((n) => n.text), ["10.0.100.0/24"]);
  assert.equal(config?.interface, "lo");
  assert.equal(config?.netns, undefined);
  assert.equal(config?.inCluster, false);
  assert.equal(config?.logLevel, "info");
  assert.equal(config?.logFormat, "text");
  assert.equal(config?.resyncMs, 30_000);
  assert.deepEqual(config?.namespaces, []);
  assert.deepEqual(config?.metricsAddress, {
    hostname: "127.0.0.1",
    port: 9472,
    source: "--metrics-address",
  });
});

Deno.test("--network is repeatable and comma-separated, IPv4 and IPv6", () => {
  const { config } = configFrom([
    "run",
    "--network",
    "10.0.100.0/24,2001:db8::/64",
    "--network=192.0.2.0/24",
  ]);
  assert.deepEqual(config?.networks.map((n) => n.text), [
    "10.0.100.0/24",
    "2001:db8::/64",
    "192.0.2.0/24",
  ]);
});

Deno.test("the prototype's environment variables still work", () => {
  const { config } = configFrom(["run"], {
    KUBEGW_NETWORK: "10.0.100.0/24",
    KUBEGW_INTERFACE: "lo0",
    KUBEGW_IN_K8S: "1",
    KUBEGW_DEBUG: "1",
  });
  assert.deepEqual(config?.networks.map((n) => n.text), ["10.0.100.0/24"]);
  assert.equal(config?.interface, "lo0");
  assert.equal(config?.inCluster, true);
  assert.equal(config?.logLevel, "debug");
});

Deno.test("a flag wins over its environment variable", () => {
  const { config } = configFrom(["once", "--network", "192.0.2.0/24", "--interface", "eth9"], {
    KUBEGW_NETWORK: "10.0.100.0/24",
    KUBEGW_INTERFACE: "lo0",
  });
  assert.deepEqual(config?.networks.map((n) => n.text), ["192.0.2.0/24"]);
  assert.equal(config?.interface, "eth9");
});

Deno.test("every other flag has its variable too", () => {
  const { config } = configFrom(["plan"], {
    KUBEGW_NETWORK: "10.0.100.0/24",
    KUBEGW_NETNS: "asic0",
    KUBECONFIG: "/etc/kube-gw/kubeconfig:/root/.kube/config",
    KUBEGW_LOG_LEVEL: "warning",
    KUBEGW_LOG_FORMAT: "json",
    KUBEGW_RESYNC_INTERVAL: "1m30s",
    KUBEGW_NAMESPACE: "web,edge",
    KUBEGW_SELECTOR: "kube-gw/announce=true",
    KUBEGW_METRICS_ADDRESS: "off",
    KUBEGW_API_STALE_AFTER: "2m",
  });
  assert.equal(config?.netns, "asic0");
  assert.equal(config?.apiStaleAfterMs, 120_000);
  assert.equal(config?.kubeconfig, "/etc/kube-gw/kubeconfig:/root/.kube/config");
  assert.equal(config?.logLevel, "warning");
  assert.equal(config?.logFormat, "json");
  assert.equal(config?.resyncMs, 90_000);
  assert.deepEqual(config?.namespaces, ["web", "edge"]);
  assert.equal(config?.selector, "kube-gw/announce=true");
  assert.equal(config?.metricsAddress, undefined);
});

Deno.test("bad input gets one line naming the flag and the value", () => {
  assert.equal(
    usage(["--network", "10.0.100.0/33"]),
    '--network: "10.0.100.0/33" is not a CIDR: prefix length must be 0 to 32',
  );
  assert.match(
    usage(["--network", "10.0.100.1/24"]),
    /^--network: "10.0.100.1\/24" is not a CIDR: host bits are set/,
  );
  assert.match(
    usage(["--network", "127.0.0.0/16"]),
    /^--network: "127.0.0.0\/16" overlaps the loopback range 127.0.0.0\/8$/,
  );
  assert.match(usage(["--network", "::/0"]), /overlaps the loopback range ::1\/128/);
  assert.match(usage([]), /^--network: no managed network given/);
  assert.match(
    usage(["--network", "10.0.100.0/24", "--interface", "lo; reboot"]),
    /^--interface: "lo; reboot" is not/,
  );
  assert.match(
    usage(["--network", "10.0.100.0/24", "--interface", "-batch"]),
    /^--interface: "-batch" is not/,
  );
  assert.match(
    usage(["--network", "10.0.100.0/24", "--netns", "../etc"]),
    /^--netns: "..\/etc" is not/,
  );
  assert.match(
    usage(["--network", "10.0.100.0/24", "--log-level", "loud"]),
    /^--log-level: "loud"/,
  );
  assert.match(
    usage(["--network", "10.0.100.0/24", "--log-format", "xml"]),
    /^--log-format: "xml"/,
  );
  assert.match(
    usage(["--network", "10.0.100.0/24", "--resync-interval", "soon"]),
    /^--resync-interval: "soon"/,
  );
  assert.match(
    usage(["--network", "10.0.100.0/24", "--resync-interval", "10ms"]),
    /shorter than 1s/,
  );
  assert.match(
    usage(["--network", "10.0.100.0/24", "--namespace", "Bad_NS"]),
    /^--namespace: "Bad_NS"/,
  );
  assert.match(
    usage(["--network", "10.0.100.0/24", "--metrics-address", "9472"]),
    /^--metrics-address: "9472"/,
  );
  assert.match(
    usage(["--network", "10.0.100.0/24", "--metrics-address", "256.1.1.1:9472"]),
    /^--metrics-address: "256.1.1.1:9472" has "256.1.1.1", which is not an IPv4 address/,
  );
  assert.match(usage(["--bogus"]), /unknown option '--bogus'/);
  assert.match(usage(["run", "extra"]), /too many arguments/);
  assert.match(usage(["drain", "--kubeconfig", "x"]), /unknown option '--kubeconfig'/);
});

Deno.test("durations read like Go's", () => {
  assert.equal(parseDuration("--x", "30s"), 30_000);
  assert.equal(parseDuration("--x", "1m30s"), 90_000);
  assert.equal(parseDuration("--x", "500ms"), 500);
  assert.equal(parseDuration("--x", "45"), 45_000);
  assert.equal(parseDuration("--x", "0"), 0);
  assert.equal(parseDuration("--x", "1.5h"), 5_400_000);
});

Deno.test("listen addresses take IPv4, bracketed IPv6, a bare port, or off", () => {
  const source = "--metrics-address";
  assert.deepEqual(parseListen("127.0.0.1:9472"), { hostname: "127.0.0.1", port: 9472, source });
  assert.deepEqual(parseListen("[::1]:9472"), { hostname: "::1", port: 9472, source });
  assert.deepEqual(parseListen(":9472"), { hostname: "0.0.0.0", port: 9472, source });
  assert.deepEqual(parseListen("localhost:0"), { hostname: "localhost", port: 0, source });
  assert.deepEqual(parseListen("metrics.example-1.net:80"), {
    hostname: "metrics.example-1.net",
    port: 80,
    source,
  });
  assert.equal(parseListen("off"), undefined);
  assert.throws(() => parseListen("127.0.0.1:99999"), UsageError);
});

Deno.test("a metrics address that could never be bound is refused at parse time, naming the value", () => {
  const refused = (text: string, why: RegExp) =>
    assert.throws(
      () => parseListen(text),
      (e: unknown) =>
        e instanceof UsageError &&
        e.message.startsWith(`--metrics-address: ${JSON.stringify(text)}`) &&
        why.test(e.message),
    );
  refused("256.1.1.1:9472", /not an IPv4 address/);
  refused("1.2.3:9472", /not an IPv4 address/);
  refused("010.0.0.1:9472", /did you mean 10.0.0.1/);
  refused("[::g]:9472", /no valid IPv6 address/);
  refused("[::1.2.3.4.5]:9472", /no valid IPv6 address/);
  refused("[0::1]:9472", /did you mean \[::1\]/);
  refused("-bad-.example:9472", /neither an IP address nor a host name/);
  refused("host_name:9472", /neither an IP address nor a host name/);
  refused("127.0.0.1:65536", /port outside 0 to 65535/);
  assert.throws(
    () => parseListen("x y:1", "KUBEGW_METRICS_ADDRESS"),
    (e: unknown) =>
      e instanceof UsageError && e.message.startsWith('KUBEGW_METRICS_ADDRESS: "x y:1"'),
  );
});

Deno.test("durations longer than a day are refused at parse time, naming the flag", () => {
  for (
    const text of [
      "1000h",
      "25h",
      "24h1ms",
      "90000",
      "99999999999999999999999s",
      `${"9".repeat(400)}h`,
    ]
  ) {
    assert.match(
      usage(["--network", "10.0.100.0/24", "--resync-interval", text]),
      new RegExp(`^--resync-interval: "${text}" is longer than the maximum 24h$`),
    );
  }
  assert.equal(parseDuration("--x", "24h"), 24 * 3_600_000);
  assert.equal(parseDuration("--x", "86400"), 24 * 3_600_000);
  assert.match(
    usage(["--network", "10.0.100.0/24"], { KUBEGW_RESYNC_INTERVAL: "1000h" }),
    /^KUBEGW_RESYNC_INTERVAL: "1000h" is longer than the maximum 24h$/,
  );
});

Deno.test("a managed network whose every address would be refused is refused at start", () => {
  for (
    const [net, range] of [
      ["fe80::/10", "link-local range fe80::/10"],
      ["fe80::/64", "link-local range fe80::/10"],
      ["169.254.0.0/16", "link-local range 169.254.0.0/16"],
      ["169.254.10.0/24", "link-local range 169.254.0.0/16"],
      ["224.0.0.0/4", "multicast range 224.0.0.0/4"],
      ["239.1.0.0/16", "multicast range 224.0.0.0/4"],
      ["ff00::/8", "multicast range ff00::/8"],
      ["ff02::/16", "multicast range ff00::/8"],
      ["255.255.255.255/32", "broadcast range 255.255.255.255/32"],
      ["0.0.0.0/32", "unspecified range 0.0.0.0/32"],
    ]
  ) {
    assert.equal(
      usage(["--network", net]),
      `--network: ${
        JSON.stringify(net)
      } lies inside the ${range}, whose addresses are never assigned`,
    );
  }
  // Networks that merely hold some special addresses stay allowed.
  assert.ok(configFrom(["--network", "128.0.0.0/1"]).config);
  assert.ok(configFrom(["--network", "fc00::/7"]).config);
});

Deno.test("a value from an environment variable is reported under the variable's name", () => {
  assert.match(
    usage([], { KUBEGW_NETWORK: "fe80::/10" }),
    /^KUBEGW_NETWORK: "fe80::\/10" lies inside/,
  );
  assert.match(
    usage([], { KUBEGW_NETWORK: "10.0.100.0/33" }),
    /^KUBEGW_NETWORK: "10.0.100.0\/33" is not a CIDR/,
  );
  assert.match(
    usage(["--network", "10.0.100.0/24"], { KUBEGW_METRICS_ADDRESS: "256.1.1.1:9472" }),
    /^KUBEGW_METRICS_ADDRESS: "256.1.1.1:9472"/,
  );
  assert.match(
    usage(["--network", "10.0.100.0/24"], { KUBEGW_INTERFACE: "lo; x" }),
    /^KUBEGW_INTERFACE: /,
  );
  assert.match(usage(["--network", "10.0.100.0/24"], { KUBEGW_NETNS: "../x" }), /^KUBEGW_NETNS: /);
  assert.match(
    usage(["--network", "10.0.100.0/24"], { KUBEGW_LOG_LEVEL: "loud" }),
    /^KUBEGW_LOG_LEVEL: /,
  );
  assert.match(
    usage(["--network", "10.0.100.0/24"], { KUBEGW_LOG_FORMAT: "xml" }),
    /^KUBEGW_LOG_FORMAT: /,
  );
  assert.match(
    usage(["--network", "10.0.100.0/24"], { KUBEGW_NAMESPACE: "Bad_NS" }),
    /^KUBEGW_NAMESPACE: /,
  );
  assert.match(
    usage(["--network", "10.0.100.0/24"], { KUBEGW_IN_K8S: "maybe" }),
    /^KUBEGW_IN_K8S: /,
  );
  // A flag given on the command line is still reported as the flag, even with the variable set.
  assert.match(
    usage(["--network", "fe80::/10"], { KUBEGW_NETWORK: "10.0.100.0/24" }),
    /^--network: "fe80::\/10"/,
  );
  const { config } = configFrom(["--network", "10.0.100.0/24"], {
    KUBEGW_METRICS_ADDRESS: "[::1]:1",
  });
  assert.equal(config?.metricsAddress?.source, "KUBEGW_METRICS_ADDRESS");
});

Deno.test("a leading -- (as deno task start passes it) is not an argument", () => {
  const { command, config } = configFrom(["--", "run", "--network", "10.0.100.0/24"]);
  assert.equal(command, "run");
  assert.deepEqual(config?.networks.map((n) => n.text), ["10.0.100.0/24"]);
  assert.equal(configFrom(["--", "--network", "10.0.100.0/24"]).command, "run");
  assert.equal(configFrom(["--", "plan", "--network", "10.0.100.0/24"]).command, "plan");
  assert.match(usage(["--", "run", "extra", "--network", "10.0.100.0/24"]), /too many arguments/);
});

Deno.test("help is printed, not refused", () => {
  let text = "";
  assert.equal(parseArgs(["--help"], noEnv, (t) => text += t), undefined);
  for (const cmd of ["run", "once", "plan", "drain", "version"]) {
    assert.match(text, new RegExp(cmd));
  }
  text = "";
  assert.equal(parseArgs(["run", "--help"], noEnv, (t) => text += t), undefined);
  for (
    const flag of [
      "--network",
      "KUBEGW_NETWORK",
      "--netns",
      "--resync-interval",
      "--selector",
      "--metrics-address",
    ]
  ) {
    assert.ok(text.includes(flag), flag);
  }
});

Deno.test("--address-lifetime is off by default and is read in seconds from the flag or KUBEGW_ADDRESS_LIFETIME", () => {
  const net = ["--network", "10.0.100.0/24"];
  assert.equal(configFrom(net).config?.addressLifetimeSeconds, undefined);
  assert.equal(
    configFrom([...net, "--address-lifetime", "90s"]).config?.addressLifetimeSeconds,
    90,
  );
  assert.equal(
    configFrom(net, { KUBEGW_ADDRESS_LIFETIME: "1m" }).config?.addressLifetimeSeconds,
    60,
  );
  assert.equal(
    configFrom(["once", ...net, "--address-lifetime", "3s"]).config?.addressLifetimeSeconds,
    3,
  );
  assert.match(usage([...net, "--address-lifetime", "2s"]), /^--address-lifetime: "2s" is shorter/);
  assert.match(
    usage(net, { KUBEGW_ADDRESS_LIFETIME: "soon" }),
    /^KUBEGW_ADDRESS_LIFETIME: "soon" is not a duration/,
  );
});

Deno.test("--kube-proxy-health defaults to kube-proxy's endpoint, takes off, and names its source on bad input", () => {
  const net = ["--network", "10.0.100.0/24"];
  assert.equal(configFrom(net).config?.kubeProxyHealth, "http://127.0.0.1:10256/healthz");
  assert.equal(
    configFrom([...net, "--kube-proxy-health", "off"]).config?.kubeProxyHealth,
    undefined,
  );
  assert.equal(
    configFrom(net, { KUBEGW_KUBE_PROXY_HEALTH: "http://10.0.0.20:10256/healthz" }).config
      ?.kubeProxyHealth,
    "http://10.0.0.20:10256/healthz",
  );
  assert.match(
    usage([...net, "--kube-proxy-health", "ftp://x/"]),
    /^--kube-proxy-health: "ftp:\/\/x\/" is not an http\(s\) URL or off$/,
  );
  assert.match(
    usage(net, { KUBEGW_KUBE_PROXY_HEALTH: "nope" }),
    /^KUBEGW_KUBE_PROXY_HEALTH: "nope" is not an http\(s\) URL or off$/,
  );
});

Deno.test("--api-stale-after defaults to 45s and refuses less than the probe period allows", () => {
  assert.equal(
    configFrom(["run", "--network", "10.0.100.0/24"], {}).config?.apiStaleAfterMs,
    45_000,
  );
  assert.match(
    usage(["run", "--network", "10.0.100.0/24"], { KUBEGW_API_STALE_AFTER: "10s" }),
    /^KUBEGW_API_STALE_AFTER: "10s" is shorter than 35s/,
  );
});
