/**
 * The router configurations docs/router.md shows, as files under scripts/router/,
 * with `{{NAME}}` placeholders that the test fabric fills per router.
 *
 * @module
 */

const ROOT = new URL("../../../", import.meta.url);

/** Files under scripts/router/ that docs/router.md quotes. */
export const ROUTER_FILES = [
  "scripts/router/frr-gateway.conf",
  "scripts/router/bird-gateway.conf",
  "scripts/router/frr-gateway-route.conf",
  "scripts/router/bird-gateway-route.conf",
  "scripts/router/sysctl-gateway.conf",
  "scripts/router/nft-handoff.conf",
  "scripts/router/kube-proxy-nftables.yaml",
  "scripts/router/kube-proxy-ipvs.yaml",
] as const;

/** A placeholder that has no value, or a value that has no placeholder. */
export class TemplateError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TemplateError";
  }
}

const PLACEHOLDER = /\{\{([A-Z][A-Z0-9_]*)\}\}/g;

/** The placeholder names in `text`, in order of first use. */
export function placeholders(text: string): string[] {
  return [...new Set([...text.matchAll(PLACEHOLDER)].map((m) => m[1]))];
}

/**
 * Fills every `{{NAME}}` in `text` from `values`.
 *
 * @throws {TemplateError} when a placeholder has no value or a value is unused.
 */
export function renderTemplate(text: string, values: Readonly<Record<string, string>>): string {
  const used = placeholders(text);
  const missing = used.filter((n) => !(n in values));
  if (missing.length > 0) throw new TemplateError(`no value for {{${missing.join("}}, {{")}}}`);
  const unused = Object.keys(values).filter((n) => !used.includes(n));
  if (unused.length > 0) throw new TemplateError(`no placeholder for ${unused.join(", ")}`);
  return text.replace(PLACEHOLDER, (_, n: string) => values[n]);
}

/** Reads a file of the repository (needs read permission for it). */
export function readRepoFile(path: string): Promise<string> {
  return Deno.readTextFile(new URL(path, ROOT));
}

/** Absolute path of a repository file. */
export function repoPath(path: string): string {
  return new URL(path, ROOT).pathname;
}

/** A fenced code block of a Markdown text, with the file it claims to show. */
export interface Snippet {
  /** From `<!-- file: PATH -->`, the last non-blank line before the fence; undefined if absent. */
  readonly file?: string;
  readonly lang: string;
  readonly body: string;
  readonly line: number;
}

/**
 * The fenced code blocks of a Markdown text. A block quotes a file when the
 * last non-blank line before its fence is `<!-- file: PATH -->`.
 *
 * @throws {SyntaxError} on a code block that is never closed.
 */
export function fencedSnippets(markdown: string): Snippet[] {
  const lines = markdown.split("\n");
  const out: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^(`{3,})(\S*)\s*$/.exec(lines[i]);
    if (!fence) continue;
    let prev = i - 1;
    while (prev >= 0 && lines[prev].trim() === "") prev--;
    const marker = prev >= 0 ? /^<!-- file: (\S+) -->$/.exec(lines[prev]) : null;
    const end = lines.indexOf(fence[1], i + 1);
    if (end < 0) throw new SyntaxError(`unclosed code block at line ${i + 1}`);
    out.push({
      file: marker?.[1],
      lang: fence[2],
      body: lines.slice(i + 1, end).join("\n") + "\n",
      line: i + 1,
    });
    i = end;
  }
  return out;
}
