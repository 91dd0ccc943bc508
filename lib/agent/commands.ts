/**
 * The one-shot subcommands: `once`, `plan` and `drain`. `once` and `plan`
 * build the same reconciler `run` uses; all three go through its one path to
 * the interface (`interface_sync.ts`), so what is assumed or forfeited is
 * logged in one place.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Cidr } from "../base/cidr.ts";
import type { Config } from "./config.ts";
import { type AgentDeps, makeReconciler, makeSources, RECONCILE_TIMING } from "./run.ts";
import type { Reconciler } from "./reconciler.ts";
import type { AddressStatus } from "./status_report.ts";
import { InterfaceSync } from "./interface_sync.ts";
import { quietObserver } from "./observer.ts";
import { type AddressStore, type Plan } from "../kernel/address_store.ts";
import type { Clock, TimerId } from "../base/clock.ts";
import { systemClock } from "../base/system_clock.ts";

const log = getLogger(["kube-gw"]);

/**
 * The health gate of a one-shot command: kube-proxy's health is not polled
 * (one poll cannot tell a boot from a blip); the gate is open, and says so.
 */
export const ONE_SHOT_HEALTH = {
  open: true,
  reason: "kube-proxy health is not checked by one-shot commands",
} as const;

/**
 * Runs a one-shot command's work so that a signal stops it as it stops
 * `run`: once `signal` aborts, a running `ip` gets the same grace
 * (`RECONCILE_TIMING.stopGraceMs`), then `interrupt` stops it (SIGTERM,
 * SIGKILL) and the work rejects. Never leaves an `ip` running.
 */
async function stoppable<T>(
  signal: AbortSignal,
  clock: Clock,
  interrupt: (reason: Error) => void,
  work: () => Promise<T>,
): Promise<T> {
  let timer: TimerId | undefined;
  const onAbort = () => {
    log.info("stopping; a running ip gets {grace}ms to finish", {
      grace: RECONCILE_TIMING.stopGraceMs,
    });
    timer = clock.setTimeout(
      () => interrupt(new Error("stopped by signal")),
      RECONCILE_TIMING.stopGraceMs,
    );
  };
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort, { once: true });
  try {
    return await work();
  } finally {
    signal.removeEventListener("abort", onAbort);
    clock.clearTimeout(timer);
  }
}

/**
 * Reads the interface, lists every source once (Services, and with
 * `--announce ready` EndpointSlices) and opens the announce gate.
 */
async function listAll(config: Config, deps: AgentDeps, signal: AbortSignal): Promise<Reconciler> {
  const reconciler = makeReconciler(config, deps);
  await reconciler.readManaged();
  const { services, slices } = makeSources(config, deps, reconciler);
  for (const source of [...services, ...slices]) await source.listOnce(signal);
  if (config.kubeProxyHealth !== undefined) {
    log.warn("{reason}; the gate is open", { reason: ONE_SHOT_HEALTH.reason });
    reconciler.setHealth(ONE_SHOT_HEALTH);
  }
  reconciler.openGate();
  return reconciler;
}

/** `kube-gw once`: one list, one reconcile. Returns the plan applied (empty if none). */
export async function runOnce(
  config: Config,
  deps: AgentDeps,
  signal: AbortSignal,
): Promise<Plan> {
  const reconciler = await listAll(config, deps, signal);
  signal.throwIfAborted();
  return await stoppable(
    signal,
    deps.clock ?? systemClock,
    (why) => reconciler.interrupt(why),
    () => reconciler.reconcileOnce(),
  );
}

/**
 * `kube-gw plan`: the plan, and for each desired address where it comes from,
 * its Services and its state; changes nothing.
 */
export async function runPlan(
  config: Config,
  deps: AgentDeps,
  signal: AbortSignal,
): Promise<{ plan: Plan; statuses: readonly AddressStatus[] }> {
  const reconciler = await listAll(config, deps, signal);
  signal.throwIfAborted();
  const plan = await stoppable(
    signal,
    deps.clock ?? systemClock,
    (why) => reconciler.interrupt(why),
    () => reconciler.plan(),
  );
  return { plan, statuses: reconciler.status().addresses };
}

/** What `kube-gw drain` works on. */
export interface DrainOptions {
  readonly networks: readonly Cidr[];
  readonly store: AddressStore;
  /** A signal stops the drain as it stops `run`: a running `ip` gets the grace, then is stopped. */
  readonly signal: AbortSignal;
  /** @default systemClock */
  readonly clock?: Clock;
}

/**
 * `kube-gw drain`: removes every managed host address from the interface, so
 * BGP withdraws them and the gateway leaves the anycast group. Returns the
 * plan applied.
 */
export function drain(options: DrainOptions): Promise<Plan> {
  const sync = new InterfaceSync({
    store: options.store,
    networks: options.networks,
    observer: quietObserver,
    clock: options.clock ?? systemClock,
  });
  return stoppable(
    options.signal,
    options.clock ?? systemClock,
    (why) => sync.interrupt(why),
    () => sync.drain(),
  );
}
