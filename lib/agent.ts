/**
 * The agent's wiring: the Service sources feed the reconciler, the reconciler
 * and the sources report to the metrics, the status server answers for them.
 * `runAgent` is `kube-gw run`; the one-shot subcommands are in commands.ts.
 * No process exits here; `main.ts` owns that.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { apiNotReady, type CurrencySource, oldestAge } from "./api_staleness.ts";
import type { Config } from "./config.ts";
import type { ListWatch } from "./list_watch.ts";
import type { Metrics } from "./metrics.ts";
import type { AddressStore, Clock, ListWatchApi } from "./ports.ts";
import { Reconciler } from "./reconciler.ts";
import { makePermanent, Renewer } from "./renewer.ts";
import { renewalIntervalMs } from "./address_lifetime.ts";
import type { ServiceRecord } from "./service.ts";
import { serviceSource } from "./service_source.ts";
import { serveStatus } from "./status_server.ts";
import { systemClock } from "./system_clock.ts";

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

/** Logs the settings operators look for first. */
export function logSettings(config: Config): void {
  for (const n of config.networks) log.info("using network {network}", { network: n.text });
  log.info("using interface {device}{where}", {
    device: config.interface,
    where: config.netns ? ` in network namespace ${config.netns}` : "",
  });
}

/** One Service source per watched scope (each namespace, or all), feeding `reconciler`. */
export function makeSources(
  config: Config,
  deps: AgentDeps,
  reconciler: Reconciler,
): ListWatch<ServiceRecord>[] {
  const clock = deps.clock ?? systemClock;
  const scopes = config.namespaces.length > 0 ? config.namespaces : [undefined];
  return scopes.map((namespace) =>
    serviceSource({
      api: deps.api,
      store: reconciler,
      namespace,
      labelSelector: config.selector,
      watchTimeoutSeconds: deps.watchTimeoutSeconds,
      silenceMs: deps.silenceMs,
      clock,
      observer: deps.metrics,
    })
  );
}

/** The reconciler for `config`, reporting to the metrics. */
export function makeReconciler(config: Config, deps: AgentDeps): Reconciler {
  return new Reconciler({
    store: deps.store,
    networks: config.networks,
    resyncMs: config.resyncMs,
    clock: deps.clock ?? systemClock,
    observer: deps.metrics,
  });
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
  log.info("found {count} managed addresses on {device}", {
    count: held.size,
    device: config.interface,
  });
  // --address-lifetime off after a run with it: keep the addresses (issue 12, item 6).
  if (config.addressLifetimeSeconds === undefined) await makePermanent(deps.store, held);
  const sources = makeSources(config, deps, reconciler);
  let lastTick = clock.now();
  const tick = clock.setInterval(() => lastTick = clock.now(), 1000);
  const metrics = deps.metrics;
  metrics?.watchApiCurrency(() => oldestAge(sources, clock.now()), config.apiStaleAfterMs);
  const status = config.metricsAddress && metrics
    ? await serveStatus(config.metricsAddress, {
      metrics: async () => ({ body: await metrics.render(), contentType: metrics.contentType }),
      notReady: () => agentNotReady(config, deps, reconciler, sources),
      sinceTick: () => clock.now() - lastTick,
    }, signal)
    : undefined;
  if (status) {
    log.info("serving metrics on {host}:{port}", {
      host: config.metricsAddress!.hostname,
      port: status.port,
    });
  }
  const running = sources.map((s) => s.run(signal));
  // --address-lifetime: renew the held addresses at a third of the lifetime (issue 12, item 6).
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
    await Promise.race([
      Promise.all(sources.map((s) => s.whenSynced())),
      new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true })),
    ]);
    if (!signal.aborted) {
      log.info("first list complete: {addresses} addresses desired", {
        addresses: reconciler.desired.size,
      });
      reconciler.markSynced();
    }
    await Promise.all(running);
  } finally {
    clock.clearInterval(tick);
    await reconciler.stop();
    await status?.finished;
  }
}
