/**
 * The agent's settings (`run`, `once`, `plan`, `drain`): its defaults in one
 * table ({@linkcode AGENT_DEFAULTS}, which the command line's help shows), and
 * the raw flag and environment values validated into a {@linkcode Config}.
 * Pure: the caller hands in the raw strings.
 *
 * @module
 */

import {
  type Cidr,
  cidrsOverlap,
  CidrSyntaxError,
  LOOPBACK_NETWORKS,
  parseCidr,
  specialRangeCovering,
} from "../base/cidr.ts";
import type { AnnounceMode } from "./announce.ts";
import { parseAddressLifetime } from "./address_lifetime.ts";
import {
  type InstallAs,
  parseInstallOptions,
  parseSonicSettings,
  type RouteSettings,
  type SonicSettings,
} from "./install_mode.ts";
import { parseKubeProxyHealth } from "./kube_proxy_health.ts";
import type { Level, LogFormat } from "../base/log.ts";
import {
  badValue,
  type ListenAddress,
  type OptionKey,
  parseBool,
  parseDuration,
  parseLevel,
  parseListen,
  parseLogFormat,
  type RawOptions,
  renamedSource,
  sourceOf,
  splitList,
  UsageError,
} from "../base/flags.ts";
import { DEFAULT_CLASS, parseClassOptions } from "../service/class.ts";
import { DEFAULT_KUBE_PROXY_HEALTH } from "./kube_proxy_health.ts";
import { DEFAULT_API_STALE_AFTER, parseApiStaleAfter } from "../kube/staleness.ts";
import { CONFIG_DB, DEFAULT_SONIC_SOCKET } from "../kernel/sonic_keys.ts";

/**
 * The agent's defaults, as flag texts: read by `cli.ts` for the help and by
 * {@linkcode parseConfig} for a value that was not given, so that the two
 * cannot disagree.
 */
export const AGENT_DEFAULTS = {
  interface: "lo",
  logFormat: "text",
  resyncInterval: "30s",
  apiStaleAfter: DEFAULT_API_STALE_AFTER,
  metricsAddress: "127.0.0.1:9472",
  kubeProxyHealth: DEFAULT_KUBE_PROXY_HEALTH,
  addressLifetime: "off",
  class: DEFAULT_CLASS,
  externalIps: "true",
  announce: "ready",
  announceDelay: "2s",
  announceDamping: "30s",
  installAs: "address",
  // Neither the kernel's, FRR's (11, 42, 186–198) nor BIRD's (12); not kube-vip's 248 nor Calico's 80.
  routeProtocol: "200",
  routeTable: "main",
  sonicLoopback: "Loopback1000",
  sonicRedisSocket: DEFAULT_SONIC_SOCKET,
  sonicDb: String(CONFIG_DB),
} as const satisfies Partial<Record<OptionKey, string>>;

/** Everything the agent needs to know, validated. */
export interface Config {
  readonly networks: readonly Cidr[];
  /** The managed interface (`--interface`). */
  readonly interface: string;
  readonly netns?: string;
  /** The kubeconfig file; ignored in in-cluster mode. */
  readonly kubeconfig?: string;
  readonly inCluster: boolean;
  readonly logLevel: Level;
  readonly logFormat: LogFormat;
  readonly resyncMs: number;
  /** Namespaces to watch; empty means all. */
  readonly namespaces: readonly string[];
  readonly selector?: string;
  /** Where `/metrics`, `/healthz` and `/readyz` listen; `undefined` when off. */
  readonly metricsAddress?: ListenAddress;
  // kube-proxy health and address lifetimes.
  /** kube-proxy's health endpoint (`--kube-proxy-health`); `undefined` when off. */
  readonly kubeProxyHealth?: string;
  // The agent's addresses and announce gate.
  /** Which LoadBalancer Services are kube-gw's (`--class`, `--default-class`). */
  readonly classes: { readonly class: string; readonly defaultClass: boolean };
  /** Take `spec.externalIPs` (`--external-ips`). @default true */
  readonly externalIPs: boolean;
  /** `--announce`: `ready` gates on endpoints, `always` does not. @default "ready" */
  readonly announce: AnnounceMode;
  /** `--announce-delay` in milliseconds; 0 disables the hold-down. @default 2000 */
  readonly announceDelayMs: number;
  /** `--announce-damping`: half-life of the flap penalty in milliseconds; 0 disables. @default 30000 */
  readonly announceDampingMs: number;
  /** `--node-name` (or `KUBEGW_NODE_NAME`, or `NODE_NAME`). */
  readonly nodeName?: string;
  /** Address lifetime in seconds (`--address-lifetime`); `undefined` when off (forever). */
  readonly addressLifetimeSeconds?: number;
  /** `/readyz` fails when a watch was not known current for this long. */
  readonly apiStaleAfterMs: number;
  /** `--install-as`: addresses on `--interface`, routes, or SONiC CONFIG_DB entries. @default "address" */
  readonly installAs: InstallAs;
  /** Route mode's protocol and table (`--route-protocol`, `--route-table`); set in route mode only. */
  readonly route?: RouteSettings;
  /** The SONiC store's settings; set exactly when `installAs` is `sonic`. */
  readonly sonic?: SonicSettings;
}

/**
 * Parses managed networks and refuses any that overlaps loopback or lies
 * wholly inside a range whose every address would be refused (link-local,
 * multicast, unspecified, broadcast).
 *
 * @param source the name to report errors under. @default "--network"
 */
export function parseNetworks(values: readonly string[] | undefined, source = "--network"): Cidr[] {
  const items = splitList(values);
  if (items.length === 0) {
    throw new UsageError(`${source}: no managed network given (flag or KUBEGW_NETWORK)`);
  }
  return items.map((text) => {
    let cidr: Cidr;
    try {
      cidr = parseCidr(text);
    } catch (err) {
      if (!(err instanceof CidrSyntaxError)) throw err;
      throw new UsageError(`${source}: ${JSON.stringify(text)} is not a CIDR: ${err.detail}`, {
        cause: err,
      });
    }
    const loop = LOOPBACK_NETWORKS.find((l) => cidrsOverlap(l, cidr));
    if (loop) throw badValue(source, text, `overlaps the loopback range ${loop.text}`);
    const special = specialRangeCovering(cidr);
    if (special) {
      throw badValue(
        source,
        text,
        `lies inside the ${
          special.name.replace("_", "-")
        } range ${special.cidr.text}, whose addresses are never assigned`,
      );
    }
    return cidr;
  });
}

const IFNAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;
const NETNS = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Validates raw options into a {@linkcode Config}. @throws {UsageError} */
export function parseConfig(raw: RawOptions): Config {
  const D = AGENT_DEFAULTS;
  const src = (key: OptionKey, flag: string) => sourceOf(raw, key, flag);
  const networks = parseNetworks(raw.network, src("network", "--network"));
  const device = (raw.interface ?? D.interface).trim();
  if (!IFNAME.test(device)) {
    throw badValue(src("interface", "--interface"), device, "is not an interface name");
  }
  const netns = raw.netns?.trim() || undefined;
  if (netns !== undefined && !NETNS.test(netns)) {
    throw badValue(src("netns", "--netns"), netns, "is not a network namespace name");
  }
  // A KUBECONFIG list (a:b) is kept whole: main.ts merges the files as kubectl does.
  const kubeconfig = raw.kubeconfig?.trim() || undefined;
  const inCluster = parseBool(src("inCluster", "--in-cluster"), raw.inCluster);
  const resyncSource = src("resyncInterval", "--resync-interval");
  const resyncMs = parseDuration(resyncSource, raw.resyncInterval ?? D.resyncInterval);
  if (resyncMs !== 0 && resyncMs < 1000) {
    throw badValue(resyncSource, raw.resyncInterval ?? "", "is shorter than 1s (0 disables)");
  }
  const apiStaleAfterMs = parseApiStaleAfter(raw, D.apiStaleAfter);
  const namespaces = splitList(raw.namespace);
  for (const ns of namespaces) {
    if (!NAMESPACE.test(ns)) {
      throw badValue(src("namespace", "--namespace"), ns, "is not a namespace name");
    }
  }
  const announce = (raw.announce ?? D.announce).trim();
  if (announce !== "ready" && announce !== "always") {
    throw badValue(src("announce", "--announce"), announce, "is not ready or always");
  }
  const delaySource = src("announceDelay", "--announce-delay");
  const announceDelayMs = parseDuration(
    delaySource,
    raw.announceDelay ?? D.announceDelay,
    3_600_000,
  );
  const announceDampingMs = parseDuration(
    src("announceDamping", "--announce-damping"),
    raw.announceDamping ?? D.announceDamping,
    3_600_000,
  );
  const nodeName = raw.nodeName?.trim() || undefined;
  if (nodeName !== undefined && !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(nodeName)) {
    throw badValue(
      src("nodeName", "--node-name"),
      nodeName,
      "is not a node name (a DNS subdomain)",
    );
  }
  const selector = raw.selector?.trim() || undefined;
  if (selector !== undefined && (selector.length > 1024 || /[\r\n\0]/.test(selector))) {
    throw badValue(src("selector", "--selector"), selector, "is not a label selector");
  }
  const addressLifetimeSeconds = renamedSource(
    "--address-lifetime",
    src("addressLifetime", "--address-lifetime"),
    () => parseAddressLifetime(raw.addressLifetime ?? D.addressLifetime),
  );
  const install = parseInstallOptions({
    installAs: { source: src("installAs", "--install-as"), text: raw.installAs ?? D.installAs },
    routeProtocol: {
      source: src("routeProtocol", "--route-protocol"),
      text: raw.routeProtocol ?? D.routeProtocol,
    },
    routeTable: {
      source: src("routeTable", "--route-table"),
      text: raw.routeTable ?? D.routeTable,
    },
    addressLifetime: addressLifetimeSeconds === undefined
      ? undefined
      : { source: src("addressLifetime", "--address-lifetime") },
  });
  const sonic = install.installAs === "sonic"
    ? parseSonicSettings(raw, D, { addressLifetimeSeconds, netns })
    : undefined;
  return {
    networks,
    interface: device,
    netns,
    kubeconfig,
    inCluster,
    logLevel: parseLevel(raw),
    logFormat: parseLogFormat(raw, D.logFormat),
    resyncMs,
    namespaces: [...new Set(namespaces)],
    selector,
    metricsAddress: parseListen(
      raw.metricsAddress ?? D.metricsAddress,
      src("metricsAddress", "--metrics-address"),
    ),
    // kube-proxy health and address lifetimes.
    kubeProxyHealth: renamedSource(
      "--kube-proxy-health",
      src("kubeProxyHealth", "--kube-proxy-health"),
      () => parseKubeProxyHealth(raw.kubeProxyHealth ?? D.kubeProxyHealth),
    ),
    addressLifetimeSeconds,
    apiStaleAfterMs,
    // The agent's addresses and announce gate.
    classes: parseClassOptions(raw, D.class),
    externalIPs: parseBool(src("externalIps", "--external-ips"), raw.externalIps ?? D.externalIps),
    announce,
    announceDelayMs,
    announceDampingMs,
    nodeName,
    installAs: install.installAs,
    route: install.route,
    ...(sonic ? { sonic } : {}),
  };
}
