import assert from "node:assert/strict";
import { canonicalInNetwork, fuzzCorpus } from "../../support/fakes/fuzz_corpus.ts";

Deno.test("the fuzz oracle takes canonical in-network texts only, without kube-gw's parser", () => {
  for (
    const ok of [
      "10.0.100.0",
      "10.0.100.5",
      "10.0.100.255",
      "2001:db8:100::a",
      "2001:db8:100:0:1:2:3:4",
    ]
  ) {
    assert.equal(canonicalInNetwork(ok), true, ok);
  }
  for (
    const bad of [
      "010.0.100.5",
      "10.0.100.256",
      "10.0.101.5",
      "10.0.100.5 ",
      "167797765",
      "2001:db8:100:0:0:0:0:a",
      "2001:DB8:100::a",
      "2001:db8:100::0.0.0.10",
      "2001:db8:101::a",
      "[2001:db8:100::a]",
      "2001:db8:100::a%lo",
      "10.0.100.５",
      167797765,
      null,
    ]
  ) {
    assert.equal(canonicalInNetwork(bad), false, String(bad));
  }
});

Deno.test("the fuzz corpus is the same for the same seed, with the values it promises", () => {
  const a = fuzzCorpus({ seed: 1, strings: 2000, services: 50, marker: "/tmp/m", hugeChars: 2000 });
  const b = fuzzCorpus({ seed: 1, strings: 2000, services: 50, marker: "/tmp/m", hugeChars: 2000 });
  assert.deepEqual(a, b);
  assert.equal(a.strings, 2000);
  assert.equal(a.objects.length, 50);
  assert.ok(a.expected.size > 0);
  const text = JSON.stringify(a.objects);
  for (const kind of ["touch /tmp/m", "\\n", "\u200b", "０", "0x", "ExternalName", "2001:0db8"]) {
    assert.ok(text.includes(kind), kind);
  }
});
