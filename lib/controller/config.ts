/**
 * The settings of `kube-gw controller`, validated into a
 * {@linkcode ControllerConfig}. Pure: the caller hands in the raw strings
 * (flags merged with their `KUBEGW_*` variables by `cli.ts`).
 *
 * @module
 */

import {
  type ListenAddress,
  parseBool,
  parseClassOptions,
  parseLevel,
  parseListen,
  type RawOptions,
  sourceOf,
  UsageError,
} from "../agent/config.ts";
import type { ClassOptions } from "./lb_service.ts";
import type { Level, LogFormat } from "../base/log.ts";
import { flagPool, type Pool, PoolConfigError } from "./pools.ts";

/** The controller's default status listener (the agent's is 9472). */
export const CONTROLLER_METRICS_ADDRESS = "127.0.0.1:9473";

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
}

const NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const CM_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

function bad(flag: string, value: string, what: string): UsageError {
  return new UsageError(`${flag}: ${JSON.stringify(value)} ${what}`);
}

/** Validates the controller's raw options. @throws {UsageError} naming the flag or variable. */
export function parseControllerConfig(raw: RawOptions): ControllerConfig {
  const src = (key: Parameters<typeof sourceOf>[1], flag: string) => sourceOf(raw, key, flag);
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
      throw bad(src("config", "--config"), cfg, "is not NAMESPACE/NAME of a ConfigMap");
    }
    configMap = { namespace: ns, name };
  }
  if (!pool && !configMap) {
    throw new UsageError(
      "--pool or --config: no pool given (KUBEGW_POOL, KUBEGW_CONFIG): the controller would have no address to give",
    );
  }
  const leaseNamespace = (raw.leaseNamespace ?? "kube-system").trim();
  if (!NAME.test(leaseNamespace)) {
    throw bad(
      src("leaseNamespace", "--lease-namespace"),
      leaseNamespace,
      "is not a namespace name",
    );
  }
  const format = (raw.logFormat ?? "text").trim();
  if (format !== "text" && format !== "json") {
    throw bad(src("logFormat", "--log-format"), format, "is not text or json");
  }
  return {
    classes: parseClassOptions(raw),
    flagPool: pool,
    configMap,
    leaderElect: raw.leaderElect === undefined
      ? true
      : parseBool(src("leaderElect", "--leader-elect"), raw.leaderElect),
    leaseNamespace,
    kubeconfig: raw.kubeconfig?.split(":")[0]?.trim() || undefined,
    inCluster: parseBool(src("inCluster", "--in-cluster"), raw.inCluster),
    logLevel: parseLevel(raw),
    logFormat: format,
    metricsAddress: parseListen(
      raw.metricsAddress ?? CONTROLLER_METRICS_ADDRESS,
      src("metricsAddress", "--metrics-address"),
    ),
  };
}
