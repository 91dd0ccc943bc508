/**
 * Text made safe for a log line or a stored record, pure: values bounded in
 * length (so a huge hostile string costs little to keep and to print) and
 * control characters escaped (so a value cannot forge or disguise a line).
 *
 * @module
 */

/** The longest value a log line shows: 256 characters, then its length. */
export const MAX_LOG_VALUE = 256;

/**
 * Bounds a value for a log line or a stored record: at most `max` characters,
 * then `…(N chars)`. The result is a copy, so it keeps no huge string alive.
 *
 * @param max the characters kept. @default MAX_LOG_VALUE (256)
 */
export function boundText(text: string, max = MAX_LOG_VALUE): string {
  if (text.length <= max) return text;
  // slice() may share the original's memory: join a copy of the characters.
  return `${text.slice(0, max).split("").join("")}…(${text.length} chars)`;
}

/**
 * Control characters, line and paragraph separators, and the invisible
 * characters that reorder or hide text: what could forge or disguise a line.
 */
// deno-lint-ignore no-control-regex -- matching control characters is the point
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;
const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** Escapes every character that could split or disguise a text log line (`\n`, `\x1b`, `\u202e`). */
export function escapeControl(text: string): string {
  return text.replace(UNSAFE, (c) => {
    if (NAMED[c]) return NAMED[c];
    const code = c.charCodeAt(0);
    return code < 0x100
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/**
 * `text` as a JSON string literal for a one-line message, cut to `max`
 * characters and marked `…` when longer (C0 and C1 controls and bidirectional
 * overrides come out escaped).
 */
export function quoted(text: string, max: number): string {
  return escapeControl(JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text));
}
