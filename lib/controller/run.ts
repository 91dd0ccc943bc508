/**
 * The wiring of `kube-gw controller`: the Service and pools watches feed the
 * {@linkcode Controller}, the leader elector tells it when to write, the
 * status server answers for it (`/readyz` also fails when a watch went
 * stale or the API server refuses the credentials, as the agent's). No
 * process exits here; `main.ts` owns that.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { Controller } from "./loop.ts";
import type { ControllerConfig } from "./config.ts";
import type { ControllerMetrics } from "./metrics.ts";
import { EventRecorder } from "./event_recorder.ts";
import type { JsonApi, ListWatchApi } from "../kube/ports.ts";
import { decodeLbService, type LbServiceRecord } from "./lb_service.ts";
import { statusWriter } from "./status_writer.ts";
import { LeaderElector } from "./leader/elector.ts";
import type { LeaseTimings } from "./leader/decision.ts";
import { LEASE_NAME, leaseClient } from "./leader/lease_api.ts";
import { ListWatch } from "../kube/list_watch.ts";
import { decodePoolsConfigMap, type PoolsConfigMap } from "./pools_configmap.ts";
import { startStatusServer } from "../http/status_server.ts";
import { systemClock } from "../base/system_clock.ts";
import type { Clock } from "../base/clock.ts";
import { collectionPath } from "../kube/collection.ts";
import { apiNotReady, type CurrencySource } from "../kube/staleness.ts";
import { ADDRESS_POOLS, type AddressPoolRecord, decodeAddressPool } from "./address_pool.ts";
import { AddressPoolCache } from "./address_pool_cache.ts";
import { controllerHoldings, PoolStatusSync } from "./pool_status_writer.ts";
import { type ControllerObserver, quietControllerObserver } from "./ports.ts";
import { missingAsEmpty } from "./optional_collection.ts";

const log = getLogger(["kube-gw", "controller"]);

/** What the controller runs against. */
export interface ControllerDeps {
  readonly api: ListWatchApi & JsonApi;
  /** This process's holder identity (`holderIdentity`). */
  readonly identity: string;
  readonly metrics?: ControllerMetrics;
  /** @default systemClock */
  readonly clock?: Clock;
  /** @default DEFAULT_TIMINGS */
  readonly timings?: LeaseTimings;
  /** Why the API refuses the controller (401/403), for `/readyz` (`KubeApi.authProblem`). */
  readonly apiProblem?: () => string | undefined;
}

/** What readiness reads of the settings: how long a watch may go without being known current. */
export interface StalenessConfig {
  /** `--api-stale-after`. */
  readonly apiStaleAfterMs: number;
}

/**
 * Why the controller is not ready: a first list still missing (the
 * controller's own word), a watch not known current for
 * `config.apiStaleAfterMs`, refused credentials; each named, joined;
 * undefined when ready.
 */
export function controllerNotReady(
  config: StalenessConfig,
  deps: Pick<ControllerDeps, "clock" | "apiProblem">,
  controller: Pick<Controller, "notReady">,
  sources: readonly CurrencySource[],
): string | undefined {
  const clock = deps.clock ?? systemClock;
  const staleAfterMs = config.apiStaleAfterMs;
  const why = [
    controller.notReady(),
    apiNotReady(sources, clock.now(), staleAfterMs),
    deps.apiProblem?.(),
  ].filter((w) => w !== undefined);
  return why.length > 0 ? why.join("; ") : undefined;
}

/** The controller's parts, wired (exported for the benchmark, which drives them in-process). */
export function makeController(config: ControllerConfig, deps: ControllerDeps): {
  controller: Controller;
  services: ListWatch<LbServiceRecord>;
  pools?: ListWatch<PoolsConfigMap>;
  addressPools: ListWatch<AddressPoolRecord>;
  poolStatus: PoolStatusSync;
  elector?: LeaderElector;
} {
  const clock = deps.clock ?? systemClock;
  const metrics = deps.metrics;
  const events = new EventRecorder({
    api: deps.api,
    clock,
    instance: deps.identity,
    onOutcome: metrics ? (reason, outcome) => metrics.event(reason, outcome) : undefined,
  });
  let leading = false;
  const controller = new Controller({
    observer: withLeadership(metrics, (role) => leading = role === "leader"),
    classes: config.classes,
    flagPool: config.flagPool,
    watchesConfig: config.configMap !== undefined,
    watchesResources: true,
    status: statusWriter(deps.api),
    events,
    clock,
  });
  if (metrics) metrics.poolUse = () => poolUse(controller);
  const services = new ListWatch<LbServiceRecord>({
    api: deps.api,
    path: collectionPath({ version: "v1", resource: "services" }),
    kind: "Service",
    decode: decodeLbService,
    sink: controller.services,
    clock,
    observer: metrics,
  });
  const cm = config.configMap;
  const pools = cm
    ? new ListWatch<PoolsConfigMap>({
      api: deps.api,
      path: collectionPath({ version: "v1", resource: "configmaps" }, cm.namespace),
      // RBAC matches resourceNames on list and watch only with this selector.
      fieldSelector: `metadata.name=${cm.name}`,
      kind: "ConfigMap",
      decode: decodePoolsConfigMap,
      sink: controller.config,
      clock,
      observer: metrics,
    })
    : undefined;
  const cache = new AddressPoolCache();
  const legacy = config.flagPool !== undefined || config.configMap !== undefined;
  let resources = false;
  cache.listen((pools) => {
    if (legacy && (pools !== undefined) !== resources) {
      log.warn(
        pools
          ? "AddressPools exist: they are in force; --pool and the pools ConfigMap are ignored"
          : "no AddressPool exists: --pool and the pools ConfigMap are in force",
      );
    }
    resources = pools !== undefined;
    controller.setResourcePools(pools);
  });
  const addressPools = new ListWatch<AddressPoolRecord>({
    api: missingAsEmpty(deps.api, ADDRESS_POOLS.kind, clock),
    path: collectionPath(ADDRESS_POOLS),
    kind: ADDRESS_POOLS.kind,
    decode: decodeAddressPool,
    sink: cache,
    clock,
    observer: metrics,
  });
  const poolStatus = new PoolStatusSync({
    api: deps.api,
    clock,
    cache,
    holdings: controllerHoldings(controller, () => leading),
    events,
  });
  const elector = config.leaderElect
    ? new LeaderElector({
      client: leaseClient(deps.api, config.leaseNamespace),
      clock,
      target: { namespace: config.leaseNamespace, name: LEASE_NAME, identity: deps.identity },
      timings: deps.timings,
      onStartedLeading: () => controller.startLeading(),
      onStoppedLeading: () => controller.stopLeading(),
    })
    : undefined;
  return { controller, services, pools, addressPools, poolStatus, elector };
}

/** `observer` (or none), also telling `onRole` of each change of leadership. */
function withLeadership(
  observer: ControllerObserver | undefined,
  onRole: (role: "leader" | "standby") => void,
): ControllerObserver {
  const o = observer ?? quietControllerObserver;
  return {
    statusWritten: (kind, seconds) => o.statusWritten(kind, seconds),
    allocationFailed: (reason) => o.allocationFailed(reason),
    writeFailed: (kind) => o.writeFailed(kind),
    configError: () => o.configError(),
    poolsChanged: (pools) => o.poolsChanged(pools),
    leadership: (role) => {
      onRole(role);
      o.leadership(role);
    },
  };
}

/** Counts the addresses held per pool (for the pool-use gauge). */
export function poolUse(controller: Controller): Map<string, number> {
  const counts = new Map<string, number>();
  for (const addresses of controller.assignments.values()) {
    for (const a of addresses) {
      const pool = controller.poolOf(a);
      if (pool !== undefined) counts.set(pool, (counts.get(pool) ?? 0) + 1);
    }
  }
  return counts;
}

/**
 * Runs until `signal` aborts: watches, elects, allocates. On the way out it
 * stops writing and releases the Lease (within `releaseMs`).
 *
 * @param releaseMs @default 700
 */
export async function runController(
  config: ControllerConfig & StalenessConfig,
  deps: ControllerDeps,
  signal: AbortSignal,
  releaseMs = 700,
): Promise<void> {
  const clock = deps.clock ?? systemClock;
  const { controller, services, pools, addressPools, poolStatus, elector } = makeController(
    config,
    deps,
  );
  const sources = pools ? [services, addressPools, pools] : [services, addressPools];
  log.info("controller {identity}: class {class}{dflt}, leader election {le}", {
    identity: deps.identity,
    class: config.classes.class,
    dflt: config.classes.defaultClass ? " and Services without a class" : "",
    le: config.leaderElect ? `on Lease ${config.leaseNamespace}/${LEASE_NAME}` : "off",
  });
  if (config.flagPool || config.configMap) {
    log.warn(
      "--pool and the pools ConfigMap are deprecated and go in a later release: use AddressPool resources (docs/loadbalancer.md#migrating-from-the-pools-configmap)",
    );
  }
  let lastTick = clock.now();
  const tick = clock.setInterval(() => lastTick = clock.now(), 1000);
  const metrics = deps.metrics;
  const status = await startStatusServer(
    config.metricsAddress,
    metrics,
    {
      notReady: () => controllerNotReady(config, deps, controller, sources),
      sinceTick: () => clock.now() - lastTick,
    },
    signal,
    log,
  );
  const running = [...sources.map((s) => s.run(signal)), poolStatus.run(signal)];
  if (elector) running.push(elector.run(signal));
  else controller.startLeading();
  try {
    await Promise.all(running);
  } finally {
    clock.clearInterval(tick);
    if (elector) {
      const done = new AbortController();
      const t = clock.setTimeout(() => done.abort(new Error("release took too long")), releaseMs);
      await elector.release(done.signal);
      clock.clearTimeout(t);
    } else {
      controller.stopLeading();
    }
    await status?.finished;
  }
}
