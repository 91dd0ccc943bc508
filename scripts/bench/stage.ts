/**
 * One benchmark stage: a throwaway namespace, a fake API server with a
 * kubeconfig for it, and an address monitor on the namespace. Everything a
 * stage made is removed on dispose, and on interrupt through {@linkcode
 * disposeAll}.
 *
 * @module
 */

import { FakeApiServer, type ServiceSpec } from "../../test/support/fakes/apiserver.ts";
import { writeKubeconfig } from "../../test/support/procs/agent.ts";
import { endpointSlice } from "../../test/support/fakes/endpoint_slices.ts";
import { Netns } from "../../test/support/procs/netns.ts";
import { NETWORK } from "./addresses.ts";
import { AddressMonitor, type Watched } from "./monitor.ts";

const stages = new Set<Stage>();

/** Disposes every stage still open (on interrupt). */
export async function disposeAll(): Promise<void> {
  await Promise.all([...stages].map((s) => s.dispose()));
}

/** The Kubernetes namespace every benchmark Service lives in. */
export const K8S_NAMESPACE = "bench";

/** The EndpointSlice of Service `name`: three ready pods, as after a rollout. */
export function slice(name: string, generation = 0): Record<string, unknown> {
  const pod = (i: number) => `10.${(generation >> 8) & 255}.${generation & 255}.${i}`;
  return endpointSlice(name, [1, 2, 3].map((i) => ({ address: pod(i) })), {
    namespace: K8S_NAMESPACE,
  });
}

/** A Service with these external IPs. */
export function service(name: string, externalIPs: readonly string[]): ServiceSpec {
  return { namespace: K8S_NAMESPACE, name, externalIPs };
}

/** A namespace, an API server, a kubeconfig and a monitor. */
export class Stage implements AsyncDisposable {
  /** When each resource version was first written to a watch stream. */
  readonly #written = new Map<string, number>();
  readonly #writeWaiters = new Map<string, (at: number) => void>();
  #disposed = false;

  private constructor(
    readonly ns: Netns,
    readonly api: FakeApiServer,
    readonly kubeconfig: { path: string } & AsyncDisposable,
    readonly monitor: AddressMonitor,
    /** Every seeded Service has an EndpointSlice, and the agent runs with `--announce ready`. */
    readonly slices: boolean,
    /** More arguments for the agent. */
    readonly extraArgs: readonly string[],
  ) {
    api.onEventWritten = (_type, obj, at) => {
      const rv = obj.metadata.resourceVersion;
      if (this.#written.has(rv)) return;
      this.#written.set(rv, at);
      const w = this.#writeWaiters.get(rv);
      if (w) {
        this.#writeWaiters.delete(rv);
        w(at);
      }
    };
  }

  /**
   * Creates a stage; `services` are loaded before anything watches, with one
   * EndpointSlice of three ready endpoints each when `options.slices` is set.
   * Without slices the agent runs with `--announce always` (Services created
   * later have no endpoints). `options.watch`: `route` monitors routes (for
   * an agent with `--install-as route` in `options.args`).
   */
  static async create(
    label: string,
    services: Iterable<ServiceSpec> = [],
    options: { slices?: boolean; args?: readonly string[]; watch?: Watched } = {},
  ): Promise<Stage> {
    const ns = await Netns.create(label);
    let api: FakeApiServer | undefined;
    try {
      api = await FakeApiServer.start();
      const specs = [...services];
      api.seed(specs);
      if (options.slices) api.seedObjects("endpointslices", specs.map((s) => slice(s.name)));
      const kc = await writeKubeconfig(api);
      const monitor = await AddressMonitor.start(ns.name, undefined, options.watch);
      const stage = new Stage(ns, api, kc, monitor, options.slices ?? false, options.args ?? []);
      stages.add(stage);
      return stage;
    } catch (err) {
      await api?.close();
      await ns.delete();
      throw err;
    }
  }

  /** Arguments for `kube-gw run` against this stage, as the README gives them. */
  agentArgs(): string[] {
    return [
      "run",
      `--network=${NETWORK}`,
      `--netns=${this.ns.name}`,
      `--kubeconfig=${this.kubeconfig.path}`,
      "--metrics-address=127.0.0.1:0",
      // No kube-proxy here: its health would hold every address back after a boot.
      "--kube-proxy-health=off",
      ...(this.slices ? [] : ["--announce=always"]),
      ...this.extraArgs,
    ];
  }

  /** When the event of resource version `rv` was written to a watch; waits for it. */
  whenWritten(rv: string): Promise<number> {
    const at = this.#written.get(rv);
    if (at !== undefined) return Promise.resolve(at);
    return new Promise((resolve) => this.#writeWaiters.set(rv, resolve));
  }

  /** Removes everything the stage made. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    stages.delete(this);
    await this.monitor.stop().catch(() => {});
    await this.api.close().catch(() => {});
    await Promise.resolve(this.kubeconfig[Symbol.asyncDispose]()).catch(() => {});
    await this.ns.delete();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}

/** Rejects after `ms` with `what` in the message, unless `p` settles first. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms}ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** When a burst of additions was complete, and whether the monitor lost part of it. */
export interface AllAdded {
  /** The last addition the monitor reported (`performance.now()`). */
  readonly at: number;
  /**
   * The monitor missed some additions (a netlink overrun of `ip monitor` on a
   * loaded machine) and `held` counted them all in the kernel: `at` is then
   * the last one it did report, the end of the burst it saw.
   */
  readonly lost: boolean;
}

/**
 * Waits until `all` (a {@linkcode AddressMonitor.waitForAll} of additions)
 * resolves; once the monitor has been quiet for 2 s with some still pending,
 * asks `held` how many the kernel holds, and ends when it holds `count`.
 * Polls only when quiet, so a burst being measured is not slowed by reads.
 */
export async function allAdded(
  monitor: AddressMonitor,
  all: { done: Promise<number>; pending: () => number },
  count: number,
  held: () => Promise<number>,
  limitMs: number,
  what: string,
): Promise<AllAdded> {
  let stopped = false;
  const poll = async (): Promise<AllAdded> => {
    let seen = monitor.events;
    let quietSince = performance.now();
    while (!stopped) {
      await sleep(500);
      if (monitor.events !== seen) {
        seen = monitor.events;
        quietSince = performance.now();
      } else if (performance.now() - quietSince >= 2000) {
        if (await held() >= count) return { at: monitor.lastAt, lost: true };
        quietSince = performance.now();
      }
    }
    return await new Promise<never>(() => {});
  };
  try {
    return await within(
      Promise.race([all.done.then((at) => ({ at, lost: false })), poll()]),
      limitMs,
      what,
    ).catch((err) => {
      throw new Error(`${err.message}; ${all.pending()} not reported`);
    });
  } finally {
    stopped = true;
  }
}

/** Sleeps `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * A long-lived `ip -n NS -force -batch -` fed as the bench goes: the kernel
 * floor the agent is compared with.
 */
export class IpBatch {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #encoder = new TextEncoder();

  constructor(netns: string) {
    this.#child = new Deno.Command("ip", {
      args: ["-n", netns, "-force", "-batch", "-"],
      stdin: "piped",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
  }

  get pid(): number {
    return this.#child.pid;
  }

  /** Sends batch lines to `ip`. */
  write(lines: string): Promise<void> {
    return this.#writer.write(this.#encoder.encode(lines));
  }

  /** Ends the input and waits for `ip`; throws with its stderr if it failed. */
  async close(): Promise<void> {
    await this.#writer.close().catch(() => {});
    const out = await this.#child.output();
    if (!out.success) throw new Error(`ip -batch failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}
