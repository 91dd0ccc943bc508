/**
 * What both programs' command lines share: {@linkcode UsageError}, the raw
 * option values as the command line hands them over ({@linkcode RawOptions}),
 * and the parsers of durations, booleans, lists, log levels and listen
 * addresses, each naming the flag or environment variable a bad value came
 * from. Pure.
 *
 * @module
 */

import { parseIp } from "./ip.ts";
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
  /** Where the value came from (`--metrics-address` or `KUBEGW_METRICS_ADDRESS`), for errors. */
  readonly source: string;
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
  // kube-proxy health and address lifetimes.
  readonly kubeProxyHealth?: string;
  readonly addressLifetime?: string;
  // How the agent holds the addresses (`--install-as`), and route mode's settings.
  readonly installAs?: string;
  readonly routeProtocol?: string;
  readonly routeTable?: string;
  // The agent's addresses and announce gate.
  readonly externalIps?: string | boolean;
  readonly announce?: string;
  readonly announceDelay?: string;
  readonly announceDamping?: string;
  readonly nodeName?: string;
  // LoadBalancer Services: class flags shared by `run` and `controller`.
  readonly class?: string;
  readonly defaultClass?: string | boolean;
  // `controller` only.
  readonly pool?: readonly string[];
  readonly config?: string;
  readonly leaderElect?: string | boolean;
  readonly leaseNamespace?: string;
  readonly apiStaleAfter?: string;
  // The SONiC store's settings (`--install-as sonic`).
  readonly sonicLoopback?: string;
  readonly sonicRedisSocket?: string;
  readonly sonicDb?: string;
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

/** The error for a bad value: `FLAG: "VALUE" WHAT`, one line. */
export function badValue(flag: string, value: string, what: string): UsageError {
  return new UsageError(`${flag}: ${JSON.stringify(value)} ${what}`);
}

const DURATION = /^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function formatMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
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
 * Runs a parser whose errors name `flag`, renaming it to `source` (the
 * environment variable the value came from) in the error.
 */
export function renamedSource<T>(flag: string, source: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (!(err instanceof UsageError) || source === flag) throw err;
    throw new UsageError(err.message.replace(flag, source), { cause: err });
  }
}

/** Splits repeated, comma-separated values and drops empty ones. */
export function splitList(values: readonly string[] | undefined): string[] {
  return (values ?? []).flatMap((v) => v.split(",")).map((v) => v.trim()).filter((v) => v !== "");
}

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
    if (!DURATION.test(t)) throw badValue(flag, text, "is not a duration (like 30s, 1m, 500ms)");
    for (const m of t.matchAll(/([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g)) {
      ms += Number(m[1]) * UNIT_MS[m[2]];
    }
  }
  if (!(ms <= maxMs)) throw badValue(flag, text, `is longer than the maximum ${formatMs(maxMs)}`);
  return Math.round(ms);
}

export function parseBool(flag: string, value: string | boolean | undefined): boolean {
  if (value === undefined || value === false) return false;
  if (value === true) return true;
  const v = value.trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(v)) return true;
  if (["", "0", "false", "no", "off"].includes(v)) return false;
  throw badValue(flag, value, "is not a boolean (1/0, true/false)");
}

export function parseLevel(raw: RawOptions): Level {
  if (raw.logLevel !== undefined) {
    const v = raw.logLevel.trim().toLowerCase();
    if (v === "warn") return "warning";
    if (v === "debug" || v === "info" || v === "warning" || v === "error") return v;
    throw badValue(
      sourceOf(raw, "logLevel", "--log-level"),
      raw.logLevel,
      "is not one of debug, info, warning, error",
    );
  }
  return parseBool("KUBEGW_DEBUG", raw.debug) ? "debug" : "info";
}

/**
 * Parses `--log-format`: `text` or `json`.
 *
 * @throws {UsageError} naming the flag or environment variable.
 */
export function parseLogFormat(raw: RawOptions, fallback: LogFormat): LogFormat {
  const format = (raw.logFormat ?? fallback).trim();
  if (format !== "text" && format !== "json") {
    throw badValue(sourceOf(raw, "logFormat", "--log-format"), format, "is not text or json");
  }
  return format;
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
  if (!m) throw badValue(source, text, "is not host:port, [IPv6]:port, :port or off");
  const port = Number(m[3]);
  if (port > 65535) throw badValue(source, text, "has a port outside 0 to 65535");
  const hostname = m[1] ?? (m[2] || "0.0.0.0");
  const why = badHost(hostname, m[1] !== undefined);
  if (why) throw badValue(source, text, why);
  return { hostname, port, source };
}
