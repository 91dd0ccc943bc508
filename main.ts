/**
 * kube-gw: keeps the addresses of Kubernetes Services (externalIPs, and the
 * LoadBalancer addresses `kube-gw controller` allocates) as host addresses on a
 * router's loopback while kube-proxy can deliver them, for its BGP daemon to
 * announce. This file wires the pieces together and is the only place that
 * exits the process.
 *
 * @module
 */

import { holdingPlace, logSettings, runAgent } from "./lib/agent/run.ts";
import { drain, runOnce, runPlan } from "./lib/agent/commands.ts";
import { formatPlan } from "./lib/agent/plan_table.ts";
import { KubeProxyHealthPoller } from "./lib/agent/kube_proxy_poller.ts";
import { ENV_VARS, parseArgs } from "./lib/cli.ts";
import { type Config, parseConfig } from "./lib/agent/config.ts";
import { parseControllerConfig } from "./lib/controller/config.ts";
import { ControllerMetrics } from "./lib/controller/metrics.ts";
import { runController } from "./lib/controller/run.ts";
import { holderIdentity } from "./lib/controller/leader/decision.ts";
import { IpRoute2 } from "./lib/kernel/iproute2.ts";
import { RouteStore } from "./lib/kernel/route_store.ts";
import { SonicStore } from "./lib/kernel/sonic_store.ts";
import type { AddressStore } from "./lib/kernel/address_store.ts";
import { KubeApi } from "./lib/kube/client.ts";
import { type ApiConnection, SERVICE_ACCOUNT_DIR } from "./lib/kube/kubeconfig.ts";
import { type ConnectionSettings, loadConnection } from "./lib/kube/connect.ts";
import type { ApiObserver } from "./lib/kube/observer.ts";
import { flushLogs, setupLogging } from "./lib/base/log.ts";
import { getLogger } from "@logtape/logtape";
import { Metrics } from "./lib/agent/metrics.ts";
import { COMMIT, VERSION } from "./lib/base/version.ts";
import { type HealthSourceOptions } from "./lib/agent/kube_proxy_health.ts";
import { type RawOptions, UsageError } from "./lib/base/flags.ts";

const log = getLogger(["kube-gw"]);

function env(name: string): string | undefined {
  if (!ENV_VARS.includes(name)) return undefined;
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

function fail(code: number, message: string): never {
  flushLogs();
  console.error(`kube-gw: ${message}`);
  Deno.exit(code);
}

/**
 * The credentials of both programs: in-cluster, or the `--kubeconfig` list
 * merged. Read before anything is logged, so that a bad kubeconfig is one line.
 *
 * @throws {UsageError} naming the file or the field.
 */
function loadApiConnection(config: ConnectionSettings): ApiConnection {
  return loadConnection(config, { env, readFile: (p) => Deno.readTextFileSync(p) });
}

/**
 * The API client of both programs: gives up file reads except what token
 * rotation needs, and reports to `observer` (the program's metrics).
 */
async function connect(
  config: ConnectionSettings,
  conn: ApiConnection,
  observer: ApiObserver | undefined,
): Promise<KubeApi> {
  await Deno.permissions.revoke({ name: "read", path: "/" });
  if (!config.inCluster) await Deno.permissions.revoke({ name: "read", path: SERVICE_ACCOUNT_DIR });
  if (
    conn.tokenFile &&
    Deno.permissions.querySync({ name: "read", path: conn.tokenFile }).state !== "granted"
  ) {
    log.warn(
      "the token file {file} will not be re-read: kube-gw gives up reading files at start, but for {dir}; a rotated token needs a restart (docs/security.md)",
      { file: conn.tokenFile, dir: SERVICE_ACCOUNT_DIR },
    );
  }
  log.info("using API server {server} ({source})", { server: conn.server, source: conn.source });
  return new KubeApi(conn, { observer });
}

/**
 * Runs kube-gw with `argv` (without the program name) and returns the exit
 * status. Exported for the permission test's planted entry point; the process
 * exits below, only when this file is the main module.
 */
export async function main(argv: string[]): Promise<number> {
  const invocation = parseArgs(
    argv,
    env,
    (t) => Deno.stdout.writeSync(new TextEncoder().encode(t)),
  );
  if (!invocation) return 0;
  if (invocation.command === "version") {
    console.log(`kube-gw ${VERSION} (commit ${COMMIT})`);
    return 0;
  }
  if (invocation.command === "controller") return await controllerMain(invocation.options);
  const config = parseConfig(invocation.options);
  await setupLogging(config.logLevel, config.logFormat);
  const store = await addressStore(config);
  const stopped = new AbortController();
  const stop = () => stopped.abort(new Error("stopped by signal"));
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  // SIGHUP (a closed terminal, or a "reload") changes nothing: settings are read at start only.
  Deno.addSignalListener(
    "SIGHUP",
    () => log.warn("SIGHUP ignored: restart kube-gw to change its settings"),
  );

  if (invocation.command === "drain") {
    logSettings(config);
    const p = await drain({ networks: config.networks, store, signal: stopped.signal })
      .finally(() => closeStore(store));
    log.info("drained: {count} addresses removed", { count: p.remove.length });
    return 0;
  }

  const metrics = invocation.command === "run" && config.metricsAddress
    ? new Metrics(VERSION, COMMIT)
    : undefined;
  const conn = loadApiConnection(config);
  logSettings(config);
  const api = await connect(config, conn, metrics);
  try {
    switch (invocation.command) {
      case "plan": {
        const { plan, statuses } = await runPlan(config, { store, api }, stopped.signal);
        flushLogs();
        Deno.stdout.writeSync(new TextEncoder().encode(formatPlan(plan, statuses)));
        return 0;
      }
      case "once":
        await runOnce(config, { store, api }, stopped.signal);
        return 0;
      case "run": {
        // Stop within a second of a signal, even if something hangs; but never leave an `ip`
        // running: the reconciler gives it 5 s, then SIGTERM and SIGKILL 1 s later (lib/kernel/spawn.ts).
        stopped.signal.addEventListener("abort", () => {
          log.info("stopping; addresses stay in place");
          setTimeout(async () => {
            if (store.running > 0) {
              log.info("waiting for ip to end before exiting");
              await Promise.race([store.idle(), new Promise((r) => setTimeout(r, 7000))]);
              await new Promise((r) => setTimeout(r, 900)); // the orderly stop goes on from here
            }
            fail(0, "stop took over 900ms; exiting anyway");
          }, 900);
        });
        const healthSource = (o: HealthSourceOptions) =>
          new KubeProxyHealthPoller({ ...o, observer: metrics });
        await runAgent(
          config,
          { store, api, metrics, healthSource, apiProblem: () => api.authProblem },
          stopped.signal,
        );
        return 0;
      }
    }
  } finally {
    api.close();
    closeStore(store);
  }
}

/** The address store, its processes or requests counted so that a stop can wait for them. */
type RunningStore = AddressStore & {
  readonly running: number;
  idle(): Promise<void>;
};

/** Closes the SONiC store's Redis connection; `ip` runs leave nothing open. */
function closeStore(store: AddressStore): void {
  if (store instanceof SonicStore) store.close();
}

/** Written by SONiC's image: its presence means this is a SONiC switch. */
const SONIC_VERSION_FILE = "/etc/sonic/sonic_version.yml";

/**
 * The store `--install-as` names: addresses on the interface, routes, or
 * SONiC CONFIG_DB entries. Gives up the write grant on SONiC's Redis socket
 * (a unix connect needs it) unless the SONiC store uses it; with the
 * `address` or `route` store on a SONiC switch, warns once that the ASIC will
 * not send the addresses' traffic to the CPU (docs/sonic.md).
 */
async function addressStore(config: Config): Promise<RunningStore> {
  if (config.sonic) {
    const { loopback, socket, db } = config.sonic;
    return new SonicStore({ loopback, socketPath: socket, db });
  }
  await Deno.permissions.revoke({ name: "write" });
  if (isSonic()) {
    log.warn(
      "this is a SONiC switch ({file}): addresses held {place} are announced, but the ASIC will not send their traffic to the CPU; use --install-as sonic (docs/sonic.md)",
      { file: SONIC_VERSION_FILE, place: holdingPlace(config) },
    );
  }
  if (config.route) {
    return new RouteStore({ ...config.route, networks: config.networks, netns: config.netns });
  }
  return new IpRoute2({
    device: config.interface,
    netns: config.netns,
    lifetimeSeconds: config.addressLifetimeSeconds,
  });
}

function isSonic(): boolean {
  try {
    return Deno.statSync(SONIC_VERSION_FILE).isFile;
  } catch {
    return false;
  }
}

/** This host's name, read before file reads are given up (no `sys` permission). */
function hostName(): string {
  for (const path of ["/proc/sys/kernel/hostname", "/etc/hostname"]) {
    try {
      const name = Deno.readTextFileSync(path).trim();
      if (name) return name;
    } catch {
      // Try the next.
    }
  }
  return "";
}

/** `kube-gw controller`: gives up `run` and reads beyond its credentials, then runs. */
async function controllerMain(raw: RawOptions): Promise<number> {
  const config = parseControllerConfig(raw);
  await setupLogging(config.logLevel, config.logFormat);
  // The controller never runs a program.
  await Deno.permissions.revoke({ name: "run" });
  const identity = holderIdentity(hostName(), crypto.getRandomValues(new Uint8Array(8)));
  const stopped = new AbortController();
  const stop = () => stopped.abort(new Error("stopped by signal"));
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  const metrics = config.metricsAddress ? new ControllerMetrics(VERSION, COMMIT) : undefined;
  const api = await connect(config, loadApiConnection(config), metrics);
  stopped.signal.addEventListener("abort", () => {
    log.info("stopping: no more writes, releasing the Lease");
    setTimeout(() => fail(0, "stop took over 900ms; exiting anyway"), 900);
  });
  try {
    await runController(
      config,
      { api, identity, metrics, apiProblem: () => api.authProblem },
      stopped.signal,
    );
  } finally {
    api.close();
  }
  return 0;
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (err) {
    if (err instanceof UsageError) fail(2, err.message);
    fail(1, (err as Error).message);
  }
  flushLogs();
  Deno.exit(code);
}
