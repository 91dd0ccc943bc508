import assert from "node:assert/strict";
import { ListWatch, type ListWatchSink } from "../../../lib/kube/list_watch.ts";
import type { RestartReason } from "../../../lib/kube/observer.ts";
import { objectName } from "../../../lib/base/shape.ts";
import { FakeClock } from "../../support/fakes/clock.ts";
import { withLogs } from "../../support/fakes/log_capture.ts";
import { ApiError } from "../../../lib/kube/errors.ts";
import { type ListWatchApi, type Query, type WatchEvent } from "../../../lib/kube/ports.ts";
import { collectionPath } from "../../../lib/kube/collection.ts";
import { UnreadableWatchEvent, WatchLineTooLong } from "../../../lib/kube/watch_stream.ts";

/** What the sink keeps: `namespace/name`. */
type Rec = string;

/** An API whose lists answer from a function and whose watches the test feeds by hand. */
class ScriptedApi implements ListWatchApi {
  readonly lists: { query: Query; at: number }[] = [];
  readonly watches: { query: Query; at: number }[] = [];
  readonly resets: string[] = [];
  /** The open watch's `onCurrent`: the client's word that its connection is alive. */
  current: (() => void) | undefined;
  #queue: (WatchEvent | "end" | Error)[] = [];
  #wake: (() => void) | undefined;

  constructor(
    readonly clock: FakeClock,
    public listReply: (query: Query) => Record<string, unknown>,
  ) {}

  list(_path: string, query: Query): Promise<Record<string, unknown>> {
    this.lists.push({ query, at: this.clock.now() });
    return Promise.resolve().then(() => this.listReply(query));
  }

  async *watch(
    _path: string,
    query: Query,
    signal: AbortSignal,
    onData?: () => void,
    onCurrent?: () => void,
  ): AsyncIterable<WatchEvent> {
    this.watches.push({ query, at: this.clock.now() });
    this.current = onCurrent;
    while (true) {
      while (this.#queue.length === 0) {
        if (signal.aborted) throw signal.reason;
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          signal.addEventListener("abort", () => resolve(), { once: true });
        });
      }
      const next = this.#queue.shift()!;
      if (next === "end") return;
      if (next instanceof Error) throw next;
      onData?.();
      yield next;
    }
  }

  reset(why: string): void {
    this.resets.push(why);
  }

  /** Sends an event, the end of the stream, or an error breaking it, to the open watch. */
  send(ev: WatchEvent | "end" | Error): void {
    this.#queue.push(ev);
    this.#wake?.();
  }
}

const obj = (name: string, rv: string, namespace = "default") => ({
  metadata: { namespace, name, resourceVersion: rv },
});
const listOf = (rv: string, ...items: unknown[]) => ({ metadata: { resourceVersion: rv }, items });

function harness(
  listReply: (query: Query) => Record<string, unknown>,
  opts: { pageSize?: number; refuse?: (item: Rec) => boolean } = {},
) {
  const clock = new FakeClock();
  const api = new ScriptedApi(clock, listReply);
  const seen: string[] = [];
  const restarts: RestartReason[] = [];
  const sink: ListWatchSink<Rec> = {
    replace: (items) => seen.push(`replace ${items.join(",")}`),
    upsert: (item) => {
      if (opts.refuse?.(item)) throw new Error(`cannot take ${item}`);
      seen.push(`upsert ${item}`);
    },
    delete: (item) => seen.push(`delete ${item}`),
  };
  const source = new ListWatch<Rec>({
    api,
    path: "/api/v1/things",
    kind: "Thing",
    decode: (o) => {
      const { namespace, name } = objectName(o, "Thing");
      return `${namespace}/${name}`;
    },
    sink,
    watchTimeoutSeconds: () => 300,
    pageSize: opts.pageSize,
    backoff: { initialMs: 100, maxMs: 400, random: () => 1 },
    clock,
    observer: { watchRestarted: (_kind, reason) => restarts.push(reason) },
  });
  const controller = new AbortController();
  const running = source.run(controller.signal);
  return {
    clock,
    api,
    seen,
    restarts,
    source,
    async stop() {
      controller.abort();
      await running;
    },
  };
}

Deno.test("collectionPath builds core and group paths, for one namespace or all", () => {
  assert.equal(collectionPath({ version: "v1", resource: "services" }), "/api/v1/services");
  assert.equal(
    collectionPath({ version: "v1", resource: "services" }, "web"),
    "/api/v1/namespaces/web/services",
  );
  assert.equal(
    collectionPath({ group: "discovery.k8s.io", version: "v1", resource: "endpointslices" }, "a b"),
    "/apis/discovery.k8s.io/v1/namespaces/a%20b/endpointslices",
  );
});

Deno.test("lists, then watches from the list's resource version and follows events", async () => {
  const h = harness(() => listOf("5", obj("a", "3")));
  await h.source.whenSynced();
  await h.clock.tick(0);
  assert.equal(h.api.watches[0].query.resourceVersion, "5");
  assert.equal(h.api.watches[0].query.allowWatchBookmarks, true);
  h.api.send({ type: "ADDED", object: obj("b", "6") });
  h.api.send({ type: "DELETED", object: obj("a", "7") });
  await h.clock.tick(0);
  assert.deepEqual(h.seen, ["replace default/a", "upsert default/b", "delete default/a"]);
  await h.stop();
});

Deno.test("a quiet watch is left alone until its own timeout plus 30 s, then restarted at once on a new connection", async () => {
  const h = harness(() => listOf("5"));
  await h.source.whenSynced();
  await h.clock.tick(0);
  h.api.send({ type: "BOOKMARK", object: { metadata: { resourceVersion: "9" } } });
  await h.clock.tick(329_999);
  assert.deepEqual(
    h.restarts,
    [],
    "no bookmark for 330 s is no stall for a watch asked to last 300 s",
  );
  await h.clock.tick(1);
  assert.deepEqual(h.restarts, ["stalled"]);
  assert.equal(h.api.resets.length, 1, "the client is told to use a new connection");
  assert.equal(h.api.watches.length, 2, "restarted at once, without a backoff");
  assert.equal(h.api.watches[1].query.resourceVersion, "9");
  assert.equal(h.api.lists.length, 1, "no relist");
  await h.stop();
});

Deno.test("stalls in a row do not grow the backoff", async () => {
  const h = harness(() => listOf("5"));
  await h.source.whenSynced();
  for (let i = 1; i <= 4; i++) {
    await h.clock.tick(330_000);
    assert.equal(h.api.watches.length, i + 1, `restart ${i} at once`);
  }
  // Then an error: the delay is the first one, not the fifth.
  const before = h.clock.now();
  h.api.send(new ApiError("Cannot reach the server: connection reset", undefined));
  await h.clock.runUntil("the next watch", () => h.api.watches.length === 6);
  assert.equal(h.clock.now() - before, 100);
  await h.stop();
});

Deno.test("errors are retried with growing delays up to the cap", async () => {
  let failures = 4;
  const h = harness(() => {
    if (failures-- > 0) throw new ApiError("GET /api/v1/things: 503 busy", 503);
    return listOf("5");
  });
  await h.clock.runUntil("the first complete list", () => h.source.synced);
  const at = h.api.lists.map((l) => l.at);
  assert.deepEqual(at.slice(1).map((t, i) => t - at[i]), [100, 200, 400, 400]);
  assert.deepEqual(h.restarts, ["error", "error", "error", "error"]);
  await h.stop();
});

Deno.test("410 Gone in the stream relists at once and replaces what the sink holds", async () => {
  let rv = 5;
  const h = harness(() => listOf(String(rv++), obj("a", "1")));
  await h.source.whenSynced();
  await h.clock.tick(0);
  h.api.send({ type: "ERROR", object: { code: 410, message: "too old resource version" } });
  await h.clock.tick(0);
  assert.deepEqual(h.restarts, ["gone"]);
  assert.equal(h.api.lists.length, 2);
  assert.equal(h.api.watches[1].query.resourceVersion, "6");
  assert.deepEqual(h.seen, ["replace default/a", "replace default/a"]);
  await h.stop();
});

/** Runs what is due now, without moving the clock, until `done` holds (or fails the test). */
async function settle(done: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !done(); i++) await new Promise((r) => setTimeout(r, 0));
  assert.ok(done(), "did not happen without time passing");
}

Deno.test("an oversized or unreadable watch event leads to a relist, so later edits of that object are seen", async () => {
  let rv = "5";
  const h = harness(() => listOf(rv, obj("big", rv)));
  await h.source.whenSynced();
  await h.clock.tick(0);
  for (const bad of [new WatchLineTooLong(16 << 20), new UnreadableWatchEvent("not JSON")]) {
    const lists = h.api.lists.length;
    // The object grew past the bound at rv 6; the list at rv 7 holds it (or skips it) whole.
    rv = String(Number(rv) + 2);
    h.api.send(bad);
    // No time passes: the relist follows the bad event at once (the first of a row).
    await settle(() => h.api.lists.length === lists + 1 && h.api.watches.length === lists + 1);
    assert.equal(h.api.watches.at(-1)!.query.resourceVersion, rv, "resumes past the bad event");
    h.api.send({ type: "MODIFIED", object: obj("big", String(Number(rv) + 1)) });
    await h.clock.tick(0);
    assert.equal(h.seen.at(-1), "upsert default/big", "a later small edit is seen");
  }
  // Two relists in a row back off like 410s; nothing wedges.
  assert.deepEqual(h.restarts, ["error", "error"]);
  await h.stop();
});

Deno.test("an object that cannot be read is skipped with one warning, however many events carry it", async () => {
  await withLogs("warning", async (warnings) => {
    const broken = { metadata: { namespace: "default", resourceVersion: "4" } };
    const h = harness(() => listOf("5", broken, obj("a", "3")));
    await h.source.whenSynced();
    await h.clock.tick(0);
    for (let i = 0; i < 3; i++) h.api.send({ type: "MODIFIED", object: broken });
    h.api.send({ type: "ADDED", object: obj("b", "6") });
    await h.clock.tick(0);
    assert.deepEqual(h.seen, ["replace default/a", "upsert default/b"]);
    assert.equal(warnings.length, 1);
    assert.match(String(warnings[0].message.join("")), /skipping a Thing/);
    await h.stop();
  });
});

Deno.test("an object the sink throws on is skipped with one warning; the watch goes on from past it", async () => {
  await withLogs("warning", async (warnings) => {
    let refuse = true;
    const h = harness(() => listOf("5"), { refuse: (item) => refuse && item === "default/bad" });
    await h.source.whenSynced();
    await h.clock.tick(0);
    for (let i = 6; i < 9; i++) h.api.send({ type: "MODIFIED", object: obj("bad", String(i)) });
    h.api.send({ type: "ADDED", object: obj("b", "9") });
    await h.clock.tick(0);
    assert.deepEqual(h.seen, ["replace ", "upsert default/b"]);
    assert.equal(warnings.length, 1);
    assert.match(String(warnings[0].message.join("")), /skipping a Thing.*the sink refused it/);
    // No restart: the watch goes on, and a later edit the sink takes is seen.
    assert.deepEqual(h.restarts, []);
    assert.equal(h.api.watches.length, 1);
    refuse = false;
    h.api.send({ type: "MODIFIED", object: obj("bad", "10") });
    await h.clock.tick(0);
    assert.equal(h.seen.at(-1), "upsert default/bad");
    await h.stop();
  });
});

Deno.test("a malformed LIST answer is an error: the sink keeps what it had, and the engine backs off", async () => {
  const bad: [string, Record<string, unknown>][] = [
    ["a Status object", { kind: "Status", apiVersion: "v1", code: 503, message: "busy" }],
    ["items a string", { kind: "ThingList", metadata: { resourceVersion: "6" }, items: "none" }],
    ["items an object", { kind: "ThingList", metadata: { resourceVersion: "6" }, items: {} }],
    ["another kind", { kind: "PodList", metadata: { resourceVersion: "6" }, items: [] }],
    ["no resourceVersion", { kind: "ThingList", metadata: {}, items: [] }],
    ["no item readable", { kind: "ThingList", metadata: { resourceVersion: "6" }, items: [1, 2] }],
  ];
  for (const [what, body] of bad) {
    let n = 0;
    const h = harness(() => n++ === 0 ? listOf("5", obj("a", "3")) : body);
    await h.source.whenSynced();
    await h.clock.tick(0);
    h.api.send({ type: "ERROR", object: { code: 410, message: "too old resource version" } });
    await h.clock.tick(0);
    assert.equal(h.api.lists.length, 2, what);
    assert.deepEqual(h.seen, ["replace default/a"], `${what}: the sink keeps what it had`);
    assert.deepEqual(h.restarts, ["gone", "error"], what);
    await h.clock.tick(100);
    assert.equal(h.api.lists.length, 3, `${what}: retried after the backoff`);
    await h.stop();
  }
});

Deno.test("items: [] and items: null are an empty list; unreadable items beside readable ones are skipped", async () => {
  for (const items of [[], null]) {
    const h = harness(() => ({ kind: "ThingList", metadata: { resourceVersion: "5" }, items }));
    await h.source.whenSynced();
    assert.deepEqual(h.seen, ["replace "]);
    await h.stop();
  }
  const h = harness(() => listOf("5", 1, obj("a", "3"), "x"));
  await h.source.whenSynced();
  assert.deepEqual(h.seen, ["replace default/a"]);
  await h.stop();
});

Deno.test("a watch that delivered events resets the backoff even when it ends in an error", async () => {
  const h = harness(() => listOf("5"));
  await h.source.whenSynced();
  await h.clock.tick(0);
  for (let i = 1; i <= 3; i++) {
    h.api.send(new ApiError("watch stream broke at once", undefined));
    await h.clock.runUntil("the next watch", () => h.api.watches.length === i + 1);
  }
  h.api.send({ type: "ADDED", object: obj("b", "6") });
  h.api.send(new ApiError("watch stream broke: connection reset", undefined));
  const before = h.clock.now();
  await h.clock.runUntil("the next watch", () => h.api.watches.length === 5);
  assert.equal(h.clock.now() - before, 100, "the first delay, not the grown one (400)");
  await h.stop();
});

Deno.test("a watch that stayed open 10 s resets the backoff; one that fails at once does not", async () => {
  const h = harness(() => listOf("5"));
  await h.source.whenSynced();
  await h.clock.tick(0);
  const gaps: number[] = [];
  for (let i = 0; i < 3; i++) {
    const before = h.clock.now();
    const n = h.api.watches.length;
    h.api.send(new ApiError("watch stream broke", undefined));
    await h.clock.runUntil("the next watch", () => h.api.watches.length === n + 1);
    gaps.push(h.clock.now() - before);
  }
  assert.deepEqual(gaps, [100, 200, 400], "failing at once grows the delay");
  await h.clock.tick(10_000);
  const before = h.clock.now();
  h.api.send(new ApiError("watch stream broke", undefined));
  await h.clock.runUntil("the next watch", () => h.api.watches.length === 5);
  assert.equal(h.clock.now() - before, 100, "after 10 s open, the first delay again");
  await h.stop();
});

Deno.test("a watch the server ends after delivering something resumes at once", async () => {
  const h = harness(() => listOf("5"));
  await h.source.whenSynced();
  await h.clock.tick(0);
  h.api.send({ type: "BOOKMARK", object: { metadata: { resourceVersion: "7" } } });
  h.api.send("end");
  await h.clock.tick(0);
  assert.equal(h.api.watches.length, 2);
  assert.deepEqual(h.restarts, ["closed"]);
  await h.stop();
});

Deno.test("504 Too large resource version relists, as a watch event or a status; twice in a row backs off", async () => {
  let rv = 5;
  const h = harness(() => listOf(String(rv++), obj("a", "1")));
  await h.source.whenSynced();
  await h.clock.tick(0);
  h.api.send({
    type: "ERROR",
    object: {
      kind: "Status",
      code: 504,
      reason: "Timeout",
      message: "Timeout: Too large resource version: 900, current: 5",
      details: { causes: [{ reason: "ResourceVersionTooLarge" }] },
    },
  });
  await h.clock.tick(0);
  assert.equal(h.api.lists.length, 2, "relisted at once");
  assert.deepEqual(h.restarts, ["gone"]);
  h.api.send(new ApiError("GET x: 504 Timeout: Too large resource version: 900", 504));
  await h.clock.tick(0);
  assert.equal(h.api.lists.length, 2, "a second relist in a row waits");
  await h.clock.tick(100);
  assert.equal(h.api.lists.length, 3);
  assert.equal(h.api.watches.at(-1)!.query.resourceVersion, "7");
  await h.stop();
});

Deno.test("a 504 that is not about the resource version is an ordinary error", async () => {
  const h = harness(() => listOf("5"));
  await h.source.whenSynced();
  await h.clock.tick(0);
  h.api.send(new ApiError("GET x: 504 Gateway Timeout", 504));
  await h.clock.tick(0);
  assert.deepEqual(h.restarts, ["error"]);
  assert.equal(h.api.lists.length, 1);
  await h.stop();
});

Deno.test("Retry-After is honoured over a shorter backoff, capped at 60 s", async () => {
  for (const [askedMs, waitedMs] of [[5_000, 5_000], [600_000, 60_000]]) {
    let n = 0;
    const h = harness(() => {
      if (n++ === 0) {
        throw new ApiError("GET x: 429 Too many requests", 429, { retryAfterMs: askedMs });
      }
      return listOf("5");
    });
    await h.clock.runUntil("the first complete list", () => h.source.synced);
    assert.equal(h.api.lists[1].at - h.api.lists[0].at, waitedMs);
    await h.stop();
  }
});

Deno.test("an expired continue token is followed by one full unpaged list", async () => {
  const h = harness((q) => {
    if (q.continue === "t1") throw new ApiError("GET x: 410 Expired", 410);
    if (q.limit === undefined) return listOf("9", obj("a", "1"), obj("b", "2"), obj("c", "8"));
    return { metadata: { resourceVersion: "5", continue: "t1" }, items: [obj("a", "1")] };
  }, { pageSize: 1 });
  await h.source.whenSynced();
  await h.clock.tick(0);
  assert.deepEqual(h.api.lists.map((l) => [l.query.limit, l.query.continue]), [
    [1, undefined],
    [1, "t1"],
    [undefined, undefined],
  ]);
  assert.deepEqual(h.seen, ["replace default/a,default/b,default/c"]);
  assert.equal(h.api.watches[0].query.resourceVersion, "9");
  assert.deepEqual(h.restarts, []);
  await h.stop();
});

Deno.test("410 on the unpaged fallback too goes back to the loop, which backs off on the next", async () => {
  const h = harness((q) => {
    if (q.continue || q.limit === undefined) throw new ApiError("GET x: 410 Expired", 410);
    return { metadata: { resourceVersion: "5", continue: "t1" }, items: [obj("a", "1")] };
  }, { pageSize: 1 });
  await h.clock.tick(0);
  // Paged, the continued page, the unpaged fallback; then one more round at once.
  assert.equal(h.api.lists.length, 6);
  assert.deepEqual(h.restarts, ["gone", "gone"]);
  await h.clock.tick(99);
  assert.equal(h.api.lists.length, 6, "no third round before the backoff");
  await h.clock.tick(1);
  assert.equal(h.api.lists.length, 9);
  await h.clock.tick(199);
  assert.equal(h.api.lists.length, 9, "the backoff grows");
  assert.deepEqual(h.seen, []);
  await h.stop();
});

Deno.test("the engine is known current after a list, an event, a bookmark or the client's word, not after an error", async () => {
  const h = harness(() => listOf("5"));
  assert.equal(h.source.lastCurrent, undefined);
  await h.source.whenSynced();
  assert.equal(h.source.lastCurrent, 0);
  await h.clock.tick(1000);
  h.api.send({ type: "BOOKMARK", object: { metadata: { resourceVersion: "6" } } });
  await h.clock.tick(0);
  assert.equal(h.source.lastCurrent, 1000);
  await h.clock.tick(1000);
  h.api.current!();
  assert.equal(h.source.lastCurrent, 2000);
  h.api.send(new ApiError("watch stream broke", undefined));
  await h.clock.tick(50);
  assert.equal(h.source.lastCurrent, 2000);
  assert.match(h.source.lastError ?? "", /watch stream broke/);
  await h.stop();
});

Deno.test("refused credentials are warned about once, not at every retry", async () => {
  await withLogs("warning", async (warnings) => {
    let n = 0;
    const h = harness(() => {
      if (n++ < 4) throw new ApiError("GET /api/v1/things: 401 Unauthorized", 401);
      return listOf("5");
    });
    await h.clock.runUntil("the first complete list", () => h.source.synced);
    assert.deepEqual(h.restarts, ["error", "error", "error", "error"]);
    assert.equal(warnings.length, 1);
    await h.stop();
  });
});
