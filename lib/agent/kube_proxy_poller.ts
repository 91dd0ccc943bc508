/**
 * The adapter that polls kube-proxy's health endpoint (`--kube-proxy-health`)
 * and feeds each outcome to the pure state machine of lib/agent/kube_proxy_health.ts:
 * one GET every {@linkcode HEALTH_POLL_MS} on the injected {@linkcode Clock},
 * each bounded by {@linkcode HEALTH_TIMEOUT_MS} (the body read included) and
 * by {@linkcode MAX_HEALTH_BODY} bytes of body. It tells its listener and the
 * observer when the gate's phase, openness or unknown-ness changes, and logs
 * one line per such transition, never one per poll.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type AgentObserver, quietObserver } from "./observer.ts";
import {
  classifyResponse,
  HEALTH_POLL_MS,
  HEALTH_TIMEOUT_MS,
  type HealthState,
  initialHealth,
  MAX_HEALTH_BODY,
  type PollOutcome,
  stepHealth,
} from "./kube_proxy_health.ts";
import { type Clock, sleep } from "../base/clock.ts";

const log = getLogger(["kube-gw", "kube-proxy-health"]);

/** The fetch the poller calls: `globalThis.fetch` or a test's script. */
export type FetchFn = (input: string, init: RequestInit) => Promise<Response>;

/** Options for {@linkcode KubeProxyHealthPoller}. */
export interface KubeProxyHealthPollerOptions {
  /** The health endpoint, as {@linkcode parseKubeProxyHealth} returned it. */
  readonly url: string;
  /** Polls and timeouts run on it (`systemClock` in the agent). */
  readonly clock: Clock;
  /** The interface held managed addresses at start (a restart, not a boot). */
  readonly startedWithAddresses: boolean;
  /** Called with the new state when the phase, `open` or `unknown` changes. */
  readonly onChange: (state: HealthState) => void;
  /** @default globalThis.fetch */
  readonly fetch?: FetchFn;
  /** Told the phase at start and at every change. @default quietObserver */
  readonly observer?: AgentObserver;
  /** @default HEALTH_POLL_MS (2 s) */
  readonly pollMs?: number;
  /** @default HEALTH_TIMEOUT_MS (1 s) */
  readonly timeoutMs?: number;
}

/**
 * Reads a body of at most `max` bytes; a longer one is read no further and
 * counts as empty (only the status counts then).
 */
async function boundedText(res: Response, max: number): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > max) return "";
      chunks.push(value);
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder().decode(bytes);
}

/** Polls kube-proxy's health endpoint and keeps the health gate's state. */
export class KubeProxyHealthPoller {
  readonly #o: KubeProxyHealthPollerOptions;
  readonly #fetch: FetchFn;
  readonly #observer: AgentObserver;
  #state: HealthState;
  #polls = 0;

  constructor(options: KubeProxyHealthPollerOptions) {
    this.#o = options;
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.#observer = options.observer ?? quietObserver;
    this.#state = initialHealth({ startedWithAddresses: options.startedWithAddresses });
  }

  /** The gate's current state. */
  get state(): HealthState {
    return this.#state;
  }

  /** Polls made so far. */
  get polls(): number {
    return this.#polls;
  }

  /**
   * Polls at once, then every poll interval (measured from the start of each
   * poll) until `signal` aborts; resolves then. Never throws otherwise.
   */
  async run(signal: AbortSignal): Promise<void> {
    const clock = this.#o.clock;
    const pollMs = this.#o.pollMs ?? HEALTH_POLL_MS;
    this.#observer.kubeProxyHealth(this.#state.phase);
    this.#logTransition();
    while (!signal.aborted) {
      const started = clock.now();
      const outcome = await this.#poll(signal);
      if (signal.aborted) break;
      this.#polls++;
      this.#step(outcome);
      try {
        await sleep(clock, Math.max(0, pollMs - (clock.now() - started)), signal);
      } catch {
        break;
      }
    }
  }

  #step(outcome: PollOutcome): void {
    const prev = this.#state;
    const next = stepHealth(prev, outcome);
    this.#state = next;
    if (next.phase === prev.phase && next.open === prev.open && next.unknown === prev.unknown) {
      log.debug("kube-proxy health poll: {reason}", { reason: next.reason });
      return;
    }
    this.#observer.kubeProxyHealth(next.phase);
    this.#logTransition();
    this.#o.onChange(next);
  }

  #logTransition(): void {
    const s = this.#state;
    const props = { url: this.#o.url, reason: s.reason };
    if (s.open && !s.unknown) {
      log.info("kube-proxy health gate open: {reason} ({url})", props);
    } else if (s.open) {
      log.warn(
        "kube-proxy health gate open only because health is unknown: {reason} ({url})",
        props,
      );
    } else if (s.phase === "waiting") {
      // Every boot starts here: expected, not a warning (a failure later is one).
      log.info("kube-proxy health gate closed until the first 200: {reason} ({url})", props);
    } else {
      log.warn("kube-proxy health gate closed, announcing nothing: {reason} ({url})", props);
    }
  }

  /** One GET, bounded in time (body included) and size, classified. */
  async #poll(signal: AbortSignal): Promise<PollOutcome> {
    const clock = this.#o.clock;
    const ac = new AbortController();
    let timedOut = false;
    const timer = clock.setTimeout(() => {
      timedOut = true;
      ac.abort(new DOMException("kube-proxy health poll timed out", "TimeoutError"));
    }, this.#o.timeoutMs ?? HEALTH_TIMEOUT_MS);
    const onAbort = () => ac.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      const res = await this.#fetch(this.#o.url, {
        signal: ac.signal,
        redirect: "manual",
        headers: { accept: "application/json" },
      });
      const body = await boundedText(res, MAX_HEALTH_BODY);
      if (timedOut) return { kind: "timeout" };
      return classifyResponse(res.status, body);
    } catch {
      return timedOut ? { kind: "timeout" } : { kind: "refused" };
    } finally {
      clock.clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    }
  }
}
