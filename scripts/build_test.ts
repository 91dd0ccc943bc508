import assert from "node:assert/strict";
import { BuildError, injectCommit } from "./build.ts";

Deno.test("the build writes the commit in place of the one COMMIT literal", () => {
  const bundled = 'var VERSION = "0.1.0";\nvar COMMIT = "source";\nconsole.log(COMMIT);\n';
  assert.deepEqual(
    injectCommit(bundled, "0123456789ab-dirty"),
    'var VERSION = "0.1.0";\nvar COMMIT = "0123456789ab-dirty";\nconsole.log(COMMIT);\n',
  );
  // esbuild renames on a clash; the renamed binding is found too.
  assert.deepEqual(injectCommit('var COMMIT2 = "source";', "abc"), 'var COMMIT2 = "abc";');
});

Deno.test("the build refuses a bundle without exactly one COMMIT literal, and odd commit text", () => {
  assert.throws(() => injectCommit("var X = 1;", "abc"), BuildError);
  assert.throws(
    () => injectCommit('var COMMIT = "source";\nvar COMMIT2 = "source";', "abc"),
    BuildError,
  );
  assert.throws(() => injectCommit('var COMMIT = "source";', 'x";alert(1);"'), BuildError);
});
