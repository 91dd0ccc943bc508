/**
 * The HTTP side of the fake: authentication, injected faults, then LIST
 * (paged, with label and field selectors), GET, WATCH, POST, PUT, PATCH
 * (merge patch) and DELETE on the resources of `resources.ts`, plus
 * `/version`, `/healthz`, `/livez` and `/readyz`. Every request is logged
 * with its connection before it is answered.
 *
 * @module
 */

import { type Faults, malformedBody } from "./faults.ts";
import { apiVersion, type ResourceName, type Route, route } from "./resources.ts";
import { type Matcher, matcher } from "./selectors.ts";
import * as S from "./status.ts";
import { itemText, type Store } from "./store.ts";
import type { Handler, IncomingRequest, Reply } from "./transport.ts";
import type { Tokens } from "./auth.ts";
import type { Watches } from "./watch.ts";
import type { Writer } from "./writes.ts";

/** One request as the server saw it. */
export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Record<string, string>;
  readonly watch: boolean;
  /** `performance.now()` when it arrived. */
  readonly at: number;
  /** `address:port` of its connection. */
  readonly connection: string;
  /** `list`, `watch`, `get`, `create`, `update`, `patch`, `delete` or `other`. */
  readonly verb: string;
  /** The resource, namespace, object name and subresource addressed, when it is one the fake serves. */
  readonly resource?: ResourceName;
  readonly namespace?: string;
  readonly name?: string;
  readonly subresource?: string;
  /** The HTTP status answered; 0 while unanswered. */
  code: number;
  /** The JSON body of a write, parsed (undefined if not JSON). */
  body?: unknown;
}

/** How the handler behaves; the fake's options, resolved. */
export interface HandlerOptions {
  goneAs: "event" | "status";
  tooLargeAs: "event" | "status";
  /** How long a resourceVersion above the current one is waited for before 504. */
  tooLargeWaitMs: number;
  /** Continue tokens expire after this long; 0 never (only by compaction or on demand). */
  continueTtlMs: number;
  requireClientCert: boolean;
}

/** State the handler works on. */
export interface HandlerState {
  readonly store: Store;
  readonly writer: Writer;
  readonly watches: Watches;
  readonly faults: Faults;
  readonly tokens: Tokens;
  readonly opts: HandlerOptions;
  readonly requests: SeenRequest[];
  /** Every connection that made a request. */
  readonly connections: Set<string>;
  /** Requests held unanswered: call to release. */
  readonly held: Set<() => void>;
  /** Stall mode of the original fake: `headers` holds watches, `body` stalls them. */
  stall: false | "headers" | "body";
  /** Bumped to expire every continue token issued before. */
  continueEpoch: number;
  onRequest?: (r: SeenRequest) => void;
}

const JSON_HEADERS = { "content-type": "application/json" };

function json(code: number, body: unknown, headers: Record<string, string> = {}): Reply {
  return { status: code, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) };
}

function statusReply(s: S.StatusBody, headers: Record<string, string> = {}): Reply {
  return json(s.code, s, headers);
}

const CUT: Reply = {
  status: 500,
  open: (sink) => {
    sink.cut();
    return () => {};
  },
};

function verbOf(method: string, r: Route | undefined, watch: boolean): string {
  if (!r) return "other";
  switch (method) {
    case "GET":
      return watch ? "watch" : r.object ? "get" : "list";
    case "POST":
      return "create";
    case "PUT":
      return "update";
    case "PATCH":
      return "patch";
    case "DELETE":
      return "delete";
  }
  return "other";
}

interface ContinueToken {
  readonly rv: number;
  readonly start: string;
  readonly epoch: number;
  readonly issued: number;
}

function encodeContinue(t: ContinueToken): string {
  return btoa(
    JSON.stringify({
      v: "meta.k8s.io/v1",
      rv: t.rv,
      start: `${t.start}\u0000`,
      e: t.epoch,
      t: t.issued,
    }),
  );
}

function decodeContinue(text: string): ContinueToken | undefined {
  try {
    const t = JSON.parse(atob(text)) as Record<string, unknown>;
    if (t.v !== "meta.k8s.io/v1" || typeof t.rv !== "number" || typeof t.start !== "string") {
      return undefined;
    }
    return {
      rv: t.rv,
      start: t.start.endsWith("\u0000") ? t.start.slice(0, -1) : t.start,
      epoch: Number(t.e ?? 0),
      issued: Number(t.t ?? 0),
    };
  } catch {
    return undefined;
  }
}

/** Builds the request handler over `st`. */
export function apiHandler(st: HandlerState): Handler {
  /** Waits until the store reaches `rv` or `ms` pass; true if it did. */
  const waitFor = (rv: number, ms: number, signal: AbortSignal): Promise<boolean> => {
    if (st.store.rv >= rv) return Promise.resolve(true);
    if (ms <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        unsubscribe();
        signal.removeEventListener("abort", onAbort);
        resolve(ok);
      };
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), ms);
      const unsubscribe = st.store.subscribe(() => {
        if (st.store.rv >= rv) done(true);
      });
      signal.addEventListener("abort", onAbort);
    });
  };

  /** A reply that never comes, until released or the client leaves. */
  const hold = (req: IncomingRequest): Promise<Reply> =>
    new Promise((resolve) => {
      const release = () => {
        st.held.delete(release);
        resolve(CUT);
      };
      st.held.add(release);
      req.signal.addEventListener("abort", release, { once: true });
    });

  const list = (r: Route, q: URLSearchParams, match: Matcher, path: string): Reply => {
    const t = r.type;
    const listKind = `${t.kind}List`;
    const malformed = st.faults.takeMalformed(path);
    if (malformed) {
      return {
        status: 200,
        headers: JSON_HEADERS,
        body: malformedBody(malformed, listKind, apiVersion(t), String(st.store.rv)),
      };
    }
    const limit = Number(q.get("limit") ?? 0);
    let after = "";
    let listRv = st.store.rv;
    const cont = q.get("continue");
    if (cont) {
      const token = decodeContinue(cont);
      if (!token) return statusReply(S.badRequest(`continue key is not valid: ${cont}`));
      const ttl = st.opts.continueTtlMs;
      if (
        token.rv < st.store.compactedBelow || token.epoch < st.continueEpoch ||
        (ttl > 0 && Date.now() - token.issued > ttl)
      ) {
        const next = encodeContinue({
          rv: -1,
          start: token.start,
          epoch: st.continueEpoch,
          issued: Date.now(),
        });
        return statusReply(S.continueExpired(next));
      }
      after = token.start;
      listRv = token.rv;
    }
    const keys = st.store.sortedKeys(r.name);
    const prefix = r.namespace ? `${r.namespace}/` : "";
    // A namespace is one contiguous range of keys, as in etcd: start at it, or after the token's key.
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (after ? keys[mid] <= after : keys[mid] < prefix) lo = mid + 1;
      else hi = mid;
    }
    const items: string[] = [];
    let last = "";
    let more = false;
    for (let i = lo; i < keys.length; i++) {
      if (prefix && !keys[i].startsWith(prefix)) break;
      const obj = st.store.byKey(r.name, keys[i])!;
      if (!match(obj)) continue;
      if (limit > 0 && items.length >= limit) {
        more = true;
        break;
      }
      items.push(itemText(obj));
      last = keys[i];
    }
    const metadata: Record<string, unknown> = { resourceVersion: String(listRv) };
    if (more) {
      metadata.continue = encodeContinue({
        rv: listRv,
        start: last,
        epoch: st.continueEpoch,
        issued: Date.now(),
      });
    }
    return {
      status: 200,
      headers: JSON_HEADERS,
      body: `{"kind":"${listKind}","apiVersion":"${apiVersion(t)}","metadata":${
        JSON.stringify(metadata)
      },"items":[${items.join(",")}]}`,
    };
  };

  const watch = (r: Route, q: URLSearchParams, match: Matcher, req: IncomingRequest): Reply => {
    const rvText = q.get("resourceVersion");
    const from = rvText && rvText !== "0" ? Number(rvText) : undefined;
    const gone = from !== undefined && from < st.store.compactedBelow;
    const tooLarge = from !== undefined && from > st.store.rv;
    if (gone && st.opts.goneAs === "status") {
      return statusReply(S.tooOldResourceVersion(from, st.store.compactedBelow));
    }
    if (tooLarge && st.opts.tooLargeAs === "status") {
      return statusReply(S.tooLargeResourceVersion(from, st.store.rv));
    }
    const timeout = Number(q.get("timeoutSeconds") ?? 0);
    return {
      status: 200,
      headers: JSON_HEADERS,
      open: (sink) => {
        if (gone || tooLarge) {
          const s = gone
            ? S.tooOldResourceVersion(from!, st.store.compactedBelow)
            : S.tooLargeResourceVersion(from!, st.store.rv);
          sink.write(JSON.stringify({ type: "ERROR", object: s }) + "\n");
          sink.end();
          return () => {};
        }
        const w = st.watches.open({
          resource: r.name,
          namespace: r.namespace,
          match,
          bookmarks: q.get("allowWatchBookmarks") === "true",
          connection: req.connection,
          from,
          timeoutSeconds: timeout > 0 ? timeout : undefined,
        }, sink);
        if (st.stall === "body" || st.faults.wedged.has(req.connection)) w.stalled = true;
        return () => st.watches.drop(w);
      },
    };
  };

  const readBody = async (req: IncomingRequest, seen: SeenRequest): Promise<unknown> => {
    const text = await req.text();
    if (text === "") return undefined;
    try {
      seen.body = JSON.parse(text);
      return seen.body;
    } catch {
      throw new SyntaxError("the body of the request is not valid JSON");
    }
  };

  const write = async (
    r: Route,
    req: IncomingRequest,
    seen: SeenRequest,
  ): Promise<Reply> => {
    const t = r.type;
    if (r.subresource && (r.subresource !== "status" || !t.statusSubresource)) {
      return statusReply(S.noSuchPath());
    }
    let body: unknown;
    try {
      body = await readBody(req, seen);
    } catch (err) {
      return statusReply(S.badRequest((err as Error).message));
    }
    const ns = r.namespace ?? "";
    let result;
    if (req.method === "POST" && !r.object && !r.subresource) {
      result = st.writer.create(r.name, ns, body);
    } else if (req.method === "PUT" && r.object) {
      result = st.writer.update(r.name, ns, r.object, body, { subresource: r.subresource });
    } else if (req.method === "PATCH" && r.object) {
      const type = (req.headers.get("content-type") ?? "").split(";")[0].trim();
      if (type !== "application/merge-patch+json") {
        return statusReply(S.unsupportedMediaType(type));
      }
      result = st.writer.patch(r.name, ns, r.object, body, { subresource: r.subresource });
    } else if (req.method === "DELETE" && r.object && !r.subresource) {
      const pre = (body as { preconditions?: Record<string, unknown> } | undefined)
        ?.preconditions;
      result = st.writer.delete(r.name, ns, r.object, pre);
    } else {
      return statusReply(S.methodNotAllowed());
    }
    if (!result.ok) return statusReply(result.status);
    return json(result.code, result.object);
  };

  const answer = async (req: IncomingRequest, seen: SeenRequest, r: Route | undefined) => {
    const path = req.url.pathname;
    if (st.faults.wedged.has(req.connection) || st.faults.hangs(path)) return hold(req);
    if (st.opts.requireClientCert && !req.clientCertOk) return statusReply(S.unauthorized());
    if (!st.tokens.check(req.headers.get("authorization"))) return statusReply(S.unauthorized());
    const retryAfter = st.faults.takeThrottle(path);
    if (retryAfter !== undefined) {
      return statusReply(S.tooManyRequests(retryAfter), { "retry-after": String(retryAfter) });
    }
    const failure = st.faults.takeFailure();
    if (failure !== undefined) return statusReply(S.injected(failure));
    if (path === "/version") {
      return json(200, {
        major: "1",
        minor: "34",
        gitVersion: "v1.34.0-fake",
        platform: "linux/amd64",
      });
    }
    if (path === "/healthz" || path === "/livez" || path === "/readyz") {
      return { status: 200, headers: { "content-type": "text/plain" }, body: "ok" };
    }
    if (!r) return statusReply(S.noSuchPath());
    const q = req.url.searchParams;
    if (req.method === "GET" && !r.object) {
      let match: Matcher;
      try {
        match = matcher(q.get("labelSelector"), q.get("fieldSelector"));
      } catch (err) {
        return statusReply(S.badRequest((err as Error).message));
      }
      const rvText = q.get("resourceVersion");
      if (rvText && !/^\d+$/.test(rvText)) {
        return statusReply(
          S.badRequest(`resourceVersion: Invalid value: "${rvText}": must be a number`),
        );
      }
      const rv = rvText ? Number(rvText) : 0;
      if (rv > st.store.rv) {
        // The watch cache waits for a resourceVersion it has not reached, then gives up.
        await waitFor(rv, st.opts.tooLargeWaitMs, req.signal);
        if (rv > st.store.rv && !seen.watch) {
          return statusReply(S.tooLargeResourceVersion(rv, st.store.rv));
        }
      }
      if (seen.watch) {
        if (st.stall === "headers") return hold(req);
        return watch(r, q, match, req);
      }
      return list(r, q, match, path);
    }
    if (req.method === "GET") {
      if (r.subresource && (r.subresource !== "status" || !r.type.statusSubresource)) {
        return statusReply(S.noSuchPath());
      }
      const obj = st.store.get(r.name, r.namespace ?? "", r.object!);
      return obj
        ? json(200, obj)
        : statusReply(S.notFound(r.type.resource, r.type.group, r.object!));
    }
    if (!r.namespace && !r.type.clusterScoped) return statusReply(S.methodNotAllowed());
    return write(r, req, seen);
  };

  return async (req) => {
    const q = req.url.searchParams;
    const watching = q.get("watch") === "true" || q.get("watch") === "1";
    const r = route(req.url.pathname);
    const seen: SeenRequest = {
      method: req.method,
      path: req.url.pathname,
      query: Object.fromEntries(q),
      watch: watching,
      at: performance.now(),
      connection: req.connection,
      verb: verbOf(req.method, r, watching),
      resource: r?.name,
      namespace: r?.namespace,
      name: r?.object,
      subresource: r?.subresource,
      code: 0,
    };
    st.requests.push(seen);
    st.connections.add(req.connection);
    st.onRequest?.(seen);
    const reply = await answer(req, seen, r);
    seen.code = reply.status;
    return reply;
  };
}
