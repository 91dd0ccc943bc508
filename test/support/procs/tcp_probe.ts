/**
 * A TCP listener and a TCP client for tests that run inside network
 * namespaces (`ip netns exec NS deno run ...`): the listener answers every
 * connection with its name and closes; the client makes several connections
 * one after another and prints, as one JSON line, what each saw: the name read, or the
 * kind of failure (`refused`, `host_unreachable`, `net_unreachable`,
 * `invalid`, `denied`, `timeout`, or `error: TEXT`).
 *
 * Usage:
 *   deno run --allow-net tcp_probe.ts listen PORT NAME
 *   deno run --allow-net tcp_probe.ts connect TIMEOUT_MS HOST:PORT [HOST:PORT...]
 *
 * @module
 */

/** What one connection saw. */
export type ProbeOutcome =
  | `connected:${string}`
  | "refused"
  | "host_unreachable"
  | "net_unreachable"
  | "invalid"
  | "denied"
  | "timeout"
  | `error: ${string}`;

/** Names a failed connect by its errno, as the client saw it. */
export function classifyConnectError(err: unknown): ProbeOutcome {
  if (err instanceof Deno.errors.ConnectionRefused) return "refused";
  const message = (err as Error)?.message ?? String(err);
  const code = /os error (\d+)/.exec(message)?.[1];
  switch (code) {
    case "111":
      return "refused";
    case "113":
      return "host_unreachable";
    case "101":
      return "net_unreachable";
    case "22":
      return "invalid";
    case "13":
    case "1":
      return "denied";
    case "110":
      return "timeout";
  }
  return `error: ${message}`;
}

async function probe(target: string, timeoutMs: number): Promise<ProbeOutcome> {
  const cut = target.lastIndexOf(":");
  const hostname = target.slice(0, cut).replace(/^\[|\]$/g, "");
  const port = Number(target.slice(cut + 1));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<ProbeOutcome>((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  const attempt = (async (): Promise<ProbeOutcome> => {
    let conn: Deno.TcpConn;
    try {
      conn = await Deno.connect({ hostname, port });
    } catch (err) {
      return classifyConnectError(err);
    }
    try {
      const buf = new Uint8Array(100);
      const n = await conn.read(buf);
      return `connected:${new TextDecoder().decode(buf.subarray(0, n ?? 0)).trim()}`;
    } catch (err) {
      return `error: ${(err as Error).message}`;
    } finally {
      conn.close();
    }
  })();
  try {
    return await Promise.race([attempt, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

if (import.meta.main) {
  const [mode, ...args] = Deno.args;
  if (mode === "listen") {
    const [port, name] = args;
    // "::" takes IPv4 as well (net.ipv6.bindv6only is 0 in a new namespace).
    const listener = Deno.listen({ hostname: "::", port: Number(port) });
    console.log("listening");
    for await (const conn of listener) {
      conn.write(new TextEncoder().encode(`${name}\n`)).catch(() => {}).finally(() => conn.close());
    }
  } else if (mode === "connect") {
    const [timeoutMs, ...targets] = args;
    // One after another: two ICMP errors the router sends at the same moment can lose one.
    const outcomes: ProbeOutcome[] = [];
    for (const t of targets) outcomes.push(await probe(t, Number(timeoutMs)));
    console.log(JSON.stringify(outcomes));
    // A connect still pending after its timeout must not keep the process.
    Deno.exit(0);
  } else {
    console.error("usage: tcp_probe.ts listen PORT NAME | connect TIMEOUT_MS HOST:PORT...");
    Deno.exit(2);
  }
}
