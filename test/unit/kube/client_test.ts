/**
 * The client's connection handling on a fake fetch and a fake clock:
 * timeouts, a new HTTP client after a connection-level failure, the liveness
 * probe, tokens re-read on 401, Retry-After. No network, no real time.
 */
import assert from "node:assert/strict";
import { KubeApi, type KubeApiOptions } from "../../../lib/kube/client.ts";
import { ApiError, parseRetryAfter } from "../../../lib/kube/errors.ts";
import type { ApiConnection } from "../../../lib/kube/kubeconfig.ts";
import { FakeClock } from "../../support/fakes/clock.ts";

type Handler = (url: URL, init: RequestInit, client: number) => Promise<Response> | Response;

/** A fetch that answers from `handler`, honours the abort signal, and counts clients. */
function fakeTransport(clock: FakeClock, handler: Handler) {
  const clients: { id: number; closed: boolean }[] = [];
  const requests: { path: string; client: number; auth: string | null; at: number }[] = [];
  const fakeFetch = ((input: string, init: RequestInit & { client?: { id: number } }) => {
    const url = new URL(input);
    const client = init.client!.id;
    requests.push({
      path: url.pathname,
      client,
      auth: new Headers(init.headers).get("authorization"),
      at: clock.now(),
    });
    const signal = init.signal!;
    return new Promise<Response>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      Promise.resolve(handler(url, init, client)).then(
        (res) => resolve(abortable(res, signal)),
        reject,
      );
    });
  }) as unknown as typeof globalThis.fetch;
  const createHttpClient = () => {
    const c = { id: clients.length + 1, closed: false, close: () => c.closed = true };
    clients.push(c);
    return c as unknown as Deno.HttpClient;
  };
  return { fetch: fakeFetch, createHttpClient, clients, requests };
}

/** The response with a body that errors once `signal` aborts, as fetch's does. */
function abortable(res: Response, signal: AbortSignal): Response {
  if (!res.body) return res;
  const reader = res.body.getReader();
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      signal.addEventListener("abort", () => {
        try {
          c.error(signal.reason);
        } catch { /* already closed */ }
        reader.cancel().catch(() => {});
      }, { once: true });
    },
    async pull(c) {
      const { done, value } = await reader.read();
      if (done) c.close();
      else c.enqueue(value);
    },
  });
  return new Response(body, { status: res.status, headers: res.headers });
}

const never = () => new Promise<Response>(() => {});

/** A body that sends `first` and then nothing, until aborted. */
function openStream(first = ""): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      if (first) c.enqueue(new TextEncoder().encode(first));
    },
  });
}

function client(
  handler: Handler,
  conn: Partial<ApiConnection> = {},
  options: Partial<KubeApiOptions> = {},
) {
  const clock = new FakeClock();
  const t = fakeTransport(clock, handler);
  const events: string[] = [];
  const api = new KubeApi({ server: "https://api.test:6443", source: "test", ...conn }, {
    clock,
    fetch: t.fetch,
    createHttpClient: t.createHttpClient,
    observer: {
      authFailed: (status) => events.push(`auth ${status}`),
      connectionReplaced: (reason) => events.push(`replaced ${reason}`),
    },
    ...options,
  });
  return { clock, api, events, ...t };
}

const signal = () => new AbortController().signal;
const list = { kind: "ThingList", metadata: { resourceVersion: "1" }, items: [] };

Deno.test("a request with no answer in 30 s fails as a connection error, and the next goes over a new client", async () => {
  const c = client((url) => url.pathname === "/hang" ? never() : Response.json(list));
  const pending = c.api.list("/hang", {}, signal());
  const failed = assert.rejects(
    pending,
    (e: unknown) =>
      e instanceof ApiError && e.connection && /no answer from .* in 30s/.test(e.message),
  );
  await c.clock.tick(29_999);
  assert.equal(c.clients.length, 1);
  await c.clock.tick(1);
  await failed;
  assert.deepEqual(c.events, ["replaced timeout"]);
  assert.equal(c.clients[0].closed, true, "the old client is closed once its requests ended");
  await c.api.list("/ok", {}, signal());
  assert.deepEqual(c.requests.map((r) => r.client), [1, 2]);
  c.api.close();
});

Deno.test("a LIST whose body does not end within 60 s fails; a watch waits 30 s for its headers only", async () => {
  const c = client((url) =>
    new Response(url.searchParams.get("watch") ? openStream("") : openStream('{"items":'))
  );
  const listing = assert.rejects(
    c.api.list("/api/v1/things", {}, signal()),
    (e: unknown) => e instanceof ApiError && /did not complete in 60s/.test(e.message),
  );
  await c.clock.tick(60_000);
  await listing;
  const ac = new AbortController();
  const it = c.api.watch("/api/v1/things", {}, ac.signal)[Symbol.asyncIterator]();
  const next = it.next();
  await c.clock.tick(120_000);
  let settled = false;
  next.then(() => settled = true, () => settled = true);
  await c.clock.tick(0);
  assert.equal(settled, false, "an open watch with headers is not timed out by the client");
  ac.abort(new Error("stop"));
  await assert.rejects(next);
  c.api.close();
});

Deno.test("while a watch is open a probe goes out every 30 s; an answer makes it current", async () => {
  const c = client((url) =>
    url.pathname === "/version" ? Response.json({ gitVersion: "v1" }) : new Response(openStream(""))
  );
  let current = 0;
  const ac = new AbortController();
  const it = c.api.watch("/api/v1/things", {}, ac.signal, undefined, () => current++)
    [Symbol.asyncIterator]();
  const next = it.next();
  await c.clock.tick(29_999);
  assert.equal(c.requests.filter((r) => r.path === "/version").length, 0);
  await c.clock.tick(1);
  assert.equal(c.requests.filter((r) => r.path === "/version").length, 1);
  assert.equal(current, 1);
  await c.clock.tick(30_000);
  assert.equal(current, 2);
  assert.deepEqual(c.requests.map((r) => r.client), [1, 1, 1], "over the same client");
  ac.abort(new Error("stop"));
  await assert.rejects(next);
  await c.clock.tick(60_000);
  assert.equal(c.requests.length, 3, "no probe without an open watch");
  c.api.close();
});

Deno.test("a probe with no answer in 15 s replaces the client and ends every watch on it", async () => {
  let dead = false;
  const c = client((url) => {
    if (dead && url.pathname === "/version") return never();
    return url.pathname === "/version" ? Response.json({}) : new Response(openStream(""));
  });
  const watches = [1, 2, 3].map(() =>
    c.api.watch("/api/v1/things", {}, signal())[Symbol.asyncIterator]().next()
  );
  const ended = watches.map((w) =>
    assert.rejects(
      w,
      (e: unknown) =>
        e instanceof ApiError && e.connection && /liveness probe .* failed/.test(e.message),
    )
  );
  await c.clock.tick(30_000);
  assert.equal(c.clients.length, 1);
  dead = true;
  await c.clock.tick(30_000 + 14_999);
  assert.equal(c.clients.length, 1);
  await c.clock.tick(1);
  await Promise.all(ended);
  assert.deepEqual(c.events, ["replaced probe"]);
  assert.equal(c.clients.length, 2);
  assert.equal(c.clients[0].closed, true);
  c.api.close();
});

Deno.test("a 401 re-reads the token and retries once with the new one", async () => {
  let onDisk = "old";
  let token = "old";
  const c = client(
    (_url, init) =>
      new Headers(init.headers).get("authorization") === "Bearer new"
        ? Response.json(list)
        : Response.json({ kind: "Status", code: 401, message: "Unauthorized" }, { status: 401 }),
    { token: () => token, refreshToken: () => token = onDisk },
  );
  onDisk = "new";
  assert.deepEqual(await c.api.list("/api/v1/things", {}, signal()), list);
  assert.deepEqual(c.requests.map((r) => r.auth), ["Bearer old", "Bearer new"]);
  assert.deepEqual(c.events, []);
  assert.equal(c.api.authProblem, undefined);
  c.api.close();
});

Deno.test("repeated 401s are counted each, reported until a success, and the token re-read each time", async () => {
  let reads = 0;
  let ok = false;
  const c = client(
    () =>
      ok ? Response.json(list) : Response.json({ code: 401, message: "Unauthorized" }, {
        status: 401,
      }),
    { token: () => "t", refreshToken: () => reads++ },
  );
  for (let i = 0; i < 3; i++) {
    await assert.rejects(
      c.api.list("/api/v1/things", {}, signal()),
      (e: unknown) => e instanceof ApiError && e.auth,
    );
  }
  assert.deepEqual(c.events, ["auth 401", "auth 401", "auth 401"]);
  assert.equal(reads, 3);
  assert.match(
    c.api.authProblem ?? "",
    /refuses kube-gw's credentials: GET \/api\/v1\/things: 401/,
  );
  ok = true;
  await c.api.list("/api/v1/things", {}, signal());
  assert.equal(c.api.authProblem, undefined);
  c.api.close();
});

Deno.test("429 and 503 carry Retry-After; a 504 too-large Status is recognised", async () => {
  const c = client((url) => {
    if (url.pathname === "/a") {
      return Response.json({ code: 429 }, { status: 429, headers: { "retry-after": "7" } });
    }
    return Response.json({
      kind: "Status",
      code: 504,
      reason: "Timeout",
      message: "Timeout: Too large resource version: 9, current: 3",
      details: { causes: [{ reason: "ResourceVersionTooLarge" }] },
    }, { status: 504 });
  });
  await assert.rejects(
    c.api.list("/a", {}, signal()),
    (e: unknown) => e instanceof ApiError && e.status === 429 && e.retryAfterMs === 7000,
  );
  await assert.rejects(
    c.api.list("/b", {}, signal()),
    (e: unknown) => e instanceof ApiError && e.tooLarge && !e.gone,
  );
  c.api.close();
});

Deno.test("parseRetryAfter reads seconds and HTTP dates, and ignores the rest", () => {
  assert.equal(parseRetryAfter("3"), 3000);
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter("soon"), undefined);
  const now = Date.parse("2026-01-01T00:00:00Z");
  assert.equal(parseRetryAfter("Thu, 01 Jan 2026 00:00:05 GMT", now), 5000);
  assert.equal(parseRetryAfter("999999999"), 600_000, "bounded");
});

Deno.test("a generic request goes through the same handling: JSON body, content type, status error", async () => {
  const c = client(async (url, init) => {
    if (url.pathname === "/conflict") {
      return Response.json({ code: 409, reason: "Conflict", message: "changed" }, { status: 409 });
    }
    return Response.json({
      method: init.method,
      type: new Headers(init.headers).get("content-type"),
      body: await new Response(init.body).text(),
    });
  });
  const res = await c.api.request("PATCH", "/x", {
    body: { a: 1 },
    contentType: "application/merge-patch+json",
  }, signal());
  assert.deepEqual(await res.json(), {
    method: "PATCH",
    type: "application/merge-patch+json",
    body: '{"a":1}',
  });
  await assert.rejects(
    c.api.request("PUT", "/conflict", { body: {} }, signal()),
    (e: unknown) => e instanceof ApiError && e.status === 409 && e.reason === "Conflict",
  );
  c.api.close();
});

Deno.test("a stalled watch's reset moves new requests to a new client, once for reports in a burst", async () => {
  const c = client(() => Response.json(list));
  await c.clock.tick(10_000);
  c.api.reset("watch sent nothing for 330s");
  c.api.reset("another watch of the same connection sent nothing");
  assert.deepEqual(c.events, ["replaced stall"]);
  assert.equal(c.clients.length, 2);
  assert.equal(c.clients[0].closed, true, "no request was in flight on it");
  await c.api.list("/x", {}, signal());
  assert.equal(c.requests[0].client, 2);
  c.api.close();
});

Deno.test("a watch stream that breaks moves new requests to a new client; the old one closes after its last request", async () => {
  let breakIt: (() => void) | undefined;
  const c = client((url) => {
    if (url.searchParams.get("watch")) {
      return new Response(
        new ReadableStream({
          start(ctl) {
            breakIt = () => ctl.error(new TypeError("error reading a body from connection"));
          },
        }),
      );
    }
    return url.pathname === "/slow" ? never() : Response.json(list);
  });
  const slow = c.api.list("/slow", {}, signal()).catch((e) => e);
  const it = c.api.watch("/api/v1/things", {}, signal())[Symbol.asyncIterator]();
  const next = it.next();
  await c.clock.tick(0);
  breakIt!();
  await assert.rejects(
    next,
    (e: unknown) => e instanceof ApiError && e.connection && /watch stream broke/.test(e.message),
  );
  assert.deepEqual(c.events, ["replaced error"]);
  assert.equal(c.clients[0].closed, false, "a request is still in flight on it");
  await c.clock.tick(60_000);
  await slow;
  assert.equal(c.clients[0].closed, true);
  c.api.close();
});

Deno.test("a client whose watch read data within the period is not probed, and its watches count as current", async () => {
  let push: ((text: string) => void) | undefined;
  const c = client((url) => {
    if (url.pathname === "/version") return Response.json({});
    return new Response(
      new ReadableStream({
        start(ctl) {
          push = (t) => ctl.enqueue(new TextEncoder().encode(t));
        },
      }),
    );
  });
  let current = 0;
  const it = c.api.watch("/api/v1/things", {}, signal(), undefined, () => current++)
    [Symbol.asyncIterator]();
  const first = it.next();
  await c.clock.tick(20_000);
  push!('{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"2"}}}\n');
  await first;
  await c.clock.tick(10_000);
  assert.equal(c.requests.filter((r) => r.path === "/version").length, 0, "read 10 s ago");
  assert.equal(current, 1);
  await c.clock.tick(30_000);
  assert.equal(c.requests.filter((r) => r.path === "/version").length, 1, "idle for 40 s");
  c.api.close();
});
