/**
 * The agent's wiring: the Service and EndpointSlice sources and kube-proxy's
 * health feed the reconciler (desired set → announce gate → plan → `ip`), the
 * reconciler and the sources report to the metrics, the status server answers
 * for them.
 * `runAgent` is `kube-gw run`; the one-shot subcommands are in commands.ts.
 * No process exits here; `main.ts` owns that.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { apiNotReady, type CurrencySource, oldestAge } from "../kube/staleness.ts";
import type { Config } from "./config.ts";
import { endpointSliceSource } from "./endpoint_slice_source.ts";
import type { ListWatch } from "../kube/list_watch.ts";
import type { Metrics } from "./metrics.ts";
import type { HealthState } from "./kube_proxy_health.ts";
import { Reconciler } from "./reconciler.ts";
import { makePermanent, Renewer } from "./renewer.ts";
import { renewalIntervalMs } from "./address_lifetime.ts";
import { serviceSource } from "./service_source.ts";
import { startStatusServer } from "../http/status_server.ts";
import { systemClock } from "../base/system_clock.ts";
import { type AddressStore } from "../kernel/address_store.ts";
import { ROUTE_TYPE } from "../kernel/route_store.ts";
import { type Clock } from "../base/clock.ts";
import { type HealthSource, type HealthSourceFactory } from "./kube_proxy_health.ts";
import { type ListWatchApi } from "../kube/ports.ts";

const log = getLogger(["kube-gw"]);

/** What the agent runs against. */
export interface AgentDeps {
  readonly store: AddressStore;
  readonly api: ListWatchApi;
  readonly metrics?: Metrics;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Overrides for the watch timing (tests). */
  readonly watchTimeoutSeconds?: () => number;
  readonly silenceMs?: (timeoutSeconds: number) => number;
  /**
   * Builds the kube-proxy health poller for `--kube-proxy-health`. Without
   * it the health gate stays open (with one warning when a URL is set).
   */
  readonly healthSource?: HealthSourceFactory;
  /** Why the API refuses kube-gw (401/403), for `/readyz` (`KubeApi.authProblem`). */
  readonly apiProblem?: () => string | undefined;
}

/**
 * Why the agent is not ready: the interface side (the reconciler) and the API
 * side (a watch not known current for `config.apiStaleAfterMs`, refused
 * credentials), each named; undefined when ready.
 */
export function agentNotReady(
  config: Pick<Config, "apiStaleAfterMs">,
  deps: Pick<AgentDeps, "clock" | "apiProblem">,
  reconciler: Pick<Reconciler, "notReady">,
  sources: readonly CurrencySource[],
): string | undefined {
  const clock = deps.clock ?? systemClock;
  const why = [
    reconciler.notReady(),
    apiNotReady(sources, clock.now(), config.apiStaleAfterMs),
    deps.apiProblem?.(),
  ].filter((w) => w !== undefined);
  return why.length > 0 ? why.join("; ") : undefined;
}

/**
 * Where the addresses are held, for the log: `on lo`, `as unreachable routes
 * of protocol 200 in table main`, or `on SONiC loopback Loopback1000`.
 */
export function holdingPlace(config: Pick<Config, "interface" | "route" | "sonic">): string {
  if (config.sonic) return `on SONiC loopback ${config.sonic.loopback}`;
  return config.route
    ? `as ${ROUTE_TYPE} routes of protocol ${config.route.protocol} in table ${config.route.table}`
    : `on ${config.interface}`;
}

/** Logs the settings operators look for first. */
export function logSettings(config: Config): void {
  for (const n of config.networks) log.info("using network {network}", { network: n.text });
  if (config.sonic) {
    const { loopback, socket, db } = config.sonic;
    log.info("using SONiC loopback {loopback}: CONFIG_DB entries through {socket}, database {db}", {
      loopback,
      socket,
      db,
    });
    return;
  }
  if (config.route) {
    log.info("holding the addresses {place}{where}", {
      place: holdingPlace(config),
      where: config.netns ? ` in network namespace ${config.netns}` : "",
    });
    return;
  }
  log.info("using interface {device}{where}", {
    device: config.interface,
    where: config.netns ? ` in network namespace ${config.netns}` : "",
  });
}

/** The sources of each kind, one per watched scope. */
export interface Sources {
  readonly services: readonly ListWatch<unknown>[];
  /** Empty with `--announce always`. */
  readonly slices: readonly ListWatch<unknown>[];
}

/**
 * The sources feeding `reconciler`, one per watched scope (each namespace, or
 * all): Services, and with `--announce ready` EndpointSlices in the same
 * scopes (the label selector is the Services' only).
 */
export function makeSources(
  config: Config,
  deps: AgentDeps,
  reconciler: Reconciler,
): Sources {
  const clock = deps.clock ?? systemClock;
  const scopes = config.namespaces.length > 0 ? config.namespaces : [undefined];
  const common = {
    api: deps.api,
    store: reconciler,
    watchTimeoutSeconds: deps.watchTimeoutSeconds,
    silenceMs: deps.silenceMs,
    clock,
    observer: deps.metrics,
  };
  const services = scopes.map((namespace) =>
    serviceSource({ ...common, namespace, labelSelector: config.selector }) as ListWatch<unknown>
  );
  const slices = config.announce === "ready"
    ? scopes.map((namespace) => endpointSliceSource({ ...common, namespace }) as ListWatch<unknown>)
    : [];
  return { services, slices };
}

/**
 * The agent's reconcile timing, which has no flag: a 2 ms coalescing window,
 * retries after 1 s doubling to 30 s (with jitter), and 5 s for a running
 * `ip` to finish on stop.
 */
export const RECONCILE_TIMING = {
  windowMs: 2,
  retryBackoff: { initialMs: 1000, maxMs: 30_000 },
  stopGraceMs: 5000,
} as const;

/** The reconciler for `config`, reporting to the metrics. */
export function makeReconciler(config: Config, deps: AgentDeps): Reconciler {
  return new Reconciler({
    ...RECONCILE_TIMING,
    store: deps.store,
    networks: config.networks,
    resyncMs: config.resyncMs,
    clock: deps.clock ?? systemClock,
    observer: deps.metrics,
    addresses: { classes: config.classes, externalIPs: config.externalIPs },
    announce: config.announce,
    announceDelayMs: config.announceDelayMs,
    announceDampingMs: config.announceDampingMs,
    nodeName: config.nodeName,
  });
}

/**
 * The kube-proxy health poller for `config`, feeding `reconciler`'s health
 * gate; undefined when `--kube-proxy-health off`, or when no poller is wired
 * (then the gate stays open, with one warning).
 */
export function makeHealth(
  config: Config,
  deps: AgentDeps,
  reconciler: Reconciler,
  options: { readonly startedWithAddresses: boolean },
): HealthSource | undefined {
  const url = config.kubeProxyHealth;
  if (url === undefined) return undefined;
  if (!deps.healthSource) {
    log.warn(
      "kube-proxy health is not checked: no health poller is wired in this build; the gate stays open",
    );
    return undefined;
  }
  // The source logs its transitions (one line each); the gate only follows them.
  const apply = (state: HealthState) => {
    reconciler.setHealth({ open: state.open, reason: state.reason });
  };
  const source = deps.healthSource({
    url,
    clock: deps.clock ?? systemClock,
    startedWithAddresses: options.startedWithAddresses,
    onChange: apply,
  });
  apply(source.state);
  return source;
}

/**
 * Runs until `signal` aborts: checks the interface (refusing to start on a
 * conflict), lists and watches Services, and reconciles after the first
 * complete list. Addresses are left in place on return.
 *
 * @throws when the interface cannot be read or conflicts at start.
 */
export async function runAgent(
  config: Config,
  deps: AgentDeps,
  signal: AbortSignal,
): Promise<void> {
  const clock = deps.clock ?? systemClock;
  const reconciler = makeReconciler(config, deps);
  const held = await reconciler.readManaged();
  log.info("found {count} managed addresses {place}", {
    count: held.size,
    place: holdingPlace(config),
  });
  // --address-lifetime off after a run with it: keep the addresses.
  if (config.addressLifetimeSeconds === undefined) await makePermanent(deps.store, held);
  const { services, slices } = makeSources(config, deps, reconciler);
  const sources = [...services, ...slices];
  const health = makeHealth(config, deps, reconciler, { startedWithAddresses: held.size > 0 });
  let lastTick = clock.now();
  const tick = clock.setInterval(() => lastTick = clock.now(), 1000);
  const metrics = deps.metrics;
  metrics?.watchApiCurrency(() => oldestAge(sources, clock.now()), config.apiStaleAfterMs);
  const status = await startStatusServer(
    config.metricsAddress,
    metrics,
    {
      notReady: () => agentNotReady(config, deps, reconciler, sources),
      status: () => reconciler.status(),
      readyNote: () => health?.state.unknown ? health.state.reason : undefined,
      sinceTick: () => clock.now() - lastTick,
    },
    signal,
    log,
  );
  const running = [...sources.map((s) => s.run(signal)), ...(health ? [health.run(signal)] : [])];
  // --address-lifetime: renew the held addresses at a third of the lifetime.
  const lifetime = config.addressLifetimeSeconds;
  if (lifetime !== undefined && deps.store.renew) {
    const renewer = new Renewer({
      renew: () => reconciler.renew(),
      intervalMs: renewalIntervalMs(lifetime),
      lifetimeSeconds: lifetime,
      clock,
      observer: deps.metrics,
    });
    running.push(renewer.run(signal));
  }
  try {
    // Nothing is evaluated before the first complete list of every source.
    await Promise.race([
      Promise.all(sources.map((s) => s.whenSynced())),
      new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true })),
    ]);
    if (!signal.aborted) {
      reconciler.markSynced();
      log.info("first list complete: {addresses} addresses desired, {announced} announced", {
        addresses: reconciler.desired.size,
        announced: reconciler.announced.size,
      });
    }
    await Promise.all(running);
  } finally {
    clock.clearInterval(tick);
    await reconciler.stop();
    await status?.finished;
  }
}
