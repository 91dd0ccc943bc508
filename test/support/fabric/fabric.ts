/**
 * A BGP test fabric in network namespaces:
 *
 * ```
 *   client ── leaf ──┬── gw1 ──┬── pod1
 *    (AS 65000 leaf) └── gw2 ──┴── pod2      gw1, gw2: AS 65001, like spines
 * ```
 *
 * The leaf runs FRR with eBGP to both gateways and ECMP; each gateway runs FRR
 * with scripts/router/frr-gateway.conf (or, on request, one gateway runs
 * BIRD 2 with scripts/router/bird-gateway.conf), a kube-proxy stand-in (nftables rules
 * shaped like kube-proxy's nftables mode, from
 * scripts/router/kube-proxy-nftables.yaml), a stand-in for kube-proxy's
 * health endpoint (kube_proxy_health.ts, in this process) and, on request, a
 * kube-gw agent (node name: the gateway's label) or a `kube-gw controller`.
 * The pods serve HTTP on port 80 and answer with their name and the address
 * the request came from, i.e. the masquerading gateway (or the client, for
 * `externalTrafficPolicy: Local`). pod1 runs on node gw1 and pod2 on gw2:
 * each pod's route back to the client network goes through its node.
 *
 * Everything started is recorded under a per-run directory, and stopped by
 * pid on {@linkcode Fabric.destroy}, on SIGINT/SIGTERM, by a watchdog process
 * when this process dies (the test runner exits on SIGINT without running
 * listeners; SIGKILL runs nothing), or by the next run's
 * {@linkcode sweepStaleRuns}.
 *
 * @module
 */

import { type LoggedProcess, startAgent } from "../procs/agent.ts";
import {
  FABRIC,
  FABRIC6,
  type GatewayName,
  GATEWAYS,
  otherEnd6,
  type PodName,
} from "./addresses.ts";
import { BirdRouter } from "./bird.ts";
import { FrrRouter } from "./frr.ts";
import {
  kubeProxyRuleset,
  parseKubeProxyConfig,
  type ServiceEndpoints,
  type ServiceObject,
} from "./kube_proxy.ts";
import { FakeKubeProxyHealth } from "../fakes/kube_proxy_health.ts";
import { inNetns as execIn, Netns } from "../procs/netns.ts";
import { ProbeClient } from "./probe_client.ts";
import { Reaper, RunDir, sweepStaleRuns } from "../procs/processes.ts";
import { readRepoFile, renderTemplate, repoPath } from "./router_config.ts";
import { RouteMonitor } from "./route_monitor.ts";
import { nftScript, startReady } from "./netns_helpers.ts";
import { waitFor } from "../wait.ts";

export {
  FABRIC,
  FABRIC6,
  type GatewayName,
  gatewayOf,
  otherEnd6,
  type PodName,
} from "./addresses.ts";

/** A Service to program on the gateways, with the pods behind it. */
export interface FabricService {
  readonly service: ServiceObject;
  readonly pods: readonly PodName[];
}

/** Options for {@linkcode Fabric.start}. */
export interface FabricOptions {
  /** Which router configuration the gateways' FRR runs. @default "address" */
  readonly installAs?: "address" | "route";
  /**
   * A gateway that runs BIRD 2 instead of FRR, with scripts/router/bird-gateway.conf
   * (route mode: bird-gateway-route.conf). @default none
   */
  readonly bird?: GatewayName;
  /**
   * Dual stack: IPv6 on every link and pod ({@linkcode FABRIC6}), IPv6
   * unicast on the leaf's BGP sessions (over IPv4, as the gateways' route-mode
   * files carry it), kube-proxy's `ip6` table, and the agents managing
   * {@linkcode FABRIC6}.serviceNetwork beside the IPv4 one. @default false
   */
  readonly ipv6?: boolean;
}

const POD_SCRIPT = new URL("./pod_server.ts", import.meta.url).pathname;
const TCP_PROBE = new URL("../procs/tcp_probe.ts", import.meta.url).pathname;
const LEAF_CONFIG = new URL("./frr-leaf.conf", import.meta.url);
const LEAF_CONFIG6 = new URL("./frr-leaf-ipv6.conf", import.meta.url);

async function inNetns(netns: string, ...argv: string[]): Promise<string> {
  return (await execIn(netns, argv)).stdout;
}

/** The running fabric. */
export class Fabric implements AsyncDisposable {
  readonly #run: RunDir;
  readonly #reaper: Reaper;
  readonly #ns: Record<string, Netns> = {};
  readonly #routers = new Map<string, FrrRouter | BirdRouter>();
  readonly #children: { name: string; child: Deno.ChildProcess }[] = [];
  readonly #agents = new Map<GatewayName, LoggedProcess>();
  readonly #controllers: LoggedProcess[] = [];
  readonly #health = new Map<GatewayName, FakeKubeProxyHealth>();
  #probe?: ProbeClient;
  #monitor?: RouteMonitor;
  #destroyed?: Promise<void>;
  readonly #onSignal: () => void;

  readonly #installAs: "address" | "route";
  readonly #bird?: GatewayName;
  /** Whether the fabric is dual stack ({@linkcode FabricOptions.ipv6}). */
  readonly ipv6: boolean;

  private constructor(run: RunDir, options: FabricOptions) {
    this.#run = run;
    this.#installAs = options.installAs ?? "address";
    this.#bird = options.bird;
    this.ipv6 = options.ipv6 ?? false;
    this.#reaper = new Reaper(run);
    this.#onSignal = () => {
      console.error("fabric: interrupted, cleaning up");
      this.destroy().finally(() => Deno.exit(130));
    };
  }

  /**
   * Sweeps what dead runs left behind, then builds and starts the fabric. The
   * gateways' FRR runs the router configuration of `installAs` (address mode:
   * scripts/router/frr-gateway.conf; route mode: frr-gateway-route.conf).
   */
  static async start(options: FabricOptions = {}): Promise<Fabric> {
    await sweepStaleRuns();
    const f = new Fabric(await RunDir.create(), options);
    Deno.addSignalListener("SIGINT", f.#onSignal);
    Deno.addSignalListener("SIGTERM", f.#onSignal);
    try {
      await f.#build();
    } catch (err) {
      await f.destroy();
      throw err;
    }
    return f;
  }

  /** The real name of a namespace: `leaf`, `gw1`, `gw2`, `client`, `pod1`, `pod2`. */
  ns(label: string): string {
    const n = this.#ns[label];
    if (!n) throw new Error(`no namespace ${label}`);
    return n.name;
  }

  /** The per-run directory. */
  get runDir(): string {
    return this.#run.path;
  }

  /** The leaf's FIB, as `ip monitor route` reports it. */
  get monitor(): RouteMonitor {
    if (!this.#monitor) throw new Error("fabric not started");
    return this.#monitor;
  }

  /** The HTTP client in the `client` namespace. */
  get probe(): ProbeClient {
    if (!this.#probe) throw new Error("fabric not started");
    return this.#probe;
  }

  /** The kube-proxy health endpoint the agent of `gw` polls. */
  kubeProxyHealth(gw: GatewayName): FakeKubeProxyHealth {
    const h = this.#health.get(gw);
    if (!h) throw new Error("fabric not started");
    return h;
  }

  /** The BGP daemon of `leaf`, `gw1` or `gw2`: FRR, or BIRD on the gateway that runs it. */
  router(label: string): FrrRouter | BirdRouter {
    const r = this.#routers.get(label);
    if (!r) throw new Error(`no router ${label}`);
    return r;
  }

  /** Runs `ip -n <label> ...`. */
  ip(label: string, ...args: string[]): Promise<string> {
    return this.#ns[label].ip(...args);
  }

  async #build(): Promise<void> {
    for (const label of ["leaf", "gw1", "gw2", "client", "pod1", "pod2"]) {
      this.#ns[label] = await Netns.create(label);
      // No duplicate address detection: an address is usable (FRR's next hops, binds) at once.
      if (this.ipv6) {
        await inNetns(
          this.ns(label),
          "sysctl",
          "-qw",
          "net.ipv6.conf.all.accept_dad=0",
          "net.ipv6.conf.default.accept_dad=0",
        );
      }
    }
    const link = async (
      a: string,
      aIf: string,
      aAddr: string,
      b: string,
      bIf: string,
      bAddr: string,
    ) => {
      await this.ip(
        a,
        "link",
        "add",
        aIf,
        "type",
        "veth",
        "peer",
        "name",
        bIf,
        "netns",
        this.ns(b),
      );
      await this.ip(a, "address", "add", aAddr, "dev", aIf);
      await this.ip(b, "address", "add", bAddr, "dev", bIf);
      await this.ip(a, "link", "set", aIf, "up");
      await this.ip(b, "link", "set", bIf, "up");
    };
    const f = FABRIC;
    await link("leaf", "gw1", `${f.leaf.toGw1}/31`, "gw1", "leaf", `${f.gw1.uplink}/31`);
    await link("leaf", "gw2", `${f.leaf.toGw2}/31`, "gw2", "leaf", `${f.gw2.uplink}/31`);
    await link("leaf", "client", `${f.leaf.client}/24`, "client", "leaf", `${f.client.address}/24`);
    await this.ip("client", "route", "add", "default", "via", f.leaf.client);
    await this.ip("leaf", "address", "add", `${f.leaf.loopback}/32`, "dev", "lo");
    for (const gw of GATEWAYS) {
      await this.ip(gw, "address", "add", `${f[gw].loopback}/32`, "dev", "lo");
      for (const [i, pod] of (["pod1", "pod2"] as const).entries()) {
        const gwAddr = i === 0 ? f[gw].toPod1 : f[gw].toPod2;
        const podAddr = gwAddr.replace(/\d+$/, (n) => String(Number(n) + 1));
        await link(gw, pod, `${gwAddr}/31`, pod, gw, `${podAddr}/31`);
        await this.ip(gw, "route", "add", `${f.pods[pod]}/32`, "via", podAddr);
      }
    }
    await link("gw1", "peer", `${f.gw1.toPeer}/31`, "gw2", "peer", `${f.gw2.toPeer}/31`);
    if (this.ipv6) await this.#addIpv6();
    const sysctls = repoPath("scripts/router/sysctl-gateway.conf");
    const handoff = await readRepoFile("scripts/router/nft-handoff.conf");
    for (const gw of GATEWAYS) {
      await inNetns(this.ns(gw), "sysctl", "-q", "-p", sysctls);
      const peer = gw === "gw1" ? "gw2" : "gw1";
      await nftScript(
        this.ns(gw),
        renderTemplate(handoff, {
          PEER: f[peer].toPeer,
          PEER6: FABRIC6[peer].toPeer,
          PEER_LINK: "peer",
        }),
      );
    }
    for (const pod of ["pod1", "pod2"] as const) {
      await this.ip(pod, "address", "add", `${f.pods[pod]}/32`, "dev", "lo");
      // Replies to clients whose address was kept (Local) go back through the pod's node.
      const node = f.podNode[pod];
      const nodeSide = pod === "pod1" ? f[node].toPod1 : f[node].toPod2;
      await this.ip(pod, "route", "add", f.client.network, "via", nodeSide);
    }
    for (const gw of GATEWAYS) this.#health.set(gw, FakeKubeProxyHealth.start());
    await inNetns(this.ns("leaf"), "sysctl", "-qw", "net.ipv4.ip_forward=1");
    await inNetns(this.ns("leaf"), "sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1");
    if (this.ipv6) {
      await inNetns(this.ns("leaf"), "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1");
      await inNetns(this.ns("leaf"), "sysctl", "-qw", "net.ipv6.fib_multipath_hash_policy=1");
    }

    this.#monitor = await RouteMonitor.start(this.ns("leaf"));
    await this.#run.record("monitor-leaf", this.#monitor.pid);

    const leafConf = renderTemplate(await Deno.readTextFile(LEAF_CONFIG), {
      GW1: f.gw1.uplink,
      GW2: f.gw2.uplink,
    }) + (this.ipv6 ? await Deno.readTextFile(LEAF_CONFIG6) : "");
    const suffix = this.#installAs === "route" ? "-route" : "";
    const gwTemplate = (daemon: string) =>
      readRepoFile(`scripts/router/${daemon}-gateway${suffix}.conf`);
    await Promise.all([
      this.#startRouter("leaf", leafConf),
      ...GATEWAYS.map(async (gw) => {
        const values = {
          LOOPBACK: f[gw].loopback,
          ASN: f.asn.gateways,
          UPLINK: gw === "gw1" ? f.leaf.toGw1 : f.leaf.toGw2,
        };
        if (gw === this.#bird) {
          const dir = await this.#run.subdir(`bird-${gw}`);
          const conf = renderTemplate(await gwTemplate("bird"), values);
          this.#routers.set(gw, await BirdRouter.start(this.ns(gw), dir, conf));
        } else {
          await this.#startRouter(gw, renderTemplate(await gwTemplate("frr"), values));
        }
      }),
    ]);

    for (const pod of ["pod1", "pod2"] as const) {
      const v6 = this.ipv6 ? [FABRIC6.pods[pod]] : [];
      const child = await startReady(this.ns(pod), [
        "deno",
        "run",
        "--quiet",
        "--no-prompt",
        `--allow-net=${["0.0.0.0:80", ...v6.map((a) => `[${a}]:80`)].join(",")}`,
        POD_SCRIPT,
        pod,
        this.#run.path,
        ...v6,
      ], /listening/);
      this.#children.push({ name: pod, child });
      await this.#run.record(pod, child.pid);
    }
    this.#probe = new ProbeClient(
      this.ns("client"),
      [
        "10.0.100.30",
        "10.0.100.31",
        ...f.lbPool.addresses,
        f.gw1.loopback,
        f.gw2.loopback,
        ...(this.ipv6 ? FABRIC6.vips.map((a) => `[${a}]`) : []),
      ],
      this.#run.path,
    );
    await this.#run.record("probe", this.#probe.pid);
    for (const gw of GATEWAYS) await this.#installProbeCounter(gw);

    // BGP is up both ways when the leaf has both loopbacks and the gateways the client network.
    await this.monitor.waitFor(
      (fib) => fib.has(`${f.gw1.loopback}/32`) && fib.has(`${f.gw2.loopback}/32`),
      30_000,
      "BGP sessions leaf-gw1 and leaf-gw2",
    ).catch(async (err) => {
      const bird = this.#bird ? this.#routers.get(this.#bird) : undefined;
      if (!(bird instanceof BirdRouter)) throw err;
      const state = await bird.birdc("show", "protocols", "all").catch((e) => String(e));
      throw new Error(`${err.message}\nBIRD on ${this.#bird}:\n${state}`, { cause: err });
    });
    for (const gw of GATEWAYS) {
      await waitFor(
        `${gw} learns the client network`,
        async () => /proto (bgp|bird)/.test(await this.ip(gw, "route", "show", "10.0.2.0/24")),
        30_000,
        50,
      );
      if (!this.ipv6) continue;
      await waitFor(
        `${gw} learns the IPv6 client network (IPv6 unicast on the session)`,
        async () =>
          /proto (bgp|bird)/.test(
            await this.ip(gw, "-6", "route", "show", FABRIC6.client.network),
          ),
        30_000,
        50,
      );
    }
  }

  /** Dual stack: IPv6 beside every IPv4 address and route of {@linkcode #build}. */
  async #addIpv6(): Promise<void> {
    const f6 = FABRIC6;
    const addr = (label: string, dev: string, address: string, len = 64) =>
      this.ip(label, "-6", "address", "add", `${address}/${len}`, "dev", dev, "nodad");
    await addr("leaf", "gw1", f6.leaf.toGw1);
    await addr("gw1", "leaf", f6.gw1.uplink);
    await addr("leaf", "gw2", f6.leaf.toGw2);
    await addr("gw2", "leaf", f6.gw2.uplink);
    await addr("leaf", "client", f6.leaf.client);
    await addr("client", "leaf", f6.client.address);
    await this.ip("client", "-6", "route", "add", "default", "via", f6.leaf.client);
    for (const gw of GATEWAYS) {
      await addr(gw, "peer", f6[gw].toPeer);
      for (const pod of ["pod1", "pod2"] as const) {
        const gwSide = pod === "pod1" ? f6[gw].toPod1 : f6[gw].toPod2;
        await addr(gw, pod, gwSide);
        await addr(pod, gw, otherEnd6(gwSide));
        await this.ip(gw, "-6", "route", "add", `${f6.pods[pod]}/128`, "via", otherEnd6(gwSide));
      }
    }
    for (const pod of ["pod1", "pod2"] as const) {
      await addr(pod, "lo", f6.pods[pod], 128);
      const node = FABRIC.podNode[pod];
      const nodeSide = pod === "pod1" ? f6[node].toPod1 : f6[node].toPod2;
      await this.ip(pod, "-6", "route", "add", f6.client.network, "via", nodeSide);
    }
  }

  async #startRouter(label: string, config: string): Promise<void> {
    const dir = await this.#run.subdir(`frr-${label}`);
    this.#routers.set(label, await FrrRouter.start(this.ns(label), dir, config));
  }

  /** A counter of connection attempts (SYNs) to the service network, per gateway. */
  async #installProbeCounter(gw: GatewayName): Promise<void> {
    await nftScript(
      this.ns(gw),
      [
        "table ip kgwt-probe {",
        "\tcounter service-syn { }",
        "\tchain prerouting {",
        "\t\ttype filter hook prerouting priority raw; policy accept;",
        `\t\tip daddr ${FABRIC.serviceNetwork} tcp flags & (syn | ack) == syn counter name "service-syn"`,
        "\t}",
        "}",
        "",
      ].join("\n"),
    );
  }

  /** Connection attempts to the service network that reached `gw`. */
  async synCount(gw: GatewayName): Promise<number> {
    const out = JSON.parse(
      await inNetns(this.ns(gw), "nft", "-j", "list", "counter", "ip", "kgwt-probe", "service-syn"),
    ) as { nftables: { counter?: { packets: number } }[] };
    const c = out.nftables.find((e) => e.counter)?.counter;
    if (!c) throw new Error(`no counter in ${gw}`);
    return c.packets;
  }

  /** Packets `gw` handed to its peer gateway (the hand-off rule's counter). */
  async handedOff(gw: GatewayName): Promise<number> {
    const out = JSON.parse(
      await inNetns(
        this.ns(gw),
        "nft",
        "-j",
        "list",
        "chain",
        "ip",
        "kube-gw-handoff",
        "prerouting",
      ),
    ) as { nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[] };
    let packets = 0;
    for (const e of out.nftables) {
      for (const x of e.rule?.expr ?? []) packets += x.counter?.packets ?? 0;
    }
    return packets;
  }

  /**
   * Programs kube-proxy's rules for `service` on both gateways, as kube-proxy
   * in nftables mode would, sending to both pods. Like kube-proxy in IPVS
   * mode, it also binds the ClusterIP to a `kube-ipvs0` device, which the
   * gateways' route-map must keep out of BGP.
   */
  async programKubeProxy(service: ServiceObject | undefined): Promise<void> {
    await this.programServices(service ? [{ service, pods: ["pod1", "pod2"] }] : []);
  }

  /**
   * Programs kube-proxy's rules for `services` on both gateways, as each
   * gateway's kube-proxy would: every pod behind a Service for its ClusterIP
   * and Cluster-policy external traffic; for `externalTrafficPolicy: Local`,
   * external traffic only to the pods on that gateway's node
   * ({@linkcode FABRIC}.podNode). ClusterIPs go on `kube-ipvs0`.
   */
  async programServices(services: readonly FabricService[]): Promise<void> {
    const settings = parseKubeProxyConfig(
      await readRepoFile("scripts/router/kube-proxy-nftables.yaml"),
    );
    await Promise.all(GATEWAYS.map(async (gw) => {
      const addresses = (p: PodName) => [FABRIC.pods[p], ...(this.ipv6 ? [FABRIC6.pods[p]] : [])];
      const entries: ServiceEndpoints[] = services.map(({ service, pods }) => ({
        service,
        endpoints: pods.flatMap(addresses),
        localEndpoints: pods.filter((p) => FABRIC.podNode[p] === gw).flatMap(addresses),
      }));
      // As kube-proxy in a dual-stack cluster: one table per family, each from its own proxier.
      const ip6 = this.ipv6 ? await kubeProxyRuleset(settings, entries, "ip6") : "";
      await nftScript(this.ns(gw), (await kubeProxyRuleset(settings, entries)) + ip6);
      await this.ip(gw, "link", "del", "kube-ipvs0").catch(() => {});
      const clusterIPs = services.flatMap(({ service }) =>
        service.spec.clusterIP ? [service.spec.clusterIP] : []
      );
      if (clusterIPs.length > 0) {
        await this.ip(gw, "link", "add", "kube-ipvs0", "type", "bridge");
        for (const ip of clusterIPs) {
          const host = ip.includes(":") ? [`${ip}/128`, "dev", "kube-ipvs0", "nodad"] : [
            `${ip}/32`,
            "dev",
            "kube-ipvs0",
          ];
          await this.ip(gw, "address", "add", ...host);
        }
        await this.ip(gw, "link", "set", "kube-ipvs0", "up");
      }
    }));
  }

  /**
   * Starts kube-gw on a gateway, exactly as the README starts it, with the
   * gateway's label as its node name and its kube-proxy health endpoint;
   * `args` come last (e.g. `--metrics-address=127.0.0.1:PORT`).
   */
  async startAgent(
    gw: GatewayName,
    kubeconfig: string,
    args: readonly string[] = [],
  ): Promise<LoggedProcess> {
    const agent = startAgent([
      "run",
      `--network=${this.networks}`,
      `--netns=${this.ns(gw)}`,
      `--kubeconfig=${kubeconfig}`,
      `--node-name=${gw}`,
      `--kube-proxy-health=${this.kubeProxyHealth(gw).url}`,
      "--metrics-address=off",
      ...args,
    ]);
    this.#agents.set(gw, agent);
    await this.#run.record(`agent-${gw}`, agent.pid);
    return agent;
  }

  /**
   * Starts `kube-gw controller` with `args` (e.g. `--pool`), stopped with the
   * fabric. Its kubeconfig is copied into the run directory, which puts the
   * run on its command line for the reaper.
   */
  async startController(kubeconfig: string, args: readonly string[]): Promise<LoggedProcess> {
    const n = this.#controllers.length + 1;
    const copy = `${this.#run.path}/controller-${n}.kubeconfig`;
    await Deno.copyFile(kubeconfig, copy);
    const controller = startAgent(["controller", `--kubeconfig=${copy}`, ...args]);
    this.#controllers.push(controller);
    await this.#run.record(`controller-${n}`, controller.pid);
    return controller;
  }

  /**
   * Starts a TCP listener on every address of `gw` (`[::]:port`, IPv4 too),
   * standing in for sshd or any daemon of the router; stopped with the fabric.
   */
  async listen(gw: GatewayName, port: number): Promise<void> {
    const child = await startReady(this.ns(gw), [
      "deno",
      "run",
      "--quiet",
      "--no-prompt",
      "--allow-net",
      TCP_PROBE,
      "listen",
      String(port),
      `${gw}-listener`,
      this.#run.path,
    ], /listening/);
    this.#children.push({ name: `${gw}-listener`, child });
    await this.#run.record(`${gw}-listener`, child.pid);
  }

  /**
   * Connects from the namespace `label` to each `host:port` in turn and
   * returns what each saw (tcp_probe.ts: `connected:NAME`, `refused`,
   * `host_unreachable`, `timeout`...), waiting at most `timeoutMs` each.
   */
  async connect(label: string, targets: readonly string[], timeoutMs = 3000): Promise<string[]> {
    const out = await inNetns(
      this.ns(label),
      "deno",
      "run",
      "--quiet",
      "--no-prompt",
      "--allow-net",
      TCP_PROBE,
      "connect",
      String(timeoutMs),
      ...targets,
    );
    return JSON.parse(out) as string[];
  }

  /**
   * The IPv6 next hop the leaf installs for a route from `gw`: the gateway's
   * link-local address on its uplink (FRR and BIRD both send it beside the
   * global one, and the leaf's zebra prefers it).
   */
  async uplinkHop6(gw: GatewayName): Promise<string> {
    const links = JSON.parse(
      await this.ip(gw, "-6", "-json", "address", "show", "dev", "leaf", "scope", "link"),
    ) as { addr_info?: { local?: string; scope?: string }[] }[];
    // `ip -json` with a scope filter leaves an empty object for each address it filtered out.
    const local = links.flatMap((l) => l.addr_info ?? []).find((a) => a.scope === "link")?.local;
    if (!local) throw new Error(`${gw} has no link-local address on its uplink`);
    return local;
  }

  /** The agents' `--network`: the IPv4 service network, and the IPv6 one when dual stack. */
  get networks(): string {
    return [FABRIC.serviceNetwork, ...(this.ipv6 ? [FABRIC6.serviceNetwork] : [])].join(",");
  }

  /** Routes of the leaf's main table for `dst`, with their gateways (`ip -json route`). */
  async leafNextHops(dst: string): Promise<string[]> {
    const family = dst.includes(":") ? "-6" : "-4";
    const routes = JSON.parse(await this.ip("leaf", family, "-json", "route", "show", dst)) as {
      gateway?: string;
      nexthops?: { gateway: string }[];
    }[];
    return routes.flatMap((r) =>
      r.nexthops?.map((n) => n.gateway) ?? (r.gateway ? [r.gateway] : [])
    )
      .sort();
  }

  /** Stops everything this fabric started and deletes its namespaces. Idempotent. */
  destroy(): Promise<void> {
    this.#destroyed ??= this.#teardown();
    return this.#destroyed;
  }

  async #teardown(): Promise<void> {
    Deno.removeSignalListener("SIGINT", this.#onSignal);
    Deno.removeSignalListener("SIGTERM", this.#onSignal);
    await Promise.all(
      [...this.#agents.values(), ...this.#controllers].map((a) => a.stop("SIGKILL")),
    );
    await Promise.all([...this.#health.values()].map((h) => h.close()));
    await this.#probe?.close();
    await this.#monitor?.stop();
    await Promise.all(this.#children.map(async ({ child }) => {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await child.status;
    }));
    await Promise.all([...this.#routers.values()].map((r) => r.stop()));
    // Anything recorded and still running (a daemon whose start failed half-way).
    await this.#run.destroy();
    for (const ns of Object.values(this.#ns)) await ns.delete();
    await this.#reaper.release();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.destroy();
  }
}
