import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { collectionPath, ListWatch, type ListWatchSink } from "../../lib/list_watch.ts";
import { quietObserver, type RestartReason } from "../../lib/observer.ts";
import { ApiError, type ListWatchApi, type Query, type WatchEvent } from "../../lib/ports.ts";
import { objectName } from "../../lib/shape.ts";
import { FakeClock } from "../support/fake_clock.ts";

/** What the sink keeps: `namespace/name`. */
type Rec = string;

/** An API whose lists answer from a function and whose watches the test feeds by hand. */
class ScriptedApi implements ListWatchApi {
  readonly lists: { query: Query; at: number }[] = [];
  readonly watches: { query: Query; at: number }[] = [];
  #queue: (WatchEvent | "end")[] = [];
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
  ): AsyncIterable<WatchEvent> {
    this.watches.push({ query, at: this.clock.now() });
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
      onData?.();
      yield next;
    }
  }

  /** Sends an event (or the end of the stream) to the open watch. */
  send(ev: WatchEvent | "end"): void {
    this.#queue.push(ev);
    this.#wake?.();
  }
}

const obj = (name: string, rv: string, namespace = "default") => ({
  metadata: { namespace, name, resourceVersion: rv },
});
const listOf = (rv: string, ...items: unknown[]) => ({ metadata: { resourceVersion: rv }, items });

function harness(listReply: (query: Query) => Record<string, unknown>) {
  const clock = new FakeClock();
  const api = new ScriptedApi(clock, listReply);
  const seen: string[] = [];
  const restarts: RestartReason[] = [];
  const sink: ListWatchSink<Rec> = {
    replace: (items) => seen.push(`replace ${items.join(",")}`),
    upsert: (item) => seen.push(`upsert ${item}`),
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
    backoff: { initialMs: 100, maxMs: 400, random: () => 1 },
    clock,
    observer: { ...quietObserver, watchRestarted: (_kind, reason) => restarts.push(reason) },
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

Deno.test("a watch silent past the deadline is restarted after a backoff, from where it was", async () => {
  const h = harness(() => listOf("5"));
  await h.source.whenSynced();
  await h.clock.tick(0);
  h.api.send({ type: "BOOKMARK", object: { metadata: { resourceVersion: "9" } } });
  await h.clock.tick(149_999);
  assert.deepEqual(h.restarts, [], "a bookmark keeps the watch alive");
  await h.clock.tick(1);
  assert.deepEqual(h.restarts, ["stalled"]);
  assert.equal(h.api.watches.length, 1, "not before the backoff");
  await h.clock.tick(100);
  assert.equal(h.api.watches.length, 2);
  assert.equal(h.api.watches[1].query.resourceVersion, "9");
  assert.equal(h.api.lists.length, 1, "no relist");
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

Deno.test("an object that cannot be read is skipped with one warning, however many events carry it", async () => {
  const warnings: LogRecord[] = [];
  await configure({
    reset: true,
    sinks: { mem: (r) => warnings.push(r) },
    loggers: [
      { category: ["kube-gw"], lowestLevel: "warning", sinks: ["mem"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: [] },
    ],
  });
  try {
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
  } finally {
    await reset();
  }
});
