import assert from "node:assert/strict";
import { WorkQueue } from "../../../lib/controller/work_queue.ts";
import { FakeClock } from "../../support/fakes/clock.ts";

/** A queue whose processing of each key waits until the test lets it finish. */
function setup(opts: { concurrency?: number; fail?: ReadonlySet<string> } = {}) {
  const clock = new FakeClock();
  /** Each call of `process`, in order. */
  const calls: { key: string; queuedAt: number }[] = [];
  /** Keys being processed now, with the function that ends their processing. */
  const running = new Map<string, () => void>();
  let mostAtOnce = 0;
  let twiceAtOnce = false;
  const queue = new WorkQueue({
    clock,
    concurrency: opts.concurrency,
    retry: { initialMs: 1000, maxMs: 4000 },
    process: (key, queuedAt) => {
      calls.push({ key, queuedAt });
      if (running.has(key)) twiceAtOnce = true;
      return new Promise<void>((resolve, reject) => {
        running.set(key, () => {
          running.delete(key);
          if (opts.fail?.has(key)) reject(new Error(`${key} failed`));
          else resolve();
        });
        mostAtOnce = Math.max(mostAtOnce, running.size);
      });
    },
  });
  const term = new AbortController();
  queue.start(term.signal);
  /** Lets the processing of `key` finish, then lets the queue take the next keys. */
  const finish = async (key: string) => {
    const end = running.get(key);
    assert.ok(end, `${key} is not being processed`);
    end();
    await clock.tick(0);
  };
  /** Finishes every processing until the queue is idle. */
  const drain = async () => {
    while (running.size > 0) await finish([...running.keys()][0]);
    await queue.idle();
  };
  return {
    clock,
    queue,
    term,
    calls,
    running,
    finish,
    drain,
    stats: () => ({ mostAtOnce, twiceAtOnce }),
  };
}

Deno.test("work queue: a key added again while it waits is processed once, with its first queue time", async () => {
  const t = setup({ concurrency: 1 });
  t.queue.add("a");
  await t.clock.tick(5);
  t.queue.add("b");
  t.queue.add("b");
  await t.clock.tick(5);
  t.queue.add("b");
  await t.drain();
  assert.deepEqual(t.calls, [{ key: "a", queuedAt: 0 }, { key: "b", queuedAt: 5 }]);
});

Deno.test("work queue: keys are taken oldest first", async () => {
  const t = setup({ concurrency: 1 });
  for (const key of ["c", "a", "b"]) t.queue.add(key);
  await t.drain();
  assert.deepEqual(t.calls.map((c) => c.key), ["c", "a", "b"]);
});

Deno.test("work queue: at most `concurrency` keys at once, and one key never twice at once", async () => {
  const t = setup({ concurrency: 2 });
  t.queue.add("a");
  t.queue.add("a"); // Queued again while processed: waits for that to end.
  t.queue.add("b");
  t.queue.add("c");
  assert.deepEqual([...t.running.keys()], ["a", "b"]);
  await t.finish("b");
  assert.deepEqual([...t.running.keys()], ["a", "c"]);
  await t.finish("a");
  assert.deepEqual([...t.running.keys()], ["c", "a"]);
  await t.drain();
  assert.deepEqual(t.calls.map((c) => c.key), ["a", "b", "c", "a"]);
  assert.deepEqual(t.stats(), { mostAtOnce: 2, twiceAtOnce: false });
});

Deno.test("work queue: a key whose processing throws does not stop the worker", async () => {
  const t = setup({ concurrency: 1, fail: new Set(["a"]) });
  t.queue.add("a");
  t.queue.add("b");
  await t.drain();
  assert.deepEqual(t.calls.map((c) => c.key), ["a", "b"]);
});

Deno.test("work queue: retryLater queues the key again after a backoff that grows until it succeeds", async () => {
  const t = setup();
  const first = t.queue.retryLater("a");
  assert.ok(first >= 500 && first <= 1000, `first delay ${first}`);
  await t.clock.tick(first - 1);
  assert.equal(t.calls.length, 0);
  await t.clock.tick(1);
  assert.deepEqual(t.calls, [{ key: "a", queuedAt: first }]);
  await t.drain();

  const second = t.queue.retryLater("a");
  assert.ok(second >= 1000 && second <= 2000, `second delay ${second}`);
  // A later call replaces the pending retry: the key is queued once.
  const third = t.queue.retryLater("a");
  assert.ok(third >= 2000 && third <= 4000, `third delay ${third}`);
  await t.clock.runUntil("the retry", () => t.calls.length === 2);
  assert.equal(t.calls[1].queuedAt, first + third);
  await t.drain();
  assert.equal(t.clock.pending, 0);

  t.queue.succeeded("a");
  const again = t.queue.retryLater("a");
  assert.ok(again >= 500 && again <= 1000, `delay after success ${again}`);
  t.queue.succeeded("a"); // Also cancels the pending retry.
  assert.equal(t.clock.pending, 0);
});

Deno.test("work queue: stopped, it queues nothing and forgets what waits and what would be retried", async () => {
  const t = setup({ concurrency: 1 });
  t.queue.add("a");
  t.queue.add("b");
  t.queue.retryLater("c");
  t.queue.stop();
  t.term.abort();
  assert.equal(t.clock.pending, 0);
  t.queue.add("d");
  await t.finish("a"); // The key in flight ends; no worker takes another.
  await t.queue.idle();
  assert.deepEqual(t.calls.map((c) => c.key), ["a"]);

  const next = new AbortController();
  t.queue.start(next.signal);
  t.queue.add("e");
  await t.drain();
  assert.deepEqual(t.calls.map((c) => c.key), ["a", "e"]);
});

Deno.test("work queue: a key added while others are being processed is taken at once by a free worker", async () => {
  const t = setup({ concurrency: 4 });
  t.queue.add("slow");
  assert.deepEqual([...t.running.keys()], ["slow"]);
  // One key in flight, one queued: a free worker takes it, it does not wait for "slow".
  t.queue.add("next");
  assert.deepEqual([...t.running.keys()], ["slow", "next"]);
  t.queue.add("third");
  t.queue.add("fourth");
  assert.deepEqual([...t.running.keys()], ["slow", "next", "third", "fourth"]);
  // Every worker is busy: a fifth waits for one of them.
  t.queue.add("fifth");
  assert.equal(t.running.has("fifth"), false);
  await t.finish("next");
  assert.equal(t.running.has("fifth"), true);
  await t.drain();
  assert.equal(t.stats().twiceAtOnce, false);
});
