import assert from "node:assert/strict";
import { countJunit } from "./test.ts";

Deno.test("the test runner counts top-level tests, not steps, and never counts a skip as a pass", () => {
  const xml = `<testsuites><testsuite name="./a_test.ts">
    <testcase name="passes" classname="./a_test.ts">
    </testcase>
    <testcase name="fails" classname="./a_test.ts">
      <failure message="boom">Error: boom</failure>
    </testcase>
    <testcase name="ignored" classname="./a_test.ts">
      <skipped/>
    </testcase>
    <testcase name="a &gt; b" classname="./a_test.ts">
    </testcase>
    <testcase name="a &gt; b &gt; s1" classname="./a_test.ts">
      <failure message="step">x</failure>
    </testcase>
  </testsuite></testsuites>`;
  assert.deepEqual(countJunit(xml), { passed: 2, failed: ["fails"], skipped: ["ignored"] });
  assert.deepEqual(countJunit(""), { passed: 0, failed: [], skipped: [] });
});
