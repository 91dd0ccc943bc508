/**
 * The settings of `kube-gw controller`, validated into a
 * {@linkcode ControllerConfig}. Pure: the caller hands in the raw strings
 * (flags merged with their `KUBEGW_*` variables by `cli.ts`).
 *
 * @module
 */

import {
  badValue,
  type ListenAddress,
  type OptionKey,
  parseBool,
  parseLevel,
  parseListen,
  parseLogFormat,
  type RawOptions,
  sourceOf,
  UsageError,
} from "../base/flags.ts";
import type { Level, LogFormat } from "../base/log.ts";
import { type ClassOptions, DEFAULT_CLASS, parseClassOptions } from "../service/class.ts";
import { flagPool, type Pool, PoolConfigError } from "./pools.ts";
import { DEFAULT_API_STALE_AFTER, parseApiStaleAfter } from "../kube/staleness.ts";

/**
 * The controller's defaults, as flag texts: read by `cli.ts` for the help and
 * by {@linkcode parseControllerConfig} for a value that was not given. Its
 * status listener is 9473, beside the agent's 9472.
 */
export const CONTROLLER_DEFAULTS = {
  logFormat: "text",
  metricsAddress: "127.0.0.1:9473",
  class: DEFAULT_CLASS,
  leaderElect: "true",
  leaseNamespace: "kube-system",
  apiStaleAfter: DEFAULT_API_STALE_AFTER,
} as const satisfies Partial<Record<OptionKey, string>>;

/** Everything the controller needs to know, validated. */
export interface ControllerConfig {
  readonly classes: ClassOptions;
  /** The pool of `--pool`, if given. */
  readonly flagPool?: Pool;
  /** The pools ConfigMap (`--config NAMESPACE/NAME`). */
  readonly configMap?: { readonly namespace: string; readonly name: string };
  /** @default true */
  readonly leaderElect: boolean;
  /** @default "kube-system" */
  readonly leaseNamespace: string;
  readonly kubeconfig?: string;
  readonly inCluster: boolean;
  readonly logLevel: Level;
  readonly logFormat: LogFormat;
  /** `undefined` when off. @default 127.0.0.1:9473 */
  readonly metricsAddress?: ListenAddress;
  /** `/readyz` fails when a watch was not known current for this long (`--api-stale-after`). */
  readonly apiStaleAfterMs: number;
}

const NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const CM_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** Validates the controller's raw options. @throws {UsageError} naming the flag or variable. */
export function parseControllerConfig(raw: RawOptions): ControllerConfig {
  const D = CONTROLLER_DEFAULTS;
  const src = (key: OptionKey, flag: string) => sourceOf(raw, key, flag);
  let pool: Pool | undefined;
  try {
    pool = flagPool(raw.pool ?? []);
  } catch (err) {
    if (!(err instanceof PoolConfigError)) throw err;
    const where = src("pool", "--pool");
    throw new UsageError(err.message.replace(/^--pool/, where), { cause: err });
  }
  let configMap: ControllerConfig["configMap"];
  const cfg = raw.config?.trim();
  if (cfg) {
    const [ns, name, ...rest] = cfg.split("/");
    if (rest.length > 0 || !NAME.test(ns ?? "") || !CM_NAME.test(name ?? "")) {
      throw badValue(src("config", "--config"), cfg, "is not NAMESPACE/NAME of a ConfigMap");
    }
    configMap = { namespace: ns, name };
  }
  // Neither is needed: the pools may all be AddressPool resources.
  const leaseNamespace = (raw.leaseNamespace ?? D.leaseNamespace).trim();
  if (!NAME.test(leaseNamespace)) {
    throw badValue(
      src("leaseNamespace", "--lease-namespace"),
      leaseNamespace,
      "is not a namespace name",
    );
  }
  return {
    classes: parseClassOptions(raw, D.class),
    flagPool: pool,
    configMap,
    leaderElect: parseBool(src("leaderElect", "--leader-elect"), raw.leaderElect ?? D.leaderElect),
    leaseNamespace,
    // A KUBECONFIG list (a:b) is kept whole: the files are merged as kubectl does.
    kubeconfig: raw.kubeconfig?.trim() || undefined,
    inCluster: parseBool(src("inCluster", "--in-cluster"), raw.inCluster),
    logLevel: parseLevel(raw),
    logFormat: parseLogFormat(raw, D.logFormat),
    metricsAddress: parseListen(
      raw.metricsAddress ?? D.metricsAddress,
      src("metricsAddress", "--metrics-address"),
    ),
    apiStaleAfterMs: parseApiStaleAfter(raw, D.apiStaleAfter),
  };
}
