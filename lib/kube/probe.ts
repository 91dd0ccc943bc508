/**
 * The open watches of the API client and the liveness probe of their
 * connection. Deno's fetch sends no HTTP/2 pings, so while watches are open
 * a cheap request goes over the current client every period, unless a watch
 * read data on it within that period (as client-go pings only an idle
 * connection). An answer, even an error status, proves the connection alive
 * and the watches on it current; no answer replaces the client and ends
 * every watch on it, to be reopened over a new connection.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { ApiError } from "./errors.ts";
import type { Connections, Generation } from "./connection.ts";
import type { Clock, TimerId } from "../base/clock.ts";

const log = getLogger(["kube-gw", "api"]);

/** An open watch, for the probe. */
export interface OpenWatch {
  /** The client it runs over. */
  readonly gen: Generation;
  /** Runs when the probe proved its connection alive. */
  readonly current?: () => void;
  /** Ends it, when its connection is dead. */
  readonly abort: (reason: ApiError) => void;
}

/** More watches than this on one connection get a line in the log. */
const MANY_WATCHES = 50;

/** Options of {@linkcode LivenessProbe}. */
export interface LivenessProbeOptions {
  readonly clock: Clock;
  readonly connections: Connections;
  /** The server, for messages. */
  readonly server: string;
  /** The probe's period while watches are open; 0 disables. */
  readonly intervalMs: number;
  /** What the probe requests, for messages. */
  readonly path: string;
  /**
   * Sends the probe over the current client and resolves once it was
   * answered; throws {@linkcode ApiError} (with a status for an HTTP answer).
   */
  readonly send: () => Promise<void>;
}

/** Tracks the open watches and probes their connection while there are any. */
export class LivenessProbe {
  readonly #o: LivenessProbeOptions;
  readonly #watches = new Set<OpenWatch>();
  #timer: TimerId | undefined;
  #probing = false;
  #manyWarned = false;
  #stopped = false;

  constructor(options: LivenessProbeOptions) {
    this.#o = options;
  }

  /** A watch opened: the probe runs while any is open. */
  opened(w: OpenWatch): void {
    this.#watches.add(w);
    if (this.#watches.size > MANY_WATCHES && !this.#manyWarned) {
      this.#manyWarned = true;
      log.info(
        "{count} watches are open to {server}: over HTTP/2 they share one connection, and a server allows a bounded number of streams per connection (Go's default 250)",
        { count: this.#watches.size, server: this.#o.server },
      );
    }
    if (this.#timer === undefined && this.#o.intervalMs > 0 && !this.#stopped) {
      this.#timer = this.#o.clock.setInterval(() => this.#probe(), this.#o.intervalMs);
    }
  }

  /** A watch ended. */
  closed(w: OpenWatch): void {
    this.#watches.delete(w);
    if (this.#watches.size === 0) this.#stopTimer();
  }

  /** Stops probing for good. */
  stop(): void {
    this.#stopped = true;
    this.#stopTimer();
  }

  #stopTimer(): void {
    this.#o.clock.clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * One probe of the current client: skipped (alive) when a watch read data
   * on it within the period; else the request, whose answer proves it alive
   * and whose failure replaces it and ends its watches.
   */
  async #probe(): Promise<void> {
    if (this.#probing || this.#stopped) return;
    const gen = this.#o.connections.current;
    if (this.#o.clock.now() - gen.lastRead < this.#o.intervalMs) {
      // A watch read data on this client within the period (client-go pings only
      // after 30 s without a read): the connection is alive.
      this.#alive(gen);
      return;
    }
    this.#probing = true;
    try {
      await this.#o.send();
      this.#alive(gen);
    } catch (err) {
      if (err instanceof ApiError && err.status !== undefined) {
        // An HTTP answer, even an error: the connection carries requests.
        this.#alive(gen);
        return;
      }
      this.#dead(gen, `the liveness probe (GET ${this.#o.path}) failed: ${(err as Error).message}`);
    } finally {
      this.#probing = false;
    }
  }

  #alive(gen: Generation): void {
    for (const w of this.#watches) if (w.gen === gen) w.current?.();
  }

  #dead(gen: Generation, why: string): void {
    this.#o.connections.replace(gen, "probe", why);
    const dead = new ApiError(`connection to ${this.#o.server} is dead: ${why}`, undefined, {
      connection: true,
    });
    for (const w of [...this.#watches]) if (w.gen === gen) w.abort(dead);
  }
}
