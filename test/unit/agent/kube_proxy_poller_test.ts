import assert from "node:assert/strict";
import { type KubeProxyPhase, quietObserver } from "../../../lib/agent/observer.ts";
import type { HealthState } from "../../../lib/agent/kube_proxy_health.ts";
import { MAX_HEALTH_BODY } from "../../../lib/agent/kube_proxy_health.ts";
import { type FetchFn, KubeProxyHealthPoller } from "../../../lib/agent/kube_proxy_poller.ts";
import { FakeClock } from "../../support/fakes/clock.ts";
import { withLogs } from "../../support/fakes/log_capture.ts";

/** One scripted answer: a status and body, a refused connection, or no answer at all. */
type Answer = { status: number; body?: string } | "refused" | "hang";

const OK: Answer = { status: 200, body: '{"lastUpdated":"2026-11-29T19:00:00Z"}' };
const S503: Answer = { status: 503, body: '{"lastUpdated":"2026-11-29T18:00:00Z"}' };
const INELIGIBLE: Answer = { status: 503, body: '{"nodeEligible":false}' };

/** A fetch that answers from a script (the last answer repeats) and records each request. */
function scripted(answers: Answer[]) {
  const requests: { at: number; aborted: () => boolean; abortedAt?: number }[] = [];
  let clock: FakeClock;
  const fetch: FetchFn = (_url, init) => {
    const answer = answers.length > 1 ? answers.shift()! : answers[0];
    const req: (typeof requests)[number] = {
      at: clock.now(),
      aborted: () => init.signal?.aborted ?? false,
    };
    requests.push(req);
    init.signal?.addEventListener("abort", () => req.abortedAt = clock.now());
    if (answer === "refused") return Promise.reject(new TypeError("Connection refused"));
    if (answer === "hang") {
      return new Promise((_, reject) =>
        init.signal?.addEventListener("abort", () => reject(init.signal!.reason))
      );
    }
    return Promise.resolve(new Response(answer.body ?? "", { status: answer.status }));
  };
  return { fetch, requests, setClock: (c: FakeClock) => clock = c };
}

function harness(startedWithAddresses: boolean, answers: Answer[], fetchFn?: FetchFn) {
  const clock = new FakeClock();
  const script = scripted(answers);
  script.setClock(clock);
  const changes: HealthState[] = [];
  const phases: KubeProxyPhase[] = [];
  const poller = new KubeProxyHealthPoller({
    url: "http://127.0.0.1:10256/healthz",
    clock,
    startedWithAddresses,
    onChange: (s) => changes.push(s),
    fetch: fetchFn ?? script.fetch,
    observer: { ...quietObserver, kubeProxyHealth: (p) => phases.push(p) },
  });
  const ac = new AbortController();
  const running = poller.run(ac.signal);
  const stop = async () => {
    ac.abort();
    await running;
    assert.equal(clock.pending, 0, "no timer left after the abort");
  };
  const polls = (n: number) => clock.runUntil(`${n} polls`, () => poller.polls >= n);
  return { clock, poller, changes, phases, requests: script.requests, stop, polls };
}

Deno.test("after a boot the gate stays closed until kube-proxy answers 200 once", async () => {
  const h = harness(false, ["refused", S503, "refused", OK]);
  assert.equal(h.poller.state.open, false);
  await h.polls(3);
  assert.equal(h.poller.state.open, false, "refused and 503 keep it closed");
  assert.equal(h.changes.length, 0, "no change while it stays closed");
  await h.polls(4);
  assert.equal(h.poller.state.open, true);
  assert.equal(h.poller.state.unknown, false);
  assert.deepEqual(h.changes.map((s) => [s.phase, s.open]), [["healthy", true]]);
  assert.deepEqual(h.phases, ["waiting", "healthy"]);
  assert.deepEqual(h.requests.map((r) => r.at), [0, 2000, 4000, 6000], "at once, then every 2 s");
  await h.stop();
});

Deno.test("three failed polls in a row close the gate, once, and 200 opens it again", async () => {
  const h = harness(false, [OK, S503, "refused", S503, S503, "refused", S503, OK]);
  await h.polls(3);
  assert.equal(h.poller.state.open, true, "two failures keep it open");
  await h.polls(4);
  assert.equal(h.poller.state.open, false);
  assert.equal(h.poller.state.phase, "unhealthy");
  await h.polls(7);
  assert.deepEqual(
    h.changes.map((s) => s.phase),
    ["healthy", "unhealthy"],
    "one change per transition, not one per failed poll",
  );
  await h.polls(8);
  assert.deepEqual(h.changes.map((s) => s.phase), ["healthy", "unhealthy", "healthy"]);
  assert.equal(h.poller.state.open, true);
  await h.stop();
});

Deno.test("nodeEligible: false closes the gate at the first answer that says it", async () => {
  const h = harness(false, [OK, INELIGIBLE]);
  await h.polls(2);
  assert.equal(h.poller.state.open, false);
  assert.equal(h.poller.state.phase, "ineligible");
  assert.deepEqual(h.changes.map((s) => s.phase), ["healthy", "ineligible"]);
  assert.deepEqual(h.phases, ["waiting", "healthy", "ineligible"]);
  await h.stop();
});

Deno.test("started with addresses and never answered, the gate stays open and says health is unknown", async () => {
  const h = harness(true, ["refused", "hang", "refused"]);
  await h.polls(30);
  assert.equal(h.poller.state.open, true);
  assert.equal(h.poller.state.unknown, true);
  assert.match(h.poller.state.reason, /kube-proxy health unknown/);
  assert.equal(h.changes.length, 0, "never a change: the gate never closed");
  assert.deepEqual(h.phases, ["unknown"], "reported once at start");
  await h.stop();
});

Deno.test("a poll with no answer is aborted at the 1 s timeout and counts as a failure", async () => {
  const h = harness(false, [OK, "hang"]);
  await h.polls(1);
  await h.clock.tick(2000 - h.clock.now());
  assert.equal(h.requests.length, 2);
  await h.clock.tick(999);
  assert.equal(h.requests[1].aborted(), false, "not before the timeout");
  await h.clock.tick(1);
  assert.equal(h.requests[1].aborted(), true);
  assert.equal(h.requests[1].abortedAt, 3000);
  await h.polls(2);
  assert.equal(h.poller.state.failures, 1);
  assert.match(h.poller.state.reason, /did not answer within 1000ms/);
  await h.polls(4);
  assert.equal(h.poller.state.open, false, "three timeouts close the gate");
  assert.deepEqual(h.requests.map((r) => r.at), [0, 2000, 4000, 6000], "timeouts keep the pace");
  await h.stop();
});

Deno.test("an endless body is read no further than the limit and only its status counts", async () => {
  let sent = 0;
  const endless: FetchFn = () => {
    const chunk = new TextEncoder().encode(`{"nodeEligible":false,"pad":"${"x".repeat(4096)}`);
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        sent += chunk.byteLength;
        controller.enqueue(chunk);
      },
    });
    return Promise.resolve(new Response(body, { status: 200 }));
  };
  const h = harness(false, [], endless);
  await h.polls(1);
  assert.equal(h.poller.state.phase, "healthy", "the oversized body was not parsed");
  // The Response's own stream buffers ahead of the reader; the pull stops soon after the limit.
  assert.ok(sent <= 3 * MAX_HEALTH_BODY, `pulled ${sent} bytes, a bounded amount`);
  await h.stop();
});

Deno.test("an abort during a poll ends the run at once", async () => {
  const h = harness(false, ["hang"]);
  await h.clock.tick(0);
  assert.equal(h.requests.length, 1);
  await h.stop();
  assert.equal(h.requests[0].aborted(), true);
  assert.equal(h.poller.polls, 0, "the aborted poll is not counted as a failure");
});

Deno.test("a warning is logged once per transition, never once per failed poll", async () => {
  await withLogs("info", async (records) => {
    const h = harness(false, [OK, ...Array(20).fill(S503), OK, ...Array(20).fill("refused")]);
    await h.polls(43);
    const lines = records.map((r) => `${r.level} ${r.message.join("")}`);
    const warnings = lines.filter((l) => l.startsWith("warning"));
    assert.equal(warnings.length, 2, lines.join("\n"));
    assert.match(
      warnings[0],
      /gate closed, announcing nothing: kube-proxy unhealthy: 3 failed polls/,
    );
    assert.match(warnings[1], /last poll: kube-proxy refused the connection/);
    assert.equal(lines.length, 5, "boot (info), open, closed, open, closed");
    await h.stop();
  });
});
