/**
 * The baseline: the prototype's algorithm, reimplemented from its documented
 * behaviour (the seed README and the benchmark issue), for comparison only.
 *
 *     loop forever {
 *       sleep a random 1–10 s
 *       list all Services (one unpaged LIST)
 *       for each external IP of each ClusterIP Service:
 *         run one `ip address add IP/32 dev IF` process
 *       read the interface (one `ip -json address show dev IF` process)
 *       for each host address inside the network that no Service claims:
 *         run one `ip address del IP/32 dev IF` process
 *     }
 *
 * Differences from the Python original, all in the prototype's favour or
 * neutral: processes get argv arrays instead of a shell; `--netns` prefixes
 * every `ip` with `-n NS` so it can run in a throwaway namespace; the sleep is
 * uniform in [1 s, 10 s]; nothing is logged per address. `ip address add` of an
 * address already present fails ("File exists"), which is ignored as the
 * original's shell call did. The original's way of reading the interface is
 * not documented; one `ip -json` read per pass is assumed.
 *
 * Usage: deno run --allow-net=127.0.0.1 --allow-run=ip prototype.ts
 *          --server URL --network A.B.C.D/N [--interface lo] [--netns NS]
 *
 * Writes one line per pass to stderr:
 * `pass N slept=MS listed=S spawned=P took=MS`.
 *
 * @module
 */

interface Options {
  readonly server: string;
  readonly network: { base: number; mask: number };
  readonly device: string;
  readonly netns?: string;
}

function parseV4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let v = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    v = v * 256 + Number(p);
  }
  return v;
}

function parseArgs(argv: readonly string[]): Options {
  const get = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const server = get("server");
  const net = get("network");
  if (!server || !net) throw new Error("usage: --server URL --network A.B.C.D/N");
  const [addr, len] = net.split("/");
  const base = parseV4(addr);
  const prefix = Number(len);
  if (base === undefined || !(prefix >= 0 && prefix <= 32)) throw new Error(`bad network ${net}`);
  const mask = prefix === 0 ? 0 : (0xffff_ffff << (32 - prefix)) >>> 0;
  return {
    server,
    network: { base: (base & mask) >>> 0, mask },
    device: get("interface") ?? "lo",
    netns: get("netns"),
  };
}

function inside(o: Options, text: string): boolean {
  const v = parseV4(text);
  return v !== undefined && ((v & o.network.mask) >>> 0) === o.network.base;
}

let spawned = 0;

async function ip(o: Options, ...args: string[]): Promise<{ ok: boolean; stdout: string }> {
  spawned++;
  const out = await new Deno.Command("ip", {
    args: [...(o.netns ? ["-n", o.netns] : []), ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  return { ok: out.success, stdout: new TextDecoder().decode(out.stdout) };
}

interface ServiceList {
  items?: { spec?: { type?: string; externalIPs?: string[] } }[];
}

async function pass(o: Options): Promise<number> {
  const res = await fetch(`${o.server}/api/v1/services`);
  if (!res.ok) throw new Error(`list: HTTP ${res.status}`);
  const list = await res.json() as ServiceList;
  const claimed = new Set<string>();
  const items = list.items ?? [];
  for (const svc of items) {
    if ((svc.spec?.type ?? "ClusterIP") !== "ClusterIP") continue;
    for (const address of svc.spec?.externalIPs ?? []) {
      claimed.add(address);
      await ip(o, "address", "add", `${address}/32`, "dev", o.device);
    }
  }
  const shown = await ip(o, "-json", "address", "show", "dev", o.device);
  const links = JSON.parse(shown.stdout || "[]") as {
    addr_info?: { family: string; local: string; prefixlen: number }[];
  }[];
  for (const a of links.flatMap((l) => l.addr_info ?? [])) {
    if (a.family !== "inet" || a.prefixlen !== 32 || !inside(o, a.local)) continue;
    if (!claimed.has(a.local)) await ip(o, "address", "del", `${a.local}/32`, "dev", o.device);
  }
  return items.length;
}

if (import.meta.main) {
  const o = parseArgs(Deno.args);
  const log = (line: string) => Deno.stderr.writeSync(new TextEncoder().encode(line + "\n"));
  for (let n = 1;; n++) {
    const slept = 1000 + Math.random() * 9000;
    await new Promise((r) => setTimeout(r, slept));
    const started = performance.now();
    spawned = 0;
    try {
      const listed = await pass(o);
      log(
        `pass ${n} slept=${Math.round(slept)} listed=${listed} spawned=${spawned} took=${
          Math.round(performance.now() - started)
        }`,
      );
    } catch (err) {
      log(`pass ${n} failed: ${(err as Error).message}`);
    }
  }
}
