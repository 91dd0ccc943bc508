/**
 * The house rules, read from the code itself: the import graph of `lib/` and
 * `main.ts` has no circle; each folder imports only the folders it may; the
 * pure core imports no adapter, directly or through another file; no file of
 * `lib/` is over 450 lines; and docs/architecture.md names every file of
 * `lib/` with its kind. A failure names the file and the import.
 *
 * @module
 */

import assert from "node:assert/strict";

/** What a file is, as docs/architecture.md declares it. */
type Kind = "pure" | "core" | "port" | "adapter" | "wiring";

/** The folders of lib/ and which others each may import (besides itself). */
const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  base: [],
  kube: ["base"],
  kernel: ["base"],
  http: ["base"],
  service: ["base"],
  agent: ["base", "kube", "kernel", "http", "service"],
  controller: ["base", "kube", "kernel", "http", "service"],
};

/**
 * What the pure core may import, by kind: pure files only pure files and
 * ports; core files (logic that drives ports, logs and reads an injected
 * clock) also other core files. Never an adapter or the wiring.
 */
const MAY_DEPEND_ON: Readonly<Record<Kind, readonly Kind[]>> = {
  pure: ["pure", "port"],
  port: ["pure", "port"],
  core: ["pure", "port", "core"],
  adapter: ["pure", "port", "core", "adapter"],
  wiring: ["pure", "port", "core", "adapter", "wiring"],
};

/** Signs that a file reaches the world itself: only adapters and the wiring may. */
const IO_SIGNS: readonly RegExp[] = [
  /\bDeno\.[a-zA-Z]/,
  /\bfetch\(/,
  /\bglobalThis\.set(Timeout|Interval)\b/,
  /from "node:(?!assert)/,
  /from "prom-client"/,
  /from "commander"/,
];
/** Logging is a side effect the core may have; pure files and ports have none. */
const LOG_SIGN = /from "@logtape\/logtape"/;

const MAX_LINES = 450;

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...await sourceFiles(path));
    else if (e.name.endsWith(".ts")) out.push(path);
  }
  return out.sort();
}

/** `a/b/../c.ts` → `a/c.ts`. */
function normalize(path: string): string {
  const parts: string[] = [];
  for (const p of path.split("/")) {
    if (p === "..") parts.pop();
    else if (p !== "." && p !== "") parts.push(p);
  }
  return parts.join("/");
}

/** One import of a file, resolved from the repo root. */
interface Import {
  readonly target: string;
  /** `import type` / `export type`: no code runs, so it does not make a file impure. */
  readonly typeOnly: boolean;
}

/** The relative imports of a file (static, re-exports and dynamic), resolved from the repo root. */
export function importsOf(file: string, text: string): Import[] {
  const dir = file.split("/").slice(0, -1).join("/");
  const found = [
    ...[...text.matchAll(/^\s*(?:import|export)\b([^;]*?)\bfrom\s*"(\.{1,2}\/[^"]+)"/gms)]
      .map((m) => ({ spec: m[2], typeOnly: /^\s*type\b/.test(m[1]) })),
    ...[...text.matchAll(/^\s*import\s*"(\.{1,2}\/[^"]+)"/gm)]
      .map((m) => ({ spec: m[1], typeOnly: false })),
    ...[...text.matchAll(/\bimport\(\s*"(\.{1,2}\/[^"]+)"\s*\)/g)]
      .map((m) => ({ spec: m[1], typeOnly: false })),
  ];
  const out = new Map<string, Import>();
  for (const { spec, typeOnly } of found) {
    const target = normalize(`${dir}/${spec}`);
    const seen = out.get(target);
    out.set(target, { target, typeOnly: typeOnly && (seen?.typeOnly ?? true) });
  }
  return [...out.values()];
}

/** `lib/agent/x.ts` → `agent`; `lib/controller/leader/x.ts` → `controller`; lib's own files and main.ts → undefined. */
function folderOf(file: string): string | undefined {
  const parts = file.split("/");
  return parts[0] === "lib" && parts.length > 2 ? parts[1] : undefined;
}

/** The circles of a graph: its strongly connected components with more than one file (or a self-import). */
export function circles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let index = 0;
  const stack: string[] = [];
  const on = new Set<string>();
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

/** The kind of every file docs/architecture.md lists: lines like "- `lib/base/ip.ts` (pure): …". */
export function declaredKinds(doc: string): Map<string, Kind> {
  const kinds = new Map<string, Kind>();
  for (const m of doc.matchAll(/^- `(lib\/[^`]+\.ts)` \((pure|core|port|adapter|wiring)\)/gm)) {
    kinds.set(m[1], m[2] as Kind);
  }
  return kinds;
}

const files = [...await sourceFiles("lib"), "main.ts"];
const texts = new Map(
  await Promise.all(files.map(async (f) => [f, await Deno.readTextFile(f)] as const)),
);
const imports = new Map(files.map((f) => [f, importsOf(f, texts.get(f)!)]));
/** Every import, type-only ones included: a circle of types is a circle of meaning. */
const graph = new Map([...imports].map(([f, list]) => [f, list.map((i) => i.target)]));
/** The imports that run code: what purity is judged on. */
const runtime = new Map(
  [...imports].map(([f, list]) => [f, list.filter((i) => !i.typeOnly).map((i) => i.target)]),
);
const kinds = declaredKinds(await Deno.readTextFile("docs/architecture.md"));

Deno.test("the import graph of lib/ and main.ts has no circle", () => {
  const found = circles(graph);
  assert.deepEqual(found, [], `import circles: ${found.map((c) => c.join(" → ")).join("; ")}`);
});

Deno.test("each folder of lib/ imports only the folders it may; agent/ and controller/ never each other", () => {
  const forbidden: string[] = [];
  for (const [file, targets] of graph) {
    const from = folderOf(file);
    if (from === undefined) continue; // lib/cli.ts and main.ts wire everything
    for (const target of targets) {
      if (!target.startsWith("lib/")) {
        forbidden.push(`${file} → ${target} (lib imports nothing outside lib/)`);
        continue;
      }
      const to = folderOf(target);
      if (to === from) continue;
      if (to === undefined || !MAY_IMPORT[from]?.includes(to)) {
        forbidden.push(
          `${file} → ${target} (${from}/ may import ${
            MAY_IMPORT[from]?.join(", ") || "nothing else"
          })`,
        );
      }
    }
  }
  assert.deepEqual(forbidden, []);
});

Deno.test("docs/architecture.md lists every file of lib/, each once with its kind, and no file that is gone", () => {
  const libFiles = files.filter((f) => f.startsWith("lib/"));
  assert.deepEqual(
    libFiles.filter((f) => !kinds.has(f)),
    [],
    "files missing from docs/architecture.md",
  );
  assert.deepEqual(
    [...kinds.keys()].filter((f) => !texts.has(f)),
    [],
    "files the doc lists that do not exist",
  );
});

Deno.test("the pure core imports no adapter, directly or through another file, and does no I/O itself", () => {
  const problems: string[] = [];
  const kindOf = (f: string): Kind => f === "main.ts" ? "wiring" : kinds.get(f) ?? "wiring";
  for (const file of graph.keys()) {
    const kind = kindOf(file);
    const text = texts.get(file)!;
    if (kind !== "adapter" && kind !== "wiring") {
      for (const sign of IO_SIGNS) {
        if (sign.test(text)) problems.push(`${file} (${kind}) does I/O: ${sign}`);
      }
      if ((kind === "pure" || kind === "port") && LOG_SIGN.test(text)) {
        problems.push(`${file} (${kind}) logs`);
      }
    }
    // Every file whose code runs when this one's does, with the path that reaches it.
    const seen = new Map<string, string[]>([[file, [file]]]);
    const queue = [file];
    while (queue.length > 0) {
      const at = queue.shift()!;
      for (const next of runtime.get(at) ?? []) {
        if (seen.has(next) || !graph.has(next)) continue;
        const path = [...seen.get(at)!, next];
        seen.set(next, path);
        queue.push(next);
        if (!MAY_DEPEND_ON[kind].includes(kindOf(next))) {
          problems.push(`${file} (${kind}) reaches ${next} (${kindOf(next)}): ${path.join(" → ")}`);
        }
      }
    }
  }
  assert.deepEqual(problems, []);
});

Deno.test(`no file of lib/ is over ${MAX_LINES} lines`, () => {
  const long = files.filter((f) => f.startsWith("lib/"))
    .map((f) => ({ f, n: texts.get(f)!.split("\n").length - 1 }))
    .filter(({ n }) => n > MAX_LINES)
    .map(({ f, n }) => `${f}: ${n} lines`);
  assert.deepEqual(long, []);
});

Deno.test("the checker itself finds a circle, a forbidden edge's target and a declared kind", () => {
  assert.deepEqual(
    circles(new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["a"]]])),
    [["a", "b", "c"]],
  );
  assert.deepEqual(
    importsOf(
      "lib/agent/x.ts",
      'import { a } from "../base/ip.ts";\nexport type {\n  b,\n} from "./y.ts";\nawait import("../kube/z.ts");\n',
    ),
    [
      { target: "lib/base/ip.ts", typeOnly: false },
      { target: "lib/agent/y.ts", typeOnly: true },
      { target: "lib/kube/z.ts", typeOnly: false },
    ],
  );
  assert.deepEqual(
    [...declaredKinds("- `lib/base/ip.ts` (pure): IP parsing\n- `lib/x.ts` wrong\n")],
    [["lib/base/ip.ts", "pure"]],
  );
});
