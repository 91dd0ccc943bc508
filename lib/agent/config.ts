/**
 * Command-line and environment settings, validated into a {@linkcode Config}.
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
import { parseIp } from "../base/ip.ts";
import { parseAddressLifetime } from "./address_lifetime.ts";
import { parseKubeProxyHealth } from "./kube_proxy_health.ts";
import type { Level, LogFormat } from "../base/log.ts";
import { DEFAULT_CLASS } from "../controller/lb_service.ts";

/** Bad input from the command line or the environment; exit code 2. */
export class UsageError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UsageError";
  }
}

/** Where the metrics and health endpoints listen. */
export interface ListenAddress {
  readonly hostname: string;
  readonly port: number;
  /** Where the value came from (`--metrics-address` or `KUBEGW_METRICS_ADDRESS`), for errors. */
  readonly source: string;
}

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
  // Issue 12, kube-proxy health and address lifetimes.
  /** kube-proxy's health endpoint (`--kube-proxy-health`); `undefined` when off. */
  readonly kubeProxyHealth?: string;
  // Issue 11 item 6 and issue 12, the agent's addresses and announce gate.
  /** Which LoadBalancer Services are kube-gw's (`--class`, `--default-class`). */
  readonly classes: { readonly class: string; readonly defaultClass: boolean };
  /** Take `spec.externalIPs` (`--external-ips`). @default true */
  readonly externalIPs: boolean;
  /** `--announce`: `ready` gates on endpoints, `always` does not. @default "ready" */
  readonly announce: AnnounceMode;
  /** `--announce-delay` in milliseconds; 0 disables the hold-down. @default 2000 */
  readonly announceDelayMs: number;
  /** `--node-name` (or `KUBEGW_NODE_NAME`, or `NODE_NAME`). */
  readonly nodeName?: string;
  /** Address lifetime in seconds (`--address-lifetime`); `undefined` when off (forever). */
  readonly addressLifetimeSeconds?: number;
  /** `/readyz` fails when a watch was not known current for this long. */
  readonly apiStaleAfterMs: number;
}

/** Raw option values as commander hands them over (flags already merged with env). */
export interface RawOptions {
  readonly network?: readonly string[];
  readonly interface?: string;
  readonly netns?: string;
  readonly kubeconfig?: string;
  readonly inCluster?: string | boolean;
  readonly logLevel?: string;
  readonly debug?: string;
  readonly logFormat?: string;
  readonly resyncInterval?: string;
  readonly namespace?: readonly string[];
  readonly selector?: string;
  readonly metricsAddress?: string;
  // Issue 12, kube-proxy health and address lifetimes.
  readonly kubeProxyHealth?: string;
  readonly addressLifetime?: string;
  // Issue 11 item 6 and issue 12.
  readonly externalIps?: string | boolean;
  readonly announce?: string;
  readonly announceDelay?: string;
  readonly nodeName?: string;
  // LoadBalancer Services (issue 11): class flags shared by `run` and `controller`.
  readonly class?: string;
  readonly defaultClass?: string | boolean;
  // `controller` only.
  readonly pool?: readonly string[];
  readonly config?: string;
  readonly leaderElect?: string | boolean;
  readonly leaseNamespace?: string;
  readonly apiStaleAfter?: string;
  /**
   * For each option whose value came from its environment variable rather
   * than the command line, that variable's name: errors name the source the
   * value came from. Options absent here are reported under their flag.
   */
  readonly fromEnv?: Readonly<Partial<Record<OptionKey, string>>>;
}

/** The options that have a flag and an environment variable. */
export type OptionKey = Exclude<keyof RawOptions, "debug" | "fromEnv">;

/** The name to report a value under: its environment variable if it came from one, else the flag. */
export function sourceOf(raw: RawOptions, key: OptionKey, flag: string): string {
  return raw.fromEnv?.[key] ?? flag;
}

function bad(flag: string, value: string, what: string): UsageError {
  return new UsageError(`${flag}: ${JSON.stringify(value)} ${what}`);
}

/** Splits repeated, comma-separated values and drops empty ones. */
export function splitList(values: readonly string[] | undefined): string[] {
  return (values ?? []).flatMap((v) => v.split(",")).map((v) => v.trim()).filter((v) => v !== "");
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
    if (loop) throw bad(source, text, `overlaps the loopback range ${loop.text}`);
    const special = specialRangeCovering(cidr);
    if (special) {
      throw bad(
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
const DURATION = /^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * The longest duration any flag takes: 24 hours. Timers in Deno (as in
 * browsers) hold a signed 32-bit number of milliseconds, about 24.8 days;
 * a longer delay fires at once. Nothing kube-gw waits for needs more than a day.
 */
export const MAX_DURATION_MS = 24 * 3_600_000;

/**
 * Parses `30s`, `1m30s`, `500ms` or a bare number of seconds into milliseconds.
 *
 * @param maxMs the longest duration accepted. @default MAX_DURATION_MS (24h)
 * @throws {UsageError} naming `flag` when the text is not a duration or is longer than `maxMs`.
 */
export function parseDuration(flag: string, text: string, maxMs = MAX_DURATION_MS): number {
  const t = text.trim();
  let ms = 0;
  if (/^[0-9]+$/.test(t)) {
    ms = Number(t) * 1000;
  } else {
    if (!DURATION.test(t)) throw bad(flag, text, "is not a duration (like 30s, 1m, 500ms)");
    for (const m of t.matchAll(/([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g)) {
      ms += Number(m[1]) * UNIT_MS[m[2]];
    }
  }
  if (!(ms <= maxMs)) throw bad(flag, text, `is longer than the maximum ${formatMs(maxMs)}`);
  return Math.round(ms);
}

function formatMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

export function parseBool(flag: string, value: string | boolean | undefined): boolean {
  if (value === undefined || value === false) return false;
  if (value === true) return true;
  const v = value.trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(v)) return true;
  if (["", "0", "false", "no", "off"].includes(v)) return false;
  throw bad(flag, value, "is not a boolean (1/0, true/false)");
}

export function parseLevel(raw: RawOptions): Level {
  if (raw.logLevel !== undefined) {
    const v = raw.logLevel.trim().toLowerCase();
    if (v === "warn") return "warning";
    if (v === "debug" || v === "info" || v === "warning" || v === "error") return v;
    throw bad(
      sourceOf(raw, "logLevel", "--log-level"),
      raw.logLevel,
      "is not one of debug, info, warning, error",
    );
  }
  return parseBool("KUBEGW_DEBUG", raw.debug) ? "debug" : "info";
}

const HOST_LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** Why `host` is not a host to listen on, or `undefined` when it is. */
function badHost(host: string, bracketed: boolean): string | undefined {
  if (bracketed || host.includes(":")) {
    const p = parseIp(host);
    if (p.ok && p.ip.family === 6) return undefined;
    if (!p.ok && p.canonical) {
      return `has a non-canonical IPv6 address (did you mean [${p.canonical}]?)`;
    }
    return "has no valid IPv6 address in brackets";
  }
  if (/^[0-9.]+$/.test(host)) {
    const p = parseIp(host);
    if (p.ok) return undefined;
    if (p.canonical) return `has a non-canonical IPv4 address (did you mean ${p.canonical}?)`;
    return `has ${JSON.stringify(host)}, which is not an IPv4 address (each part 0 to 255)`;
  }
  if (host.length > 253 || !host.split(".").every((l) => HOST_LABEL.test(l))) {
    return `has ${JSON.stringify(host)}, which is neither an IP address nor a host name`;
  }
  return undefined;
}

/**
 * Parses `host:port`, `[v6]:port`, `:port` or `off`. The host is an IPv4
 * address, a bracketed IPv6 address, or a host name such as `localhost`; the
 * port is 0 to 65535 (0: any free port).
 *
 * @param source the name to report errors under. @default "--metrics-address"
 */
export function parseListen(text: string, source = "--metrics-address"): ListenAddress | undefined {
  const t = text.trim();
  if (t === "off") return undefined;
  const m = /^(?:\[([^\]]*)\]|([^:\[\]]*)):([0-9]{1,5})$/.exec(t);
  if (!m) throw bad(source, text, "is not host:port, [IPv6]:port, :port or off");
  const port = Number(m[3]);
  if (port > 65535) throw bad(source, text, "has a port outside 0 to 65535");
  const hostname = m[1] ?? (m[2] || "0.0.0.0");
  const why = badHost(hostname, m[1] !== undefined);
  if (why) throw bad(source, text, why);
  return { hostname, port, source };
}

/**
 * Runs a parser whose errors name `flag`, renaming it to `source` (the
 * environment variable the value came from) in the error.
 */
function renamed<T>(flag: string, source: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (!(err instanceof UsageError) || source === flag) throw err;
    throw new UsageError(err.message.replace(flag, source), { cause: err });
  }
}

/** Validates raw options into a {@linkcode Config}. @throws {UsageError} */
export function parseConfig(raw: RawOptions): Config {
  const src = (key: OptionKey, flag: string) => sourceOf(raw, key, flag);
  const networks = parseNetworks(raw.network, src("network", "--network"));
  const device = (raw.interface ?? "lo").trim();
  if (!IFNAME.test(device)) {
    throw bad(src("interface", "--interface"), device, "is not an interface name");
  }
  const netns = raw.netns?.trim() || undefined;
  if (netns !== undefined && !NETNS.test(netns)) {
    throw bad(src("netns", "--netns"), netns, "is not a network namespace name");
  }
  // A KUBECONFIG list (a:b) is kept whole: main.ts merges the files as kubectl does.
  const kubeconfig = raw.kubeconfig?.trim() || undefined;
  const inCluster = parseBool(src("inCluster", "--in-cluster"), raw.inCluster);
  const format = (raw.logFormat ?? "text").trim();
  if (format !== "text" && format !== "json") {
    throw bad(src("logFormat", "--log-format"), format, "is not text or json");
  }
  const resyncSource = src("resyncInterval", "--resync-interval");
  const resyncMs = parseDuration(resyncSource, raw.resyncInterval ?? "30s");
  if (resyncMs !== 0 && resyncMs < 1000) {
    throw bad(resyncSource, raw.resyncInterval ?? "", "is shorter than 1s (0 disables)");
  }
  const staleSource = src("apiStaleAfter", "--api-stale-after");
  const apiStaleAfterMs = parseDuration(staleSource, raw.apiStaleAfter ?? "45s");
  if (apiStaleAfterMs < 35_000) {
    throw bad(
      staleSource,
      raw.apiStaleAfter ?? "",
      "is shorter than 35s (the API connection is probed every 30s)",
    );
  }
  const namespaces = splitList(raw.namespace);
  for (const ns of namespaces) {
    if (!NAMESPACE.test(ns)) {
      throw bad(src("namespace", "--namespace"), ns, "is not a namespace name");
    }
  }
  const announce = (raw.announce ?? "ready").trim();
  if (announce !== "ready" && announce !== "always") {
    throw bad(src("announce", "--announce"), announce, "is not ready or always");
  }
  const delaySource = src("announceDelay", "--announce-delay");
  const announceDelayMs = parseDuration(delaySource, raw.announceDelay ?? "2s", 3_600_000);
  const nodeName = raw.nodeName?.trim() || undefined;
  if (nodeName !== undefined && !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(nodeName)) {
    throw bad(src("nodeName", "--node-name"), nodeName, "is not a node name (a DNS subdomain)");
  }
  const selector = raw.selector?.trim() || undefined;
  if (selector !== undefined && (selector.length > 1024 || /[\r\n\0]/.test(selector))) {
    throw bad(src("selector", "--selector"), selector, "is not a label selector");
  }
  return {
    networks,
    interface: device,
    netns,
    kubeconfig,
    inCluster,
    logLevel: parseLevel(raw),
    logFormat: format,
    resyncMs,
    namespaces: [...new Set(namespaces)],
    selector,
    metricsAddress: parseListen(
      raw.metricsAddress ?? "127.0.0.1:9472",
      src("metricsAddress", "--metrics-address"),
    ),
    // Issue 12, kube-proxy health and address lifetimes.
    kubeProxyHealth: renamed(
      "--kube-proxy-health",
      src("kubeProxyHealth", "--kube-proxy-health"),
      () => parseKubeProxyHealth(raw.kubeProxyHealth),
    ),
    addressLifetimeSeconds: renamed(
      "--address-lifetime",
      src("addressLifetime", "--address-lifetime"),
      () => parseAddressLifetime(raw.addressLifetime),
    ),
    apiStaleAfterMs,
    // Issue 11 item 6 and issue 12.
    classes: parseClassOptions(raw),
    externalIPs: raw.externalIps === undefined
      ? true
      : parseBool(src("externalIps", "--external-ips"), raw.externalIps),
    announce,
    announceDelayMs,
    nodeName,
  };
}

const CLASS =
  /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

/**
 * The LoadBalancer class options of `run` and `controller` (`--class`,
 * `--default-class`). A class is a label-style name with a domain prefix,
 * as the API requires of `spec.loadBalancerClass`.
 *
 * @default class "kube-gw.io/anycast", defaultClass false
 * @throws {UsageError} naming the flag or environment variable.
 */
export function parseClassOptions(raw: RawOptions): { class: string; defaultClass: boolean } {
  const cls = (raw.class ?? DEFAULT_CLASS).trim();
  if (!CLASS.test(cls)) {
    throw bad(
      sourceOf(raw, "class", "--class"),
      cls,
      "is not a load-balancer class (a prefixed name like kube-gw.io/anycast)",
    );
  }
  return {
    class: cls,
    defaultClass: parseBool(sourceOf(raw, "defaultClass", "--default-class"), raw.defaultClass),
  };
}
