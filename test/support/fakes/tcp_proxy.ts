/**
 * A TCP proxy on 127.0.0.1 in front of a server, for faults below HTTP that
 * the server itself cannot make: a black hole (connections stay open, nothing
 * is forwarded either way, as when the endpoint behind a ClusterIP dies
 * without a reset), on every connection or only on those open now, and cuts
 * of every connection at once or periodically (a load balancer that drops
 * long-lived connections). It counts connections accepted and open.
 *
 * @module
 */

/** Where to forward to. */
export interface ProxyTarget {
  readonly hostname?: string;
  readonly port: number;
}

interface Pair {
  readonly id: number;
  readonly client: Deno.TcpConn;
  readonly server: Deno.TcpConn;
  /** Forwarding paused until this resolves. */
  gate?: { promise: Promise<void>; open: () => void };
  closed: boolean;
}

/** The proxy. */
export class TcpProxy {
  readonly #listener: Deno.TcpListener;
  readonly #target: ProxyTarget;
  readonly #pairs = new Set<Pair>();
  readonly #accepting: Promise<void>;
  #blackholeNew = false;
  #seq = 0;
  #cutTimer?: ReturnType<typeof setInterval>;
  /** Connections accepted since start. */
  accepted = 0;

  private constructor(listener: Deno.TcpListener, target: ProxyTarget) {
    this.#listener = listener;
    this.#target = target;
    this.#accepting = this.#accept();
  }

  /** Listens on 127.0.0.1 (`port`, default any) and forwards to `target`. */
  static start(target: ProxyTarget, port = 0): TcpProxy {
    return new TcpProxy(Deno.listen({ hostname: "127.0.0.1", port }), target);
  }

  /** The port clients connect to. */
  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** Connections open now. */
  get open(): number {
    return this.#pairs.size;
  }

  async #accept(): Promise<void> {
    for await (const client of this.#listener) {
      this.accepted++;
      let server: Deno.TcpConn;
      try {
        server = await Deno.connect({
          hostname: this.#target.hostname ?? "127.0.0.1",
          port: this.#target.port,
        });
      } catch {
        try {
          client.close();
        } catch { /* already closed */ }
        continue;
      }
      client.setNoDelay(true);
      server.setNoDelay(true);
      const pair: Pair = { id: ++this.#seq, client, server, closed: false };
      if (this.#blackholeNew) pair.gate = gate();
      this.#pairs.add(pair);
      this.#pump(pair, client, server);
      this.#pump(pair, server, client);
    }
  }

  async #pump(pair: Pair, from: Deno.Conn, to: Deno.Conn): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      while (!pair.closed) {
        await passable(pair);
        const n = await from.read(buf);
        if (n === null) break;
        // Bytes that arrive during a black hole are held, as TCP retransmits them after it heals.
        await passable(pair);
        let off = 0;
        while (off < n) off += await to.write(buf.subarray(off, n));
      }
    } catch {
      // A reset or a cut: close both sides.
    }
    this.#close(pair);
  }

  #close(pair: Pair): void {
    if (pair.closed) return;
    pair.closed = true;
    pair.gate?.open();
    this.#pairs.delete(pair);
    for (const c of [pair.client, pair.server]) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
  }

  /**
   * Stops forwarding both ways while keeping sockets open: on the connections
   * open now and, unless `existingOnly`, on new ones too (accepted, never
   * answered).
   */
  blackhole(opts: { existingOnly?: boolean } = {}): void {
    for (const p of this.#pairs) p.gate ??= gate();
    this.#blackholeNew = !opts.existingOnly;
  }

  /** Forwards again on every connection (held bytes are delivered). */
  heal(): void {
    this.#blackholeNew = false;
    for (const p of this.#pairs) {
      const g = p.gate;
      p.gate = undefined;
      g?.open();
    }
  }

  /** Closes every connection now (both sides see the close). */
  cutAll(): number {
    const n = this.#pairs.size;
    for (const p of [...this.#pairs]) this.#close(p);
    return n;
  }

  /** Cuts every connection each `ms` (0 stops), as a load balancer with a connection lifetime. */
  cutEvery(ms: number): void {
    clearInterval(this.#cutTimer);
    this.#cutTimer = ms > 0 ? setInterval(() => this.cutAll(), ms) : undefined;
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    clearInterval(this.#cutTimer);
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    this.cutAll();
    await this.#accepting.catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Resolves when `pair` forwards again. */
async function passable(pair: Pair): Promise<void> {
  for (let g = pair.gate; g; g = pair.gate) await g.promise;
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((r) => open = r);
  return { promise, open };
}
