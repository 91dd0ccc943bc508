import assert from "node:assert/strict";
import fc from "fast-check";
import {
  classifyResponse,
  initialHealth,
  parseKubeProxyHealth,
  type PollOutcome,
  stepHealth,
} from "../../../lib/agent/kube_proxy_health.ts";
import { UsageError } from "../../../lib/base/flags.ts";

const OK: PollOutcome = { kind: "ok", nodeEligible: true };
const S503: PollOutcome = { kind: "unhealthy", status: 503, nodeEligible: true };
const REFUSED: PollOutcome = { kind: "refused" };
const TIMEOUT: PollOutcome = { kind: "timeout" };

function run(startedWithAddresses: boolean, outcomes: PollOutcome[]) {
  return outcomes.reduce(stepHealth, initialHealth({ startedWithAddresses }));
}

Deno.test("kube-proxy's answers are classified by status, and nodeEligible: false is read from the body", () => {
  assert.deepEqual(classifyResponse(200, '{"lastUpdated":"x","nodeEligible":true}'), OK);
  assert.deepEqual(classifyResponse(200, '{"nodeEligible":false}'), {
    kind: "ok",
    nodeEligible: false,
  });
  assert.deepEqual(classifyResponse(503, '{"nodeEligible":false}'), {
    kind: "unhealthy",
    status: 503,
    nodeEligible: false,
  });
  assert.deepEqual(classifyResponse(503, "not json"), S503);
  assert.deepEqual(classifyResponse(200, '{"nodeEligible":"false"}'), OK);
  assert.deepEqual(classifyResponse(200, "[false]"), OK);
  assert.deepEqual(classifyResponse(404, ""), {
    kind: "unhealthy",
    status: 404,
    nodeEligible: true,
  });
});

Deno.test("after a boot the gate stays closed until kube-proxy answers 200 once", () => {
  let s = initialHealth({ startedWithAddresses: false });
  assert.equal(s.open, false);
  for (const o of [REFUSED, TIMEOUT, S503, S503, S503, REFUSED]) {
    s = stepHealth(s, o);
    assert.equal(s.open, false);
    assert.match(s.reason, /waiting for kube-proxy/);
  }
  s = stepHealth(s, OK);
  assert.equal(s.open, true);
  assert.equal(s.unknown, false);
});

Deno.test("after kube-proxy was healthy, three failed polls in a row close the gate and a 200 reopens it", () => {
  let s = run(false, [OK, S503, REFUSED]);
  assert.equal(s.open, true);
  s = stepHealth(s, TIMEOUT);
  assert.equal(s.open, false);
  assert.match(s.reason, /3 failed polls in a row.*did not answer/);
  s = stepHealth(s, OK);
  assert.equal(s.open, true);
  assert.equal(run(false, [OK, S503, S503, OK, S503, S503]).open, true);
});

Deno.test("nodeEligible: false closes the gate at once", () => {
  const s = run(false, [OK, { kind: "ok", nodeEligible: false }]);
  assert.equal(s.open, false);
  assert.match(s.reason, /nodeEligible: false/);
  assert.equal(stepHealth(s, S503).open, false);
  assert.equal(stepHealth(s, OK).open, true);
  assert.equal(run(true, [{ kind: "unhealthy", status: 503, nodeEligible: false }]).open, false);
});

Deno.test("started with addresses and no answer: the gate stays open, flagged unknown", () => {
  let s = initialHealth({ startedWithAddresses: true });
  assert.deepEqual([s.open, s.unknown], [true, true]);
  for (let i = 0; i < 10; i++) s = stepHealth(s, i % 2 ? REFUSED : TIMEOUT);
  assert.deepEqual([s.open, s.unknown], [true, true]);
  assert.match(s.reason, /health unknown/);
  s = stepHealth(s, OK);
  assert.deepEqual([s.open, s.unknown], [true, false]);
});

Deno.test("health checking off keeps the gate open whatever the polls say", () => {
  const s = [S503, S503, S503, { kind: "ok", nodeEligible: false } as const].reduce(
    stepHealth,
    initialHealth({ startedWithAddresses: false, enabled: false }),
  );
  assert.deepEqual([s.open, s.unknown, s.phase], [true, false, "off"]);
});

/** The rules of the issue, read straight off a sequence of outcomes. */
function oracle(startedWithAddresses: boolean, seq: PollOutcome[]) {
  const answered = (o: PollOutcome) => o.kind === "ok" || o.kind === "unhealthy";
  const lastOk = seq.findLastIndex((o) => o.kind === "ok" && o.nodeEligible);
  const tail = seq.slice(lastOk + 1);
  if (tail.some((o) => answered(o) && !(o as { nodeEligible: boolean }).nodeEligible)) {
    return { open: false, unknown: false };
  }
  if (lastOk >= 0) {
    // Healthy once: three failures in a row since the last 200 close it.
    return { open: tail.length < 3, unknown: false };
  }
  if (!startedWithAddresses) return { open: false, unknown: false };
  // Never healthy, started serving: only three 503s in a row close it.
  let run = 0;
  for (let i = 0; i < tail.length; i++) {
    run = tail[i].kind === "unhealthy" ? run + 1 : 0;
    if (run >= 3) return { open: false, unknown: false };
  }
  return { open: true, unknown: true };
}

const arbOutcome: fc.Arbitrary<PollOutcome> = fc.oneof(
  fc.constant(OK),
  fc.constant(S503),
  fc.constant(REFUSED),
  fc.constant(TIMEOUT),
  fc.constant({ kind: "ok", nodeEligible: false } as const),
  fc.constant({ kind: "unhealthy", status: 503, nodeEligible: false } as const),
);

Deno.test("over any sequence of polls, the gate is open exactly as the rules say", () => {
  fc.assert(
    fc.property(fc.boolean(), fc.array(arbOutcome, { maxLength: 30 }), (start, seq) => {
      let s = initialHealth({ startedWithAddresses: start });
      for (let i = 0; i <= seq.length; i++) {
        const want = oracle(start, seq.slice(0, i));
        assert.deepEqual(
          { open: s.open, unknown: s.unknown },
          want,
          JSON.stringify(seq.slice(0, i)),
        );
        if (i < seq.length) s = stepHealth(s, seq[i]);
      }
    }),
    { numRuns: 500 },
  );
});

Deno.test("--kube-proxy-health takes an http(s) URL or off, and names the flag when it refuses", () => {
  assert.equal(parseKubeProxyHealth(undefined), "http://127.0.0.1:10256/healthz");
  assert.equal(parseKubeProxyHealth(" off "), undefined);
  assert.equal(
    parseKubeProxyHealth("https://10.1.2.3:10256/healthz"),
    "https://10.1.2.3:10256/healthz",
  );
  assert.equal(parseKubeProxyHealth("http://[::1]:10256/healthz"), "http://[::1]:10256/healthz");
  for (
    const bad of ["ftp://x/", "127.0.0.1:10256", "http://u:secret@h/", "http://h/\nx", "", "on"]
  ) {
    assert.throws(() => parseKubeProxyHealth(bad), (e: Error) => {
      assert.ok(e instanceof UsageError);
      assert.match(e.message, /^--kube-proxy-health: /);
      assert.equal(e.message.includes("\n"), false);
      assert.equal(e.message.includes("secret"), false);
      return true;
    });
  }
});
