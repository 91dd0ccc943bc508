/**
 * The command line: subcommands and flags, each flag with its environment
 * variable. Parsing only; validation is {@linkcode parseConfig}'s.
 *
 * @module
 */

import { Command, CommanderError, Option } from "commander";
import { type OptionKey, type RawOptions, UsageError } from "./base/flags.ts";
import { AGENT_DEFAULTS } from "./agent/config.ts";
import { CONTROLLER_DEFAULTS } from "./controller/config.ts";

/** The subcommands. */
export type CommandName = "run" | "once" | "plan" | "drain" | "controller" | "version";

/** What the user asked for. */
export interface Invocation {
  readonly command: CommandName;
  readonly options: RawOptions;
}

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

/** Repeatable options: their environment variable holds a comma-separated list. */
const LIST_OPTIONS = new Set(["network", "namespace", "pool"]);

/** The environment variable behind each flag. */
export const FLAG_ENV = {
  network: "KUBEGW_NETWORK",
  interface: "KUBEGW_INTERFACE",
  netns: "KUBEGW_NETNS",
  kubeconfig: "KUBECONFIG",
  inCluster: "KUBEGW_IN_K8S",
  logLevel: "KUBEGW_LOG_LEVEL",
  logFormat: "KUBEGW_LOG_FORMAT",
  resyncInterval: "KUBEGW_RESYNC_INTERVAL",
  namespace: "KUBEGW_NAMESPACE",
  selector: "KUBEGW_SELECTOR",
  metricsAddress: "KUBEGW_METRICS_ADDRESS",
  // kube-proxy health and address lifetimes.
  kubeProxyHealth: "KUBEGW_KUBE_PROXY_HEALTH",
  addressLifetime: "KUBEGW_ADDRESS_LIFETIME",
  // Route mode: how the agent holds the addresses.
  routeProtocol: "KUBEGW_ROUTE_PROTOCOL",
  routeTable: "KUBEGW_ROUTE_TABLE",
  // LoadBalancer Services.
  class: "KUBEGW_CLASS",
  defaultClass: "KUBEGW_DEFAULT_CLASS",
  pool: "KUBEGW_POOL",
  config: "KUBEGW_CONFIG",
  leaderElect: "KUBEGW_LEADER_ELECT",
  leaseNamespace: "KUBEGW_LEASE_NAMESPACE",
  apiStaleAfter: "KUBEGW_API_STALE_AFTER",
  // The agent's addresses and announce gate.
  externalIps: "KUBEGW_EXTERNAL_IPS",
  announce: "KUBEGW_ANNOUNCE",
  announceDelay: "KUBEGW_ANNOUNCE_DELAY",
  announceDamping: "KUBEGW_ANNOUNCE_DAMPING",
  nodeName: "KUBEGW_NODE_NAME",
  // Where the addresses are held, and the SONiC store's settings.
  installAs: "KUBEGW_INSTALL_AS",
  sonicLoopback: "KUBEGW_SONIC_LOOPBACK",
  sonicRedisSocket: "KUBEGW_SONIC_REDIS_SOCKET",
  sonicDb: "KUBEGW_SONIC_DB",
} as const;

/** Read for `--node-name` when neither the flag nor `KUBEGW_NODE_NAME` is set (downward API). */
export const NODE_NAME_FALLBACK_ENV = "NODE_NAME";

/** Every environment variable kube-gw reads. */
export const ENV_VARS: readonly string[] = [
  ...Object.values(FLAG_ENV),
  "KUBEGW_DEBUG",
  NODE_NAME_FALLBACK_ENV,
  "HOME",
  "KUBERNETES_SERVICE_HOST",
  "KUBERNETES_SERVICE_PORT",
];

function option(key: keyof typeof FLAG_ENV, flags: string, description: string): Option {
  return new Option(flags, `${description} (env ${FLAG_ENV[key]})`);
}

/** `--log-level` and `--log-format`, for every command that runs. */
function addLogOptions(cmd: Command, defaultFormat: string): Command {
  return cmd
    .addOption(
      option(
        "logLevel",
        "--log-level <level>",
        "debug, info, warning, error; KUBEGW_DEBUG=1: debug",
      ),
    )
    .addOption(option("logFormat", "--log-format <format>", "text or json").default(defaultFormat));
}

/** `--kubeconfig` and `--in-cluster`, for every command that talks to the API server. */
function addApiOptions(cmd: Command): Command {
  return cmd
    .addOption(
      option("kubeconfig", "--kubeconfig <path>", "kubeconfig file (default ~/.kube/config)"),
    )
    .addOption(option("inCluster", "--in-cluster", "use the pod's service account"));
}

/** `--api-stale-after`, for both programs. */
function staleAfterOption(defaultValue: string): Option {
  return option(
    "apiStaleAfter",
    "--api-stale-after <duration>",
    "/readyz fails when a watch was not known current for this long",
  ).default(defaultValue);
}

/** `--metrics-address`; each command has its own default port. */
function metricsAddressOption(defaultAddress: string): Option {
  return option(
    "metricsAddress",
    "--metrics-address <host:port>",
    "/metrics, /healthz, /readyz; or off",
  )
    .default(defaultAddress);
}

function addCommon(cmd: Command, api: boolean): Command {
  const D = AGENT_DEFAULTS;
  cmd
    .addOption(
      option("network", "--network <cidr>", "managed network; repeatable or comma-separated")
        .argParser(collect),
    )
    .addOption(
      option("interface", "--interface <name>", "interface for the addresses")
        .default(D.interface),
    )
    .addOption(option("netns", "--netns <name>", "run every ip command as ip -n NAME"));
  addInstallAsOptions(cmd);
  addLogOptions(cmd, D.logFormat);
  if (!api) return cmd;
  return addApiOptions(cmd)
    .addOption(
      option(
        "namespace",
        "--namespace <name>",
        "watch this namespace only; repeatable (default all)",
      )
        .argParser(collect),
    )
    .addOption(option("selector", "--selector <labels>", "label selector passed to the API"))
    .addOption(
      option(
        "resyncInterval",
        "--resync-interval <duration>",
        "check the interface this often, repairing drift",
      )
        .default(D.resyncInterval),
    )
    .addOption(staleAfterOption(D.apiStaleAfter))
    .addOption(metricsAddressOption(D.metricsAddress))
    // kube-proxy health and address lifetimes.
    .addOption(
      option(
        "kubeProxyHealth",
        "--kube-proxy-health <url>",
        "kube-proxy's health endpoint to gate announcements on, or off",
      ).default(D.kubeProxyHealth),
    )
    .addOption(
      option(
        "addressLifetime",
        "--address-lifetime <duration>",
        "add addresses with this lifetime and renew them at a third of it, or off",
      ).default(D.addressLifetime),
    )
    // The agent's addresses and announce gate.
    .addOption(classOption("announce the LoadBalancer addresses of this class", D.class))
    .addOption(defaultClassOption("also of Services without a class"))
    .addOption(
      option("externalIps", "--external-ips [bool]", "announce spec.externalIPs; false: ignore")
        .default(D.externalIps),
    )
    .addOption(
      option("announce", "--announce <mode>", "ready: only what has usable endpoints; always")
        .default(D.announce),
    )
    .addOption(
      option("announceDelay", "--announce-delay <duration>", "hold-down before re-announcing")
        .default(D.announceDelay),
    )
    .addOption(
      option(
        "announceDamping",
        "--announce-damping <half-life>",
        "an address whose endpoints or kube-proxy keep failing stays withdrawn until its flap penalty decays at this half-life; 0 disables",
      ).default(D.announceDamping),
    )
    .addOption(
      option("nodeName", "--node-name <name>", "this node, for Local Services (also NODE_NAME)"),
    );
}

/** `--install-as` and the SONiC store's settings (docs/sonic.md), for every agent command. */
function addInstallAsOptions(cmd: Command): Command {
  const D = AGENT_DEFAULTS;
  return cmd
    .addOption(
      option(
        "installAs",
        "--install-as <store>",
        "address: host addresses on --interface; route: kernel routes; sonic: entries of a SONiC loopback in CONFIG_DB",
      ).default(D.installAs),
    )
    .addOption(
      option("routeProtocol", "--route-protocol <n>", "route mode: kube-gw's protocol number")
        .default(D.routeProtocol),
    )
    .addOption(
      option("routeTable", "--route-table <table>", "route mode: main or a table number")
        .default(D.routeTable),
    )
    .addOption(
      option("sonicLoopback", "--sonic-loopback <name>", "the dedicated SONiC loopback")
        .default(D.sonicLoopback),
    )
    .addOption(
      option("sonicRedisSocket", "--sonic-redis-socket <path>", "SONiC's Redis socket")
        .default(D.sonicRedisSocket),
    )
    .addOption(
      option("sonicDb", "--sonic-db <index>", "CONFIG_DB's database index").default(D.sonicDb),
    );
}

/** `--class`, shared by the agent and the controller; only the help text differs. */
function classOption(description: string, defaultClass: string): Option {
  return option("class", "--class <class>", description).default(defaultClass);
}

/** `--default-class`, shared by the agent and the controller. */
function defaultClassOption(description: string): Option {
  return option("defaultClass", "--default-class [bool]", description);
}

/** The options of `kube-gw controller`. */
function addController(cmd: Command): Command {
  const C = CONTROLLER_DEFAULTS;
  cmd
    .addOption(classOption("the spec.loadBalancerClass served", C.class))
    .addOption(defaultClassOption("also serve Services without a class"))
    .addOption(
      option("pool", "--pool <cidr>", "the default pool; repeatable or comma-separated")
        .argParser(collect),
    )
    .addOption(
      option("config", "--config <namespace/name>", "the pools ConfigMap (key pools.yaml)"),
    )
    .addOption(
      option("leaderElect", "--leader-elect [bool]", "elect a leader on a Lease")
        .default(C.leaderElect),
    )
    .addOption(
      option("leaseNamespace", "--lease-namespace <name>", "the Lease's namespace")
        .default(C.leaseNamespace),
    );
  addLogOptions(cmd, C.logFormat);
  return addApiOptions(cmd)
    .addOption(staleAfterOption(C.apiStaleAfter))
    .addOption(metricsAddressOption(C.metricsAddress));
}

/**
 * Parses argv (without the program name). One leading `--` is dropped:
 * `deno task start -- run ...` hands it over as the first argument.
 *
 * @returns the invocation, or `undefined` when help was printed.
 * @throws {UsageError} on bad usage, with commander's one-line message.
 */
export function parseArgs(
  argv: readonly string[],
  env: (name: string) => string | undefined,
  out: (text: string) => void,
): Invocation | undefined {
  let result: Invocation | undefined;
  const program = new Command("kube-gw")
    .description(
      "Keeps the addresses of Kubernetes Services (externalIPs and LoadBalancer) as host addresses on a router's loopback while kube-proxy can deliver them, for BGP to announce.",
    )
    .exitOverride()
    .configureOutput({ writeOut: out, writeErr: () => {}, outputError: () => {} })
    .showSuggestionAfterError(true);
  const define = (name: CommandName, description: string, api: boolean, isDefault = false) => {
    const cmd = program.command(name, { isDefault }).description(description)
      .exitOverride().configureOutput({ writeOut: out, writeErr: () => {}, outputError: () => {} });
    if (name === "controller") addController(cmd);
    else if (name !== "version") addCommon(cmd, api);
    cmd.allowExcessArguments(false).action((opts: Record<string, unknown>) => {
      // A flag on the command line wins over its environment variable, which wins over the default.
      const merged: Record<string, unknown> = { ...opts };
      const fromEnv: Partial<Record<OptionKey, string>> = {};
      for (const [key, variable] of Object.entries(FLAG_ENV)) {
        const value = env(variable);
        if (value === undefined || cmd.getOptionValueSource(key) === "cli") continue;
        if (!cmd.options.some((o) => o.attributeName() === key)) continue;
        merged[key] = LIST_OPTIONS.has(key) ? [value] : value;
        fromEnv[key as OptionKey] = variable;
      }
      const nodeName = env(NODE_NAME_FALLBACK_ENV);
      if (
        merged.nodeName === undefined && nodeName !== undefined &&
        cmd.options.some((o) => o.attributeName() === "nodeName")
      ) {
        merged.nodeName = nodeName;
        fromEnv.nodeName = NODE_NAME_FALLBACK_ENV;
      }
      result = {
        command: name,
        options: { ...merged as RawOptions, debug: env("KUBEGW_DEBUG"), fromEnv },
      };
    });
  };
  define("run", "watch Services and keep their addresses (default)", true, true);
  define("once", "reconcile once, then exit", true);
  define("plan", "print the addresses that would be added and removed; change nothing", true);
  define("drain", "remove every managed address, to leave the anycast group", false);
  define(
    "controller",
    "allocate addresses to LoadBalancer Services (the cluster's controller)",
    true,
  );
  define("version", "print the version and the commit", false);
  try {
    program.parse(argv[0] === "--" ? argv.slice(1) : [...argv], { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.help") return undefined;
      throw new UsageError(err.message.replace(/^error: /, ""), { cause: err });
    }
    throw err;
  }
  return result;
}
