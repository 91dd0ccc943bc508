/**
 * The one-shot subcommands: `once`, `plan` and `drain`. Each builds the same
 * reconciler `run` uses and goes through its one path to the interface, so
 * what is assumed or forfeited is logged in one place.
 *
 * @module
 */

import type { Cidr } from "./cidr.ts";
import type { Config } from "./config.ts";
import { type AgentDeps, makeReconciler, makeSources } from "./agent.ts";
import type { AddressStore, Plan } from "./ports.ts";
import { Reconciler } from "./reconciler.ts";
import { systemClock } from "./system_clock.ts";

async function listAll(config: Config, deps: AgentDeps, signal: AbortSignal): Promise<Reconciler> {
  const reconciler = makeReconciler(config, deps);
  await reconciler.readManaged();
  for (const source of makeSources(config, deps, reconciler)) await source.listOnce(signal);
  return reconciler;
}

/** `kube-gw once`: one list, one reconcile. Returns the plan applied (empty if none). */
export async function runOnce(
  config: Config,
  deps: AgentDeps,
  signal: AbortSignal,
): Promise<Plan> {
  const reconciler = await listAll(config, deps, signal);
  return await reconciler.reconcileOnce();
}

/** `kube-gw plan`: the plan and who claims each added address; changes nothing. */
export async function runPlan(
  config: Config,
  deps: AgentDeps,
  signal: AbortSignal,
): Promise<{ plan: Plan; claimants: (address: string) => string[] }> {
  const reconciler = await listAll(config, deps, signal);
  return { plan: await reconciler.plan(), claimants: (a) => reconciler.claimants(a) };
}

/**
 * `kube-gw drain`: removes every managed host address from the interface, so
 * BGP withdraws them and the gateway leaves the anycast group. Returns the
 * plan applied.
 */
export function drain(networks: readonly Cidr[], store: AddressStore): Promise<Plan> {
  return new Reconciler({ store, networks, resyncMs: 0, clock: systemClock }).drain();
}
