/**
 * scripts/install.sh as an operator runs it, against a throwaway router
 * (`TestRouter`, sshd.ts), and the digests the install tests compare files by.
 *
 * @module
 */

import type { TestRouter } from "./sshd.ts";

/** The repository's root, with a trailing slash. */
export const ROOT = new URL("../../../", import.meta.url).pathname;
const decoder = new TextDecoder();

/** Runs scripts/install.sh with argv, as an operator would; returns its output. */
export async function runInstaller(router: TestRouter, ...args: string[]) {
  const out = await new Deno.Command(`${ROOT}scripts/install.sh`, {
    args: ["--ssh-config", router.sshConfig, ...args, "router"],
    stdin: "null",
  }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** {@linkcode runInstaller}, failing the test unless it exits 0. */
export async function install(router: TestRouter, ...args: string[]) {
  const r = await runInstaller(router, ...args);
  if (r.code !== 0) throw new Error(`install.sh exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** The first 12 hex digits of a file's SHA-256. */
export async function sha(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("")
    .slice(0, 12);
}
