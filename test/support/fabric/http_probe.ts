/**
 * The test fabric's client: reads one JSON request per line on stdin,
 * `{"id":1,"host":"10.0.100.30","port":80,"timeoutMs":2000}` (an IPv6 host
 * without brackets), makes one HTTP GET on a new TCP connection (so every
 * request has its own source port), and writes one JSON result per line on
 * stdout.
 *
 * Usage (inside the client's namespace): deno run --allow-net=HOSTS http_probe.ts [MARKER]
 *
 * @module
 */

/** A request to the probe. */
export interface ProbeRequest {
  readonly id: number;
  readonly host: string;
  readonly port: number;
  readonly timeoutMs: number;
}

/** What one request did. */
export interface ProbeResult {
  readonly id: number;
  readonly ok: boolean;
  /** HTTP status, when a response came. */
  readonly status?: number;
  readonly body?: string;
  /** The connection's source port. */
  readonly localPort?: number;
  /** Error name and message, e.g. `ConnectionRefused: ...`. */
  readonly error?: string;
  readonly ms: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function probe(req: ProbeRequest): Promise<ProbeResult> {
  const t0 = performance.now();
  let conn: Deno.TcpConn | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      try {
        conn?.close();
      } catch {
        // Already closed.
      }
      reject(new Error(`TimedOut: no answer within ${req.timeoutMs} ms`));
    }, req.timeoutMs);
  });
  let localPort: number | undefined;
  const host = req.host.includes(":") ? `[${req.host}]` : req.host;
  try {
    const work = (async () => {
      conn = await Deno.connect({ hostname: req.host, port: req.port });
      localPort = conn.localAddr.port;
      await conn.write(
        encoder.encode(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
      );
      let text = "";
      const buf = new Uint8Array(4096);
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        text += decoder.decode(buf.subarray(0, n), { stream: true });
      }
      conn.close();
      return text;
    })();
    const text = await Promise.race([work, timeout]);
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
    const body = text.slice(text.indexOf("\r\n\r\n") + 4);
    return { id: req.id, ok: status === 200, status, body, localPort, ms: performance.now() - t0 };
  } catch (err) {
    const e = err as Error;
    return {
      id: req.id,
      ok: false,
      localPort,
      error: `${e.name}: ${e.message}`,
      ms: performance.now() - t0,
    };
  } finally {
    clearTimeout(timer);
  }
}

if (import.meta.main) {
  let buf = "";
  const out = Deno.stdout;
  for await (const chunk of Deno.stdin.readable) {
    buf += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const req = JSON.parse(buf.slice(0, nl)) as ProbeRequest;
      buf = buf.slice(nl + 1);
      const res = await probe(req);
      await out.write(encoder.encode(JSON.stringify(res) + "\n"));
    }
  }
}
