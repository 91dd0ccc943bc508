/**
 * How a Service address behaves on a router by the way the router holds it:
 * an address on `lo` (address mode), or one route of some type and table
 * (route mode). Measured in a lab of namespaces (test/support/procs/route_lab.ts)
 * with a listener on [::]:22 and kube-proxy-like DNAT of VIP:80 to a pod in
 * PREROUTING and OUTPUT. The table measured is the one in docs/router.md.
 *
 * @module
 */

import assert from "node:assert/strict";
import { LAB, type LabOutcome, RouteLab } from "../support/procs/route_lab.ts";
import { RouteStore } from "../../lib/kernel/route_store.ts";
import { parseCidr } from "../../lib/base/cidr.ts";

type Family = 4 | 6;

/** One way to hold the VIP: its `ip` commands for a family. */
interface Candidate {
  readonly name: string;
  readonly setup: (lab: RouteLab, f: Family) => Promise<void>;
}

const host = (f: Family) => `${LAB[f].vip}/${f === 4 ? 32 : 128}`;
const fam = (f: Family) => (f === 4 ? "-4" : "-6");

function route(type: string, extra: string[] = []): Candidate["setup"] {
  return async (lab, f) => {
    const typed = type === "unicast" ? [host(f), "dev", "lo"] : [type, host(f)];
    await lab.ip(fam(f), "route", "add", ...typed, "proto", "200", ...extra);
  };
}

const CANDIDATES: readonly Candidate[] = [
  {
    name: "address on `lo` (address mode)",
    setup: (lab, f) => lab.ip("address", "add", host(f), "dev", "lo").then(() => {}),
  },
  { name: "`unicast dev lo`, main", setup: route("unicast") },
  {
    name: "`unicast dev lo`, table 100 + `ip rule lookup 100`",
    setup: async (lab, f) => {
      await route("unicast", ["table", "100"])(lab, f);
      await lab.ip(fam(f), "rule", "add", "pref", "100", "lookup", "100");
    },
  },
  { name: "`blackhole`, main", setup: route("blackhole") },
  { name: "`unreachable`, main", setup: route("unreachable") },
  { name: "`prohibit`, main", setup: route("prohibit") },
  {
    name: "**`unreachable`, main + local access** (route mode, made by `RouteStore`)",
    setup: async (lab, f) => {
      const store = new RouteStore({
        netns: lab.router.name,
        protocol: 200,
        table: "main",
        networks: [parseCidr(LAB[f].network)],
      });
      await store.read();
      await store.apply({ add: [LAB[f].vip], remove: [] });
    },
  },
];

function cell(o: string): string {
  return o.startsWith("connected:") ? `connects (${o.slice("connected:".length)})` : o;
}

function row(name: string, f: Family, o: LabOutcome): string {
  const loop = o.forwarded > 4 ? "**yes**" : "no";
  return `| ${name} | IPv${f} | ${cell(o.clientSsh)} | ${cell(o.clientService)} | ${
    cell(o.routerService)
  } | ${cell(o.clientUnserved)} | ${loop} |`;
}

const HEADER = [
  "| held as | family | client → VIP:22 (router's listener) | client → VIP:80 (DNAT) | router → VIP:80 (DNAT) | client → VIP:81 (unserved) | forwarding loop |",
  "| --- | --- | --- | --- | --- | --- | --- |",
];

/** The cells of a Markdown table, trimmed, without its separator row (formatting aside). */
function cells(lines: readonly string[]): string[][] {
  return lines.filter((l) => l.startsWith("|") && !/^\|[\s|:-]+\|$/.test(l))
    .map((l) => l.slice(1, -1).split("|").map((c) => c.trim()));
}

/** The table between the markers in docs/router.md. */
async function documentedTable(): Promise<string[][]> {
  const text = await Deno.readTextFile(new URL("../../docs/router.md", import.meta.url));
  const m = /<!-- route-types:begin -->\n([\s\S]*?)\n<!-- route-types:end -->/.exec(text);
  assert.ok(m, "docs/router.md has the route-types table between its markers");
  return cells(m[1].split("\n"));
}

Deno.test("route types: exposure, DNAT from the client and the router, unserved port, loops", async () => {
  await using lab = await RouteLab.create();
  const rows: string[] = [];
  const seen = new Map<string, LabOutcome>();
  for (const c of CANDIDATES) {
    await lab.reset();
    for (const f of [4, 6] as const) await c.setup(lab, f);
    const outcomes = await lab.measure();
    for (const f of [4, 6] as const) {
      seen.set(`${c.name} ${f}`, outcomes[f]);
      rows.push(row(c.name, f, outcomes[f]));
    }
  }
  await lab.reset();
  const measured = [...HEADER, ...rows];
  console.log(measured.join("\n"));
  console.log([...seen].map(([k, o]) => `${k}: ${o.forwarded} forwarded`).join("\n"));
  // The properties route mode is chosen for, for both families.
  for (const f of [4, 6] as const) {
    const chosen = seen.get(`${CANDIDATES.at(-1)!.name} ${f}`)!;
    assert.ok(!chosen.clientSsh.startsWith("connected"), `IPv${f}: the router's port 22 is hidden`);
    assert.equal(chosen.clientService, "connected:pod", `IPv${f}: the client reaches the pod`);
    assert.equal(chosen.routerService, "connected:pod", `IPv${f}: the router reaches the pod`);
    assert.ok(chosen.forwarded <= 4, `IPv${f}: no forwarding loop`);
    const address = seen.get(`${CANDIDATES[0].name} ${f}`)!;
    assert.equal(address.clientSsh, "connected:router", `IPv${f}: address mode exposes port 22`);
  }
  assert.deepEqual(cells(measured), await documentedTable());
});
