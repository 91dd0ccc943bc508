/**
 * What operators and CI read in the README stays true: the flags table names
 * every flag with the environment variable the agent reads for it, and the test
 * command is the one CI runs.
 */
import assert from "node:assert/strict";
import readme from "../../README.md" with { type: "text" };
import { FLAG_ENV } from "../../lib/cli.ts";

/** The rows of the README's `## Flags` table: flag name (without `--`) and environment variable. */
function flagRows(markdown: string): Map<string, string> {
  const lines = markdown.split("\n");
  const start = lines.indexOf("## Flags");
  assert(start >= 0, "the README has no ## Flags section");
  const rows = new Map<string, string>();
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith("## ")) break;
    const m = /^\| `--([a-z-]+)[^`]*`[^|]*\| `([A-Z0-9_]+)[^`]*` *\|/.exec(line);
    if (m) rows.set(m[1], m[2]);
  }
  return rows;
}

const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

Deno.test("the README's flags table has every flag with its environment variable, and no other", () => {
  const expected = new Map(Object.entries(FLAG_ENV).map(([key, env]) => [kebab(key), env]));
  assert.deepEqual(flagRows(readme), expected);
});

Deno.test("flagRows reads flag and variable from a table row, and only in ## Flags", () => {
  const md = [
    "## Flags",
    "| flag | environment | default |",
    "| `--in-cluster` (API) | `KUBEGW_IN_K8S=1` | off |",
    "| `--network CIDR` | `KUBEGW_NETWORK` | (required) |",
    "## Other",
    "| `--later X` | `LATER` | x |",
  ].join("\n");
  assert.deepEqual(
    flagRows(md),
    new Map([["in-cluster", "KUBEGW_IN_K8S"], ["network", "KUBEGW_NETWORK"]]),
  );
});

Deno.test("the README shows the test command CI runs, as a command of its own", () => {
  assert(readme.includes("\n```sh\ndeno task test\n```\n"), "no ```sh block with `deno task test`");
});
