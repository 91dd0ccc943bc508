import assert from "node:assert/strict";
import { quoted } from "../../../lib/base/text.ts";

Deno.test("quoted: a JSON string literal, cut to max characters and marked when longer", () => {
  assert.equal(quoted("pool-a", 64), '"pool-a"');
  assert.equal(quoted("abcdef", 3), '"abc…"');
  assert.equal(quoted("abc", 3), '"abc"');
  assert.equal(quoted('a"b\nc', 64), '"a\\"b\\nc"');
});

Deno.test("quoted: C1 controls and bidirectional overrides come out escaped too", () => {
  assert.equal(quoted("a\u009bb\u202ec", 64), '"a\\x9bb\\u202ec"');
});
