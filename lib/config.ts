/**
 * Command-line and environment settings, validated into a {@linkcode Config}.
 * Pure: the caller hands in the raw strings.
 *
 * @module
 */

import { type Cidr, cidrsOverlap, CidrSyntaxError, LOOPBACK_NETWORKS, parseCidr } from "./cidr.ts";
import type { Level, LogFormat } from "./log.ts";

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
}

function bad(flag: string, value: string, what: string): UsageError {
  return new UsageError(`${flag}: ${JSON.stringify(value)} ${what}`);
}

/** Splits repeated, comma-separated values and drops empty ones. */
export function splitList(values: readonly string[] | undefined): string[] {
  return (values ?? []).flatMap((v) => v.split(",")).map((v) => v.trim()).filter((v) => v !== "");
}

/** Parses managed networks and refuses any that overlaps loopback. */
export function parseNetworks(values: readonly string[] | undefined): Cidr[] {
  const items = splitList(values);
  if (items.length === 0) {
    throw new UsageError("--network: no managed network given (flag or KUBEGW_NETWORK)");
  }
  return items.map((text) => {
    let cidr: Cidr;
    try {
      cidr = parseCidr(text);
    } catch (err) {
      if (!(err instanceof CidrSyntaxError)) throw err;
      throw new UsageError(`--network: ${JSON.stringify(text)} is not a CIDR: ${err.detail}`, {
        cause: err,
      });
    }
    const loop = LOOPBACK_NETWORKS.find((l) => cidrsOverlap(l, cidr));
    if (loop) throw bad("--network", text, `overlaps the loopback range ${loop.text}`);
    return cidr;
  });
}

const IFNAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;
const NETNS = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DURATION = /^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses `30s`, `1m30s`, `500ms` or a bare number of seconds into milliseconds. */
export function parseDuration(flag: string, text: string): number {
  const t = text.trim();
  if (/^[0-9]+$/.test(t)) return Number(t) * 1000;
  if (!DURATION.test(t)) throw bad(flag, text, "is not a duration (like 30s, 1m, 500ms)");
  let ms = 0;
  for (const m of t.matchAll(/([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g)) {
    ms += Number(m[1]) * UNIT_MS[m[2]];
  }
  return Math.round(ms);
}

function parseBool(flag: string, value: string | boolean | undefined): boolean {
  if (value === undefined || value === false) return false;
  if (value === true) return true;
  const v = value.trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(v)) return true;
  if (["", "0", "false", "no", "off"].includes(v)) return false;
  throw bad(flag, value, "is not a boolean (1/0, true/false)");
}

function parseLevel(raw: RawOptions): Level {
  if (raw.logLevel !== undefined) {
    const v = raw.logLevel.trim().toLowerCase();
    if (v === "warn") return "warning";
    if (v === "debug" || v === "info" || v === "warning" || v === "error") return v;
    throw bad("--log-level", raw.logLevel, "is not one of debug, info, warning, error");
  }
  return parseBool("KUBEGW_DEBUG", raw.debug) ? "debug" : "info";
}

/** Parses `host:port`, `[v6]:port`, `:port` or `off`. */
export function parseListen(text: string): ListenAddress | undefined {
  const t = text.trim();
  if (t === "off") return undefined;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]*)):([0-9]{1,5})$/.exec(t);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw bad("--metrics-address", text, "is not host:port or off");
  }
  return { hostname: m[1] ?? (m[2] || "0.0.0.0"), port };
}

/** Validates raw options into a {@linkcode Config}. @throws {UsageError} */
export function parseConfig(raw: RawOptions): Config {
  const networks = parseNetworks(raw.network);
  const device = (raw.interface ?? "lo").trim();
  if (!IFNAME.test(device)) throw bad("--interface", device, "is not an interface name");
  const netns = raw.netns?.trim() || undefined;
  if (netns !== undefined && !NETNS.test(netns)) {
    throw bad("--netns", netns, "is not a network namespace name");
  }
  const kubeconfig = raw.kubeconfig?.split(":")[0]?.trim() || undefined;
  const inCluster = parseBool("--in-cluster", raw.inCluster);
  const format = (raw.logFormat ?? "text").trim();
  if (format !== "text" && format !== "json") {
    throw bad("--log-format", format, "is not text or json");
  }
  const resyncMs = parseDuration("--resync-interval", raw.resyncInterval ?? "30s");
  if (resyncMs !== 0 && resyncMs < 1000) {
    throw bad("--resync-interval", raw.resyncInterval ?? "", "is shorter than 1s (0 disables)");
  }
  const namespaces = splitList(raw.namespace);
  for (const ns of namespaces) {
    if (!NAMESPACE.test(ns)) throw bad("--namespace", ns, "is not a namespace name");
  }
  const selector = raw.selector?.trim() || undefined;
  if (selector !== undefined && (selector.length > 1024 || /[\r\n\0]/.test(selector))) {
    throw bad("--selector", selector, "is not a label selector");
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
    metricsAddress: parseListen(raw.metricsAddress ?? "127.0.0.1:9472"),
  };
}
