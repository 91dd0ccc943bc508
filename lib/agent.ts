/**
 * The agent: wires the Service sources to the reconciler and runs the
 * subcommands. No process exits here; `main.ts` owns that.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Cidr } from "./cidr.ts";
import type { Config } from "./config.ts";
import type { AddressBackend } from "./iproute2.ts";
import type { Metrics } from "./metrics.ts";
import { isEmptyPlan, managedView, type Plan, plan } from "./plan.ts";
import { Reconciler } from "./reconciler.ts";
import { type ListWatchApi, ServiceSource } from "./service_source.ts";
import { serveStatus } from "./status_server.ts";

const log = getLogger(["kube-gw"]);

/** What the agent runs against. */
export interface AgentDeps {
  readonly backend: AddressBackend;
  readonly api: ListWatchApi;
  readonly metrics?: Metrics;
  /** Overrides for the watch timing (tests). */
  readonly watchTimeoutSeconds?: () => number;
  readonly silenceMs?: (timeoutSeconds: number) => number;
}

/** Logs the settings operators look for first. */
export function logSettings(config: Config): void {
  for (const n of config.networks) log.info("using network {network}", { network: n.text });
  log.info("using interface {device}{where}", {
    device: config.device,
    where: config.netns ? ` in network namespace ${config.netns}` : "",
  });
}

function makeSources(config: Config, deps: AgentDeps, reconciler: Reconciler): ServiceSource[] {
  const scopes = config.namespaces.length > 0 ? config.namespaces : [undefined];
  return scopes.map((namespace) =>
    new ServiceSource({
      api: deps.api,
      sink: reconciler,
      namespace,
      labelSelector: config.selector,
      watchTimeoutSeconds: deps.watchTimeoutSeconds,
      silenceMs: deps.silenceMs,
      onRestart: (reason) => deps.metrics?.watchRestarted(reason),
    })
  );
}

function makeReconciler(config: Config, deps: AgentDeps): Reconciler {
  return new Reconciler({
    backend: deps.backend,
    networks: config.networks,
    resyncMs: config.resyncMs,
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
  const reconciler = makeReconciler(config, deps);
  const held = await reconciler.readManaged();
  log.info("found {count} managed addresses on {device}", {
    count: held.size,
    device: config.device,
  });
  const sources = makeSources(config, deps, reconciler);
  let lastTick = performance.now();
  const tick = setInterval(() => lastTick = performance.now(), 1000);
  const status = config.metrics && deps.metrics
    ? await serveStatus(config.metrics, {
      metrics: async () => ({
        body: await deps.metrics!.render(),
        contentType: deps.metrics!.contentType,
      }),
      notReady: () => reconciler.notReady(),
      sinceTick: () => performance.now() - lastTick,
    }, signal)
    : undefined;
  if (status) {
    log.info("serving metrics on {host}:{port}", {
      host: config.metrics!.hostname,
      port: status.port,
    });
  }
  const running = sources.map((s) => s.run(signal));
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
    clearInterval(tick);
    await reconciler.stop();
    await status?.finished;
  }
}

async function listAll(config: Config, deps: AgentDeps, signal: AbortSignal): Promise<Reconciler> {
  const reconciler = makeReconciler(config, deps);
  await reconciler.readManaged();
  for (const source of makeSources(config, deps, reconciler)) await source.listOnce(signal);
  return reconciler;
}

/** `kube-gw once`: one list, one reconcile. Returns whether the interface changed. */
export async function runOnce(
  config: Config,
  deps: AgentDeps,
  signal: AbortSignal,
): Promise<boolean> {
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
 * BGP withdraws them and the gateway leaves the anycast group.
 */
export async function drain(networks: readonly Cidr[], backend: AddressBackend): Promise<Plan> {
  const view = managedView(await backend.read(), networks);
  const p = plan([], view.hosts);
  if (!isEmptyPlan(p)) await backend.apply(p);
  for (const r of p.remove) log.info("forfeiting address {address}", { address: r });
  return p;
}

/** Formats a plan as the table `kube-gw plan` prints. */
export function formatPlan(p: Plan, claimants: (address: string) => string[]): string {
  const rows = [
    ...p.add.map((a) => ["add", a, claimants(a).join(",")]),
    ...p.remove.map((a) => ["remove", a, "-"]),
  ].sort((x, y) => x[1].localeCompare(y[1], "en", { numeric: true }));
  const header = ["ACTION", "ADDRESS", "CLAIMED BY"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r.map((c, i) => i < r.length - 1 ? c.padEnd(widths[i]) : c).join("  ");
  return [line(header), ...rows.map(line), `${p.add.length} to add, ${p.remove.length} to remove`]
    .join("\n") + "\n";
}
