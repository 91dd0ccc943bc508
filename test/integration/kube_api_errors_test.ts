import assert from "node:assert/strict";
import { KubeApi } from "../../lib/kube/client.ts";
import { ApiError, ApiTlsError } from "../../lib/kube/errors.ts";
import { WatchLineTooLong } from "../../lib/kube/watch_stream.ts";

const fixture = (name: string) =>
  Deno.readTextFileSync(new URL(`../fixtures/${name}`, import.meta.url));

Deno.test("a wrong CA is reported as a TLS verification failure naming the CA source, not a dead server", async () => {
  const ac = new AbortController();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: fixture("server.crt"),
    key: fixture("server.key"),
    signal: ac.signal,
    onListen: () => {},
  }, () => Response.json({ items: [] }));
  const caSource = 'certificate-authority /etc/kube-gw/ca.crt of cluster "c" in kubeconfig /k';
  const api = new KubeApi({
    server: `https://127.0.0.1:${server.addr.port}`,
    caCerts: [fixture("other-ca.crt")],
    source: "test",
    caSource,
  });
  try {
    await assert.rejects(
      api.list("/api/v1/services", {}, new AbortController().signal),
      (e: unknown) =>
        e instanceof ApiTlsError &&
        e.message.startsWith(
          `TLS verification of https://127.0.0.1:${server.addr.port} failed (`,
        ) &&
        /UnknownIssuer/.test(e.message) && e.message.includes(caSource),
    );
  } finally {
    api.close();
    ac.abort();
    await server.finished;
  }
  // The right CA works against the same kind of server.
  const ac2 = new AbortController();
  const good = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: fixture("server.crt"),
    key: fixture("server.key"),
    signal: ac2.signal,
    onListen: () => {},
  }, () => Response.json({ items: [] }));
  const ok = new KubeApi({
    server: `https://127.0.0.1:${good.addr.port}`,
    caCerts: [fixture("ca.crt")],
    source: "t",
  });
  try {
    assert.deepEqual(await ok.list("/api/v1/services", {}, new AbortController().signal), {
      items: [],
    });
  } finally {
    ok.close();
    ac2.abort();
    await good.finished;
  }
});

Deno.test("a closed port is reported as a connection failure with the reason, not as TLS", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const api = new KubeApi({
    server: `https://127.0.0.1:${port}`,
    caCerts: [fixture("ca.crt")],
    source: "t",
    caSource: "x",
  });
  try {
    await assert.rejects(
      api.list("/api/v1/services", {}, new AbortController().signal),
      (e: unknown) =>
        e instanceof ApiError && !(e instanceof ApiTlsError) &&
        e.message.startsWith(`Cannot reach https://127.0.0.1:${port}: `) &&
        /refused/i.test(e.message),
    );
  } finally {
    api.close();
  }
});

Deno.test("a token an HTTP header cannot carry fails the request without showing it", async () => {
  const api = new KubeApi({
    server: "https://127.0.0.1:1",
    token: () => "s3cret\r\nX: y",
    source: "t",
  });
  try {
    await assert.rejects(
      api.list("/api/v1/services", {}, new AbortController().signal),
      (e: unknown) =>
        e instanceof ApiError && !e.message.includes("s3cret") && e.cause === undefined,
    );
  } finally {
    api.close();
  }
});

Deno.test("a watch line past the bound ends the watch with WatchLineTooLong after the events before it, without reading the rest", async () => {
  const ac = new AbortController();
  let sent = 0;
  const mib = new Uint8Array(1024 * 1024).fill(0x20);
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: ac.signal,
    onListen: () => {},
  }, () => {
    const first = new TextEncoder().encode(
      JSON.stringify({ type: "ADDED", object: { metadata: { name: "a", namespace: "d" } } }) +
        "\n[",
    );
    let started = false;
    return new Response(
      new ReadableStream<Uint8Array>({
        pull(c) {
          if (!started) {
            started = true;
            return c.enqueue(first);
          }
          if (sent === 64) return c.close();
          sent++;
          c.enqueue(mib);
        },
      }, { highWaterMark: 0 }),
    );
  });
  const api = new KubeApi({ server: `http://127.0.0.1:${server.addr.port}`, source: "t" });
  const events: string[] = [];
  try {
    await assert.rejects(
      async () => {
        for await (const ev of api.watch("/api/v1/services", {}, new AbortController().signal)) {
          events.push(ev.type);
        }
      },
      (e: unknown) => e instanceof WatchLineTooLong && e instanceof ApiError,
    );
    assert.deepEqual(events, ["ADDED"]);
    // 16 MiB is the bound; a few more MiB may be in flight in buffers, not the whole 64 MiB.
    assert.ok(sent < 40, `the server got to send ${sent} MiB`);
  } finally {
    api.close();
    ac.abort();
    await server.finished.catch(() => {});
  }
});
