/**
 * A small router lab in network namespaces, to measure how a Service address
 * behaves when the router holds it one way or another (an address on `lo`, a
 * route of some type): a client and a "pod" behind a router that runs
 * nftables DNAT of VIP:80 to the pod in PREROUTING and OUTPUT (as kube-proxy
 * does, with the masquerade mark) and a TCP listener on [::]:22 (standing in
 * for sshd, or any daemon listening on every address).
 *
 * ```
 *   client ──(10.9.1.0/24, fd00:9:1::/64)── router ──(10.9.2.0/24, fd00:9:2::/64)── pod
 * ```
 *
 * Everything it starts is stopped by pid in {@linkcode RouteLab.close}; the
 * namespaces are removed with it.
 *
 * @module
 */

import { inNetns, Netns } from "./netns.ts";
import type { ProbeOutcome } from "./tcp_probe.ts";

const PROBE = new URL("./tcp_probe.ts", import.meta.url).pathname;
const decoder = new TextDecoder();

/** The lab's addresses, per family. */
export const LAB = {
  4: {
    vip: "10.9.100.30",
    network: "10.9.100.0/24",
    router: { client: "10.9.1.1/24", pod: "10.9.2.1/24" },
    client: "10.9.1.2/24",
    pod: "10.9.2.2",
    podCidr: "10.9.2.2/24",
  },
  6: {
    vip: "fd00:9:100::30",
    network: "fd00:9:100::/64",
    router: { client: "fd00:9:1::1/64", pod: "fd00:9:2::1/64" },
    client: "fd00:9:1::2/64",
    pod: "fd00:9:2::2",
    podCidr: "fd00:9:2::2/64",
  },
} as const;

/** What was seen for one family. */
export interface LabOutcome {
  /** The client to VIP:22, where only the router's own listener could answer. */
  readonly clientSsh: ProbeOutcome;
  /** The client to VIP:80 (DNAT in PREROUTING). */
  readonly clientService: ProbeOutcome;
  /** The router itself to VIP:80 (DNAT in OUTPUT). */
  readonly routerService: ProbeOutcome;
  /** The client to VIP:81, a port nothing serves. */
  readonly clientUnserved: ProbeOutcome;
  /** How often the router forwarded a packet still addressed to the VIP (a loop shows as many). */
  readonly forwarded: number;
}

function kubeProxyLike(): string {
  const v4 = LAB[4];
  const v6 = LAB[6];
  return `table inet kgw-lab {
  counter forwarded4 {
  }
  counter forwarded6 {
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr ${v4.vip} tcp dport 80 meta mark set 0x4000 dnat ip to ${v4.pod}:80
    ip6 daddr ${v6.vip} tcp dport 80 meta mark set 0x4000 dnat ip6 to [${v6.pod}]:80
  }
  chain output {
    type nat hook output priority -100; policy accept;
    ip daddr ${v4.vip} tcp dport 80 meta mark set 0x4000 dnat ip to ${v4.pod}:80
    ip6 daddr ${v6.vip} tcp dport 80 meta mark set 0x4000 dnat ip6 to [${v6.pod}]:80
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    meta mark & 0x4000 != 0 masquerade
  }
  chain forward {
    type filter hook forward priority 0; policy accept;
    ip daddr ${v4.vip} counter name "forwarded4"
    ip6 daddr ${v6.vip} counter name "forwarded6"
  }
}
`;
}

async function run(netns: string, argv: readonly string[], stdin?: string): Promise<string> {
  return (await inNetns(netns, argv, stdin)).stdout;
}

/** A listener started in a namespace, stopped by pid. */
async function listen(netns: string, port: number, name: string): Promise<Deno.ChildProcess> {
  const child = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      netns,
      "deno",
      "run",
      "--quiet",
      "--allow-net",
      PROBE,
      "listen",
      String(port),
      name,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  let seen = "";
  while (!seen.includes("listening")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the listener on ${netns}:${port} exited before listening`);
    seen += decoder.decode(value);
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  return child;
}

/** The lab: three namespaces, two listeners, the DNAT rules. */
export class RouteLab implements AsyncDisposable {
  private constructor(
    readonly router: Netns,
    readonly client: Netns,
    readonly pod: Netns,
    readonly listeners: Deno.ChildProcess[],
  ) {}

  /** Builds the lab and starts the listeners. */
  static async create(): Promise<RouteLab> {
    const router = await Netns.create("lab-r");
    const client = await Netns.create("lab-c");
    const pod = await Netns.create("lab-p");
    const lab = new RouteLab(router, client, pod, []);
    try {
      await lab.#wire();
      lab.listeners.push(await listen(router.name, 22, "router"));
      lab.listeners.push(await listen(pod.name, 80, "pod"));
    } catch (err) {
      await lab.close();
      throw err;
    }
    return lab;
  }

  async #wire(): Promise<void> {
    for (const [peer, side] of [[this.client, "to-c"], [this.pod, "to-p"]] as const) {
      await peer.ip(
        "link",
        "add",
        "up0",
        "type",
        "veth",
        "peer",
        "name",
        side,
        "netns",
        this.router.name,
      );
    }
    for (const f of [4, 6] as const) {
      const l = LAB[f];
      const nodad = f === 6 ? ["nodad"] : [];
      await this.router.ip("address", "add", l.router.client, "dev", "to-c", ...nodad);
      await this.router.ip("address", "add", l.router.pod, "dev", "to-p", ...nodad);
      await this.client.ip("address", "add", l.client, "dev", "up0", ...nodad);
      await this.pod.ip("address", "add", l.podCidr, "dev", "up0", ...nodad);
    }
    for (
      const [ns, dev] of [[this.router, "to-c"], [this.router, "to-p"], [this.client, "up0"], [
        this.pod,
        "up0",
      ]] as const
    ) {
      await ns.ip("link", "set", dev, "up");
    }
    for (const f of [4, 6] as const) {
      const l = LAB[f];
      const family = f === 6 ? ["-6"] : [];
      await this.client.ip(
        ...family,
        "route",
        "add",
        "default",
        "via",
        l.router.client.split("/")[0],
      );
      await this.pod.ip(...family, "route", "add", "default", "via", l.router.pod.split("/")[0]);
    }
    await run(this.router.name, [
      "sysctl",
      "-qw",
      "net.ipv4.ip_forward=1",
      "net.ipv6.conf.all.forwarding=1",
      // What the client sees must not depend on how many ICMP errors went before.
      "net.ipv4.icmp_ratelimit=0",
      "net.ipv6.icmp.ratelimit=0",
      "net.ipv4.icmp_msgs_per_sec=100000",
      "net.ipv4.icmp_msgs_burst=10000",
    ]);
    await run(this.router.name, ["nft", "-f", "-"], kubeProxyLike());
  }

  /** Runs `ip -n ROUTER ARGS...`. */
  ip(...args: string[]): Promise<string> {
    return this.router.ip(...args);
  }

  /** Removes every route of protocol 200 (any table), the lab's rules and the VIPs on lo. */
  async reset(): Promise<void> {
    for (const family of ["-4", "-6"]) {
      await this.router.ip(family, "route", "flush", "table", "all", "proto", "200").catch(
        () => {},
      );
      const rules = JSON.parse(await this.router.ip("-json", family, "rule", "show")) as {
        priority: number;
        table?: string;
      }[];
      for (const r of rules) {
        if (r.priority > 0 && r.priority < 32766) {
          await this.router.ip(family, "rule", "del", "pref", String(r.priority));
        }
      }
    }
    for (const f of [4, 6] as const) {
      await this.router.ip("address", "del", `${LAB[f].vip}/${f === 4 ? 32 : 128}`, "dev", "lo")
        .catch(() => {});
    }
  }

  /**
   * Probes both families as they are set up now. A connect waits 2.5 s: an
   * ICMP error that arrives while connect() still holds its socket is only a
   * soft error (the SYN is sent again after the 1 s RTO), so what the client
   * finally sees can take a retry to show.
   */
  async measure(): Promise<Record<4 | 6, LabOutcome>> {
    await run(this.router.name, ["nft", "reset", "counters", "table", "inet", "kgw-lab"]);
    const target = (f: 4 | 6, port: number) =>
      f === 6 ? `[${LAB[f].vip}]:${port}` : `${LAB[f].vip}:${port}`;
    const connect = (ns: Netns, targets: string[]) =>
      run(ns.name, [
        "deno",
        "run",
        "--quiet",
        "--allow-net",
        PROBE,
        "connect",
        "2500",
        ...targets,
      ]).then((out) => JSON.parse(out) as ProbeOutcome[]);
    const [client4, client6, router] = await Promise.all([
      connect(this.client, [22, 80, 81].map((p) => target(4, p))),
      connect(this.client, [22, 80, 81].map((p) => target(6, p))),
      connect(this.router, [target(4, 80), target(6, 80)]),
    ]);
    const client = [...client4, ...client6];
    const forwarded = async (f: 4 | 6) => {
      const text = await run(this.router.name, [
        "nft",
        "list",
        "counter",
        "inet",
        "kgw-lab",
        `forwarded${f}`,
      ]);
      return Number(/packets (\d+)/.exec(text)?.[1] ?? NaN);
    };
    const outcome = async (f: 4 | 6, i: number): Promise<LabOutcome> => ({
      clientSsh: client[i * 3],
      clientService: client[i * 3 + 1],
      clientUnserved: client[i * 3 + 2],
      routerService: router[i],
      forwarded: await forwarded(f),
    });
    return { 4: await outcome(4, 0), 6: await outcome(6, 1) };
  }

  /** Stops the listeners by pid and removes the namespaces. */
  async close(): Promise<void> {
    for (const l of this.listeners) {
      try {
        l.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      await l.status;
    }
    for (const ns of [this.router, this.client, this.pod]) await ns.delete();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
