/**
 * A seeded corpus of hostile Services for the fuzz test and the bench (issue
 * 9, "Done when"): externalIPs that are shell metacharacters, `ip -batch`
 * lines behind a newline, unicode digits and dots, zero-width characters,
 * integer, hex and octal forms, every IPv6 spelling, huge strings, non-string
 * JSON values, and Services with a missing or odd spec, spread across many
 * Services, some of which kube-proxy would not serve. Among them, canonical
 * addresses inside the managed networks, which are the only ones that may
 * ever reach the interface: the corpus says which (`expected`), by
 * construction, not by asking kube-gw's parser.
 *
 * @module
 */

import fc from "fast-check";

/** The networks the fuzzed agent manages. */
export const FUZZ_NETWORKS = ["10.0.100.0/24", "2001:db8:100::/64"] as const;
/** A canonical address the corpus never uses: a last event that says the agent caught up. */
export const SENTINEL = "10.0.100.254";

/** Options for {@linkcode fuzzCorpus}. */
export interface FuzzOptions {
  readonly seed: number;
  /** How many externalIPs values in all. */
  readonly strings: number;
  readonly services: number;
  /** A path that a value run by a shell would create. */
  readonly marker: string;
  /** The length of the longest huge strings. @default 200_000 */
  readonly hugeChars?: number;
}

/** What {@linkcode fuzzCorpus} generated. */
export interface FuzzCorpus {
  /** Service objects as the API would store them (for `seedObjects("services", ...)`). */
  readonly objects: Record<string, unknown>[];
  /** The number of externalIPs values in all. */
  readonly strings: number;
  /** Canonical in-network values of served Services: the interface must end with exactly these. */
  readonly expected: ReadonlySet<string>;
  /** Distinct (Service, value) pairs that are not expected: an upper bound on refusal lines. */
  readonly refusable: number;
}

const DIGITS: readonly string[] = [
  "０", // fullwidth
  "٠", // Arabic-Indic
  "۰", // extended Arabic-Indic
  "०", // Devanagari
  "𝟎", // mathematical bold
  "߀", // NKo
];
const DOTS = ["。", "．", "｡", "·", "\u2024", "\u00b7"];
const ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\ufeff", "\u2060", "\u202e", "\u00ad"];

function hex(n: number): string {
  return n.toString(16);
}

/** A canonical IPv4 address in 10.0.100.0/24 but the sentinel (and its neighbour). */
const v4 = fc.integer({ min: 0, max: 253 }).map((h) => ({ host: h, text: `10.0.100.${h}` }));
/** A canonical IPv6 address in 2001:db8:100::/64 (RFC 5952, as WHATWG URL prints it). */
const v6 = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 4, maxLength: 4 }).map(
  (hs) => {
    const full = `2001:db8:100:0:${hs.map(hex).join(":")}`;
    const text = new URL(`http://[${full}]/`).hostname.slice(1, -1);
    return { hs, full, text };
  },
);

/**
 * The oracle, independent of kube-gw's parser: whether `v` is the canonical
 * text of an address in a managed network. IPv4: dotted decimal without
 * leading zeros in 10.0.100.0/24. IPv6: lower-case hex and colons only, equal
 * to its WHATWG URL serialisation (RFC 5952), in 2001:db8:100::/64.
 */
export function canonicalInNetwork(v: unknown): boolean {
  if (typeof v !== "string") return false;
  const m = /^10\.0\.100\.(0|[1-9]\d{0,2})$/.exec(v);
  if (m) return Number(m[1]) <= 255;
  if (!/^[0-9a-f:]+$/.test(v)) return false;
  let host: string;
  try {
    host = new URL(`http://[${v}]/`).hostname;
  } catch {
    return false;
  }
  if (host !== `[${v}]`) return false;
  const [head, tail] = v.includes("::") ? v.split("::") : [v, undefined];
  const h = head ? head.split(":") : [];
  const t = tail === undefined ? [] : tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return groups.slice(0, 4).map((g) => parseInt(g, 16)).join() === [0x2001, 0xdb8, 0x100, 0].join();
}

/** Spellings of a valid IPv4 address; the oracle says which are canonical (none, meant). */
function v4Variants(host: number, marker: string): string[] {
  const n = (10 << 24) + (100 << 8) + host;
  const t = `10.0.100.${host}`;
  const digits = (d: string) =>
    t.replace(/[0-9]/g, (c) => String.fromCodePoint(d.codePointAt(0)! + Number(c)));
  return [
    `010.0.100.${host}`,
    `10.00.100.${host}`,
    `10.0.100.0${host}`,
    `0x0a.0.100.${host}`,
    `0xa.0x0.0x64.0x${hex(host)}`,
    `012.0.0144.${host.toString(8).padStart(4, "0")}`,
    String(n),
    `0x${hex(n)}`,
    `0${n.toString(8)}`,
    `10.${100 * 256 + host}`,
    `10.0.${100 * 256 + host}`,
    `${t}/32`,
    `${t}%lo`,
    ` ${t}`,
    `${t} `,
    `${t}\n`,
    `${t}.`,
    `+${t}`,
    `${t}\naddress add 10.0.100.255/32 dev lo`,
    `${t} dev lo\naddress flush dev lo`,
    `${t}; touch ${marker}`,
    `$(touch ${marker})`,
    `\`touch ${marker}\``,
    `${t} && touch ${marker}`,
    `${t} | touch ${marker}`,
    `${t}\u0000`,
    `::ffff:${t}`,
    `::${t}`,
    `64:ff9b::${t}`,
    ...DIGITS.map(digits),
    ...DOTS.map((d) => t.replaceAll(".", d)),
    ...ZERO_WIDTH.map((z) => `10.0.100${z}.${host}`),
    ...ZERO_WIDTH.map((z) => `${z}${t}`),
  ];
}

/** Spellings of a valid IPv6 address; the oracle says which are canonical. */
function v6Variants(a: { hs: number[]; full: string; text: string }, marker: string): string[] {
  const padded = a.full.split(":").map((h) => h.padStart(4, "0")).join(":");
  return [
    a.full === a.text ? `${a.text}:` : a.full, // uncompressed when it compresses
    padded,
    a.text.toUpperCase() === a.text ? `${a.text}::` : a.text.toUpperCase(),
    `[${a.text}]`,
    `${a.text}/128`,
    `${a.text}%lo`,
    `${a.text}%25lo`,
    `2001:0db8:0100::${hex(a.hs[3])}`,
    `2001:db8:100:0:0:0:${hex(a.hs[2])}:${hex(a.hs[3])}`,
    `2001:db8:100::${hex(a.hs[3])}:`,
    `2001:db8:100:::${hex(a.hs[3])}`,
    `2001:db8:100::${(a.hs[3] >> 8) & 255}.${a.hs[3] & 255}.0.1`,
    `2001:db8:100:0::0:${hex(a.hs[3])}`,
    `2001:db8:100:0:${a.hs.map(hex).join(":")}:0`,
    `${a.text}; touch ${marker}`,
    `${a.text}\naddress add 2001:db8:100::ffff/128 dev lo`,
    `\u200b${a.text}`,
    a.text.replaceAll(":", "\uff1a"),
  ];
}

/** Values that are not strings at all, as JSON allows. */
const NON_STRINGS: readonly unknown[] = [
  167797765,
  0x0a006405,
  -1,
  1e308,
  0.5,
  null,
  true,
  false,
  {},
  [],
  ["10.0.100.5"],
  { ip: "10.0.100.5" },
  { toString: "10.0.100.5" },
];

/** Random text of every kind fast-check makes. */
const noise = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 20 }),
  fc.string({ unit: "binary", maxLength: 30 }),
  fc.ipV4Extended(),
  fc.ipV6(),
  fc.ipV4(),
  fc.domain(),
);

/**
 * Generates the corpus, deterministically from `seed`: `strings` values across
 * `services` Services in namespace `default`, named `fuzz-N`.
 */
export function fuzzCorpus(o: FuzzOptions): FuzzCorpus {
  const huge = o.hugeChars ?? 200_000;
  const sample = <T>(arb: fc.Arbitrary<T>, n: number, salt: number) =>
    fc.sample(arb, { seed: o.seed + salt, numRuns: n });
  const values: { value: unknown; valid?: string }[] = [];
  // About half the values are valid addresses and their hostile spellings (75 per pair), the
  // rest noise; about 1 in 75 is valid.
  const v4s = sample(v4, Math.ceil(o.strings / 150), 1);
  const v6s = sample(v6, Math.ceil(o.strings / 150), 2);
  for (const a of v4s) {
    values.push({ value: a.text, valid: a.text });
    for (const v of v4Variants(a.host, o.marker)) values.push({ value: v });
  }
  for (const a of v6s) {
    values.push({ value: a.text, valid: a.text });
    for (const v of v6Variants(a, o.marker)) values.push({ value: v });
  }
  for (const v of NON_STRINGS) values.push({ value: v });
  for (let i = 0; i < 8; i++) {
    const len = Math.max(1000, Math.floor(huge / (i + 1)));
    values.push({ value: ["1", "10.0.100.", ":", "\u200b", "$(", "\n"][i % 6].repeat(len / 2) });
  }
  const rest = Math.max(0, o.strings - values.length);
  for (const v of sample(noise, rest, 3)) values.push({ value: v });
  // Shuffle, seeded, so that each Service gets a mix.
  const order = sample(fc.integer(), values.length, 4);
  const shuffled = values.map((v, i) => ({ v, k: order[i] })).sort((a, b) => a.k - b.k).map((x) =>
    x.v
  );
  const objects: Record<string, unknown>[] = [];
  const expected = new Set<string>();
  const pairs = new Set<string>();
  const per = Math.ceil(shuffled.length / o.services);
  for (let s = 0; s < o.services; s++) {
    const mine = shuffled.slice(s * per, (s + 1) * per);
    const name = `fuzz-${s}`;
    const meta = { name, namespace: "default" };
    // Most Services are served; some are of a kind kube-proxy does not serve, some odd in shape.
    const kind = s % 16;
    let spec: Record<string, unknown> | undefined;
    let served = true;
    if (kind === 13) {
      spec = {
        type: "ExternalName",
        externalName: "example.com",
        externalIPs: mine.map((m) => m.value),
      };
      served = false;
    } else if (kind === 14) {
      spec = { type: "ClusterIP", clusterIP: "None", externalIPs: mine.map((m) => m.value) };
      served = false;
    } else if (kind === 15) {
      // Odd shapes: no spec, or externalIPs that is not a list; their values count as refused.
      spec = [undefined, { externalIPs: "10.0.100.7" }, { externalIPs: { 0: "10.0.100.7" } }, {
        externalIPs: null,
      }][(s >> 4) % 4];
      served = false;
    } else {
      spec = {
        type: ["ClusterIP", "NodePort", "LoadBalancer"][s % 3],
        externalIPs: mine.map((m) => m.value),
      };
    }
    for (const m of mine) {
      // Some spellings and some noise happen to be canonical too: the oracle decides, not the
      // generator.
      const valid = canonicalInNetwork(m.value) ? m.value as string : undefined;
      if (m.valid !== undefined && m.valid !== valid) throw new Error(`oracle: ${m.valid}`);
      if (served && valid) expected.add(valid);
      else {pairs.add(
          `${name}\u0000${typeof m.value === "string" ? m.value : JSON.stringify(m.value)}`,
        );}
    }
    objects.push(spec === undefined ? { metadata: meta } : { metadata: meta, spec });
  }
  // A valid value in a served Service is never refused; the same text elsewhere may be.
  return { objects, strings: shuffled.length, expected, refusable: pairs.size };
}
