import assert from "node:assert/strict";
import fc from "fast-check";
import {
  FLAG_POOL_NAME,
  flagPool,
  mergePools,
  parsePoolsYaml,
  type Pool,
  PoolConfigError,
} from "../../../lib/controller/pools.ts";

function texts(pools: Pool[]) {
  return pools.map((p) => ({ ...p, cidrs: p.cidrs.map((c) => c.text) }));
}

function refuses(text: string, message: RegExp): void {
  assert.throws(() => parsePoolsYaml(text), (err: unknown) => {
    assert.ok(err instanceof PoolConfigError, String(err));
    assert.doesNotMatch(err.message, /\n/, "one line");
    assert.match(err.message, message);
    return true;
  });
}

Deno.test("pools.yaml: the issue's example parses, with defaults filled in", () => {
  const pools = parsePoolsYaml(`
pools:
  - name: public
    cidrs: [198.51.100.0/24, 2001:db8:100::/120]
    namespaces: [web, shop]   # omitted: every namespace may use the pool
    autoAssign: true
  - name: internal
    cidrs:
      - 10.20.0.0/16
`);
  assert.deepEqual(texts(pools), [
    {
      name: "public",
      cidrs: ["198.51.100.0/24", "2001:db8:100::/120"],
      namespaces: ["web", "shop"],
      autoAssign: true,
    },
    { name: "internal", cidrs: ["10.20.0.0/16"], namespaces: undefined, autoAssign: true },
  ]);
});

Deno.test("pools.yaml: an empty document or an empty list is no pools", () => {
  assert.deepEqual(parsePoolsYaml(""), []);
  assert.deepEqual(parsePoolsYaml("pools: []"), []);
});

Deno.test("pools.yaml: each invalid field is named with its pool in one line", () => {
  refuses(
    "pools:\n  - name: a\n    cidrs: [10.0.0.1/24]",
    /pool "a" \(pools\[0\]\) field cidrs\[0\]: "10.0.0.1\/24" is not a CIDR: host bits are set \(did you mean "10.0.0.0\/24"\?\)/,
  );
  refuses(
    "pools:\n  - name: a\n    cidrs: [010.0.0.0/24]",
    /field cidrs\[0\]: .*not a canonical IP address/,
  );
  refuses("pools:\n  - name: a\n    cidrs: [2001:DB8::/64]", /field cidrs\[0\]/);
  refuses(
    "pools:\n  - name: a\n    cidrs: []",
    /pool "a" \(pools\[0\]\) field cidrs: must be a non-empty list/,
  );
  refuses(
    "pools:\n  - name: a\n    cidrs: [10.0.0.0/8]",
    /field cidrs\[0\]: "10.0.0.0\/8" is too large \(at most \/16 for IPv4\)/,
  );
  refuses("pools:\n  - name: a\n    cidrs: [2001:db8::/32]", /too large \(at most \/48 for IPv6\)/);
  refuses(
    "pools:\n  - name: a\n    cidrs: [127.0.0.0/24]",
    /field cidrs\[0\]: "127.0.0.0\/24" overlaps the loopback range/,
  );
  refuses("pools:\n  - name: a\n    cidrs: [169.254.0.0/16]", /link-local range/);
  refuses("pools:\n  - name: a\n    cidrs: [255.255.255.0/24]", /broadcast range/);
  refuses("pools:\n  - name: a\n    cidrs: [239.1.0.0/16]", /multicast range/);
  refuses("pools:\n  - name: a\n    cidrs: [fe80::/64]", /link-local range/);
  refuses('pools:\n  - name: a\n    cidrs: ["::/64"]', /unspecified range/);
  refuses(
    "pools:\n  - name: a\n    cidrs: [10.0.0.0/24]\n    namespaces: [Web]",
    /pool "a" \(pools\[0\]\) field namespaces\[0\]: "Web" is not a namespace name/,
  );
  refuses(
    "pools:\n  - name: a\n    cidrs: [10.0.0.0/24]\n    namespaces: web",
    /field namespaces: must be a list/,
  );
  refuses(
    'pools:\n  - name: a\n    cidrs: [10.0.0.0/24]\n    autoAssign: "yes"',
    /field autoAssign: "yes" is not true or false/,
  );
  refuses(
    "pools:\n  - name: a\n    cidrs: [10.0.0.0/24]\n    autoassign: false",
    /pool "a" \(pools\[0\]\) field "autoassign": unknown field/,
  );
  refuses(
    "pools:\n  - name: Bad_Name\n    cidrs: [10.0.0.0/24]",
    /pools\[0\] field name: "Bad_Name" is not a pool name/,
  );
  refuses("pools:\n  - cidrs: [10.0.0.0/24]", /pools\[0\] field name: undefined/);
  refuses(
    "pools:\n  - name: a\n    cidrs: [10.0.0.0/24]\n  - name: a\n    cidrs: [10.0.1.0/24]",
    /pool "a" field name: the name is used twice/,
  );
  refuses(
    "pools:\n  - name: a\n    cidrs: [10.0.0.0/24]\n  - name: b\n    cidrs: [10.0.0.128/25]",
    /pool "b" field cidrs: 10.0.0.128\/25 overlaps 10.0.0.0\/24 of pool "a"/,
  );
  refuses(
    "pools:\n  - name: a\n    cidrs: [10.0.0.0/24, 10.0.0.0/24]",
    /pool "a" field cidrs: 10.0.0.0\/24 overlaps 10.0.0.0\/24 of pool "a"/,
  );
  refuses("pool:\n  - name: a", /field "pool": unknown field \(known: pools\)/);
  refuses("pools: {}", /field pools: must be a list/);
  refuses("- 1", /the document must be a mapping/);
});

Deno.test("pools.yaml: a YAML syntax error gives only its line and column", () => {
  refuses(
    "pools:\n  - name: a\n    cidrs: [10.0.0.0/24\n",
    /^pools.yaml: not valid YAML at line \d+, column \d+: /,
  );
  // No YAML tags beyond JSON's: no executable or custom types.
  refuses("pools: !!js/function 'function(){}'", /not valid YAML at line 1/);
});

Deno.test("pools.yaml: long hostile values are cut in the message", () => {
  const long = "x".repeat(5000);
  assert.throws(
    () => parsePoolsYaml(`pools:\n  - name: a\n    cidrs: ["${long}"]`),
    (err: Error) => {
      assert.ok(err.message.length < 300, `${err.message.length}`);
      return true;
    },
  );
});

Deno.test("pools.yaml: anchors and aliases are refused, however small the text that uses them", () => {
  // Nine levels of nine aliases: 9^9 strings when expanded, 300 bytes as text.
  let text = 'a0: &a0 ["xxxxxxxxxx"]\n';
  for (let i = 1; i <= 9; i++) {
    text += `a${i}: &a${i} [${Array(9).fill(`*a${i - 1}`).join(", ")}]\n`;
  }
  assert.throws(
    () => parsePoolsYaml(`${text}pools: [{ name: p, cidrs: *a9 }]\n`),
    /^PoolConfigError: pools.yaml: anchors and aliases \(&name, \*name\) are not allowed$/,
  );
  // One alias to a mapping is refused too: nothing in a pools file needs one.
  assert.throws(
    () => parsePoolsYaml("base: &b { name: p, cidrs: [10.0.0.0/24] }\npools: [*b]\n"),
    /anchors and aliases/,
  );
});

Deno.test("pools.yaml: a list or mapping where a string belongs is shown by its size, not serialized", () => {
  const big = `[${Array(50_000).fill('"10.0.0.0/24"').join(",")}]`;
  assert.throws(
    () => parsePoolsYaml(`pools:\n  - name: a\n    cidrs: [${big}]\n`),
    /^PoolConfigError: pools.yaml: pool "a" \(pools\[0\]\) field cidrs\[0\]: a list of 50000 entries is not a string$/,
  );
});

Deno.test("pools.yaml: a document nested too deeply is refused with one line", () => {
  const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
  assert.throws(() => parsePoolsYaml(`pools: ${deep}`), /^PoolConfigError: pools.yaml: /);
});

Deno.test("--pool flags make one pool open to every namespace, named default", () => {
  assert.equal(flagPool([]), undefined);
  const p = flagPool(["10.0.0.0/24,2001:db8::/120", " 10.0.1.0/24 "])!;
  assert.deepEqual(texts([p]), [{
    name: FLAG_POOL_NAME,
    cidrs: ["10.0.0.0/24", "2001:db8::/120", "10.0.1.0/24"],
    autoAssign: true,
  }]);
  assert.equal(p.namespaces, undefined);
  assert.throws(
    () => flagPool(["10.0.0.1/24"]),
    /^PoolConfigError: --pool: "10.0.0.1\/24" is not a CIDR/,
  );
  assert.throws(
    () => flagPool(["10.0.0.0/24", "10.0.0.0/25"]),
    /^PoolConfigError: --pool: pool "default" field cidrs: 10.0.0.0\/25 overlaps 10.0.0.0\/24/,
  );
});

Deno.test("the ConfigMap's pools come first, then the flag pool; they may not overlap or share a name", () => {
  const fromFlags = flagPool(["10.0.0.0/24"]);
  const fromConfig = parsePoolsYaml("pools:\n  - name: p\n    cidrs: [10.0.1.0/24]");
  assert.deepEqual(mergePools(fromFlags, fromConfig).map((p) => p.name), ["p", "default"]);
  assert.throws(
    () =>
      mergePools(fromFlags, parsePoolsYaml("pools:\n  - name: default\n    cidrs: [10.0.1.0/24]")),
    /pools.yaml: pool "default" \(pools\[0\]\) field name: "default" is the pool of the --pool flags/,
  );
  assert.throws(
    () => mergePools(fromFlags, parsePoolsYaml("pools:\n  - name: p\n    cidrs: [10.0.0.0/16]")),
    /overlaps/,
  );
});

Deno.test("property: pools are accepted exactly when no two of their blocks overlap", () => {
  const block = fc.record({
    third: fc.integer({ min: 0, max: 7 }),
    prefix: fc.constantFrom(22, 23, 24),
  })
    .map(({ third, prefix }) => {
      const size = 2 ** (24 - prefix);
      return `10.0.${third - (third % size)}.0/${prefix}`;
    });
  fc.assert(
    fc.property(
      fc.array(fc.array(block, { minLength: 1, maxLength: 3 }), { maxLength: 4 }),
      (pools) => {
        const text = `pools:\n${
          pools.map((cidrs, i) => `  - name: p${i}\n    cidrs: [${cidrs.join(", ")}]\n`).join("")
        }`;
        const ranges = pools.flat().map((c) => {
          const [a, p] = c.split("/");
          const start = Number(a.split(".")[2]);
          return [start, start + 2 ** (24 - Number(p)) - 1];
        });
        const overlap = ranges.some(([s1, e1], i) =>
          ranges.some(([s2, e2], j) => i < j && s1 <= e2 && s2 <= e1)
        );
        let accepted = true;
        try {
          parsePoolsYaml(text);
        } catch (err) {
          assert.ok(err instanceof PoolConfigError);
          assert.match(err.message, /overlaps/);
          accepted = false;
        }
        assert.equal(accepted, !overlap);
      },
    ),
  );
});

Deno.test("pools.yaml: a list of 170,000 entries under 1 MiB is refused by count, not a stack overflow", () => {
  refuses(
    `pools:\n${"  - 1\n".repeat(170_000)}`,
    /^pools\.yaml: field pools: more than 256 pools$/,
  );
  refuses(`pools: []\nx: [${"1,".repeat(300_000)}1]\n`, /field "x": unknown field/);
});
