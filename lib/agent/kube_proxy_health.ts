/**
 * kube-proxy's health as a gate on announcements: the outcome of each poll of
 * its `/healthz` endpoint drives a small state machine, and the state says
 * whether the gate is open, why, and whether health is unknown. Also the
 * validation of `--kube-proxy-health`. Pure: the poller (HTTP, timer) sits in
 * the adapter and hands each outcome to {@linkcode stepHealth}.
 *
 * kube-proxy answers 200 when its rules are in sync, 503 when an update has
 * been pending past its health timeout, and either with `"nodeEligible":
 * false` in its JSON body when the node is being deleted or tainted for
 * removal.
 *
 * @module
 */

import type { KubeProxyPhase } from "./observer.ts";
import type { Clock } from "../base/clock.ts";
import { UsageError } from "../base/flags.ts";

/** The default health endpoint of kube-proxy. @default "http://127.0.0.1:10256/healthz" */
export const DEFAULT_KUBE_PROXY_HEALTH = "http://127.0.0.1:10256/healthz";
/** How often to poll. @default 2000 */
export const HEALTH_POLL_MS = 2000;
/** How long one poll may take before it counts as a timeout. @default 1000 */
export const HEALTH_TIMEOUT_MS = 1000;
/** Failed polls in a row that close the gate after kube-proxy has been healthy. @default 3 */
export const FAILURES_TO_CLOSE = 3;
/** Bytes of a response body read for `nodeEligible`; longer bodies are not parsed. */
export const MAX_HEALTH_BODY = 64 * 1024;

/** The outcome of one poll. */
export type PollOutcome =
  /** HTTP 200; `nodeEligible` is false only when the body says so. */
  | { readonly kind: "ok"; readonly nodeEligible: boolean }
  /** Any other HTTP status (503 and anything unexpected). */
  | { readonly kind: "unhealthy"; readonly status: number; readonly nodeEligible: boolean }
  /** Connection refused, reset, or any other transport error. */
  | { readonly kind: "refused" }
  /** No answer within {@linkcode HEALTH_TIMEOUT_MS}. */
  | { readonly kind: "timeout" };

/**
 * Classifies an HTTP answer. `nodeEligible` is false only when the body is a
 * JSON object whose `nodeEligible` is exactly `false`; a body that is not JSON
 * or too long leaves it true.
 */
export function classifyResponse(status: number, body: string): PollOutcome {
  let nodeEligible = true;
  if (body.length <= MAX_HEALTH_BODY) {
    try {
      const parsed: unknown = JSON.parse(body);
      if (
        typeof parsed === "object" && parsed !== null &&
        (parsed as Record<string, unknown>).nodeEligible === false
      ) {
        nodeEligible = false;
      }
    } catch {
      // Not JSON: only the status counts.
    }
  }
  return status === 200
    ? { kind: "ok", nodeEligible }
    : { kind: "unhealthy", status, nodeEligible };
}

/**
 * Where the state machine is: the observer's {@linkcode KubeProxyPhase}, which
 * lists and describes the phases; a closed gate after
 * {@linkcode FAILURES_TO_CLOSE} failed polls in a row is `unhealthy`.
 */
export type HealthPhase = KubeProxyPhase;

/** The health gate's state. */
export interface HealthState {
  readonly phase: HealthPhase;
  /** Failed polls in a row. */
  readonly failures: number;
  /** The last failed poll, for the reason text. */
  readonly lastFailure?: string;
  /** Whether announcements may go out. */
  readonly open: boolean;
  /** Open only because kube-proxy's health is unknown: warn, and say so in /readyz and a metric. */
  readonly unknown: boolean;
  /** One line: why the gate is open or closed. */
  readonly reason: string;
}

function describe(o: PollOutcome): string {
  switch (o.kind) {
    case "ok":
      return "answered 200";
    case "unhealthy":
      return `answered ${o.status}`;
    case "refused":
      return "refused the connection";
    case "timeout":
      return `did not answer within ${HEALTH_TIMEOUT_MS}ms`;
  }
}

function state(
  phase: HealthPhase,
  failures: number,
  lastFailure?: string,
): HealthState {
  return {
    phase,
    failures,
    ...(phase === "off" ? {} : { lastFailure }),
    open: phase === "off" || phase === "unknown" || phase === "healthy",
    unknown: phase === "unknown",
    reason: reasonText(
      phase,
      failures,
      lastFailure ? ` (last poll: kube-proxy ${lastFailure})` : "",
    ),
  };
}

/** One line for the gate in `phase`; `last` names the last failed poll, or is empty. */
function reasonText(phase: HealthPhase, failures: number, last: string): string {
  switch (phase) {
    case "off":
      return "kube-proxy health check off";
    case "waiting":
      return `waiting for kube-proxy to answer 200 once after a boot${last}`;
    case "unknown":
      return `kube-proxy health unknown: it has not answered 200 since start; keeping the addresses already announced${last}`;
    case "healthy":
      return failures === 0
        ? "kube-proxy healthy"
        : `kube-proxy healthy, ${failures} failed poll(s)${last}`;
    case "unhealthy":
      return `kube-proxy unhealthy: ${failures} failed polls in a row${last}`;
    case "ineligible":
      return "kube-proxy says the node is not eligible (nodeEligible: false): it is being removed";
  }
}

/** Options for {@linkcode initialHealth}. */
export interface InitialHealthOptions {
  /** The interface held managed addresses when the agent started (a restart, not a boot). */
  readonly startedWithAddresses: boolean;
  /** False for `--kube-proxy-health off`. @default true */
  readonly enabled?: boolean;
}

/** The state at start. */
export function initialHealth(options: InitialHealthOptions): HealthState {
  if (options.enabled === false) return state("off", 0);
  return state(options.startedWithAddresses ? "unknown" : "waiting", 0);
}

/**
 * The state after one poll. Rules:
 * - `nodeEligible: false` (in any answer) closes the gate at once;
 * - a 200 opens it (the announce hold-down then applies to what comes back);
 * - `waiting` (after a boot) stays closed until that first 200;
 * - `unknown` (started with addresses) stays open while kube-proxy does not
 *   answer (refused, timeout); three non-200 answers in a row close it, since
 *   kube-proxy is running and says its rules are stale;
 * - `healthy`: three failed polls of any kind in a row close the gate.
 */
export function stepHealth(prev: HealthState, outcome: PollOutcome): HealthState {
  if (prev.phase === "off") return prev;
  if ((outcome.kind === "ok" || outcome.kind === "unhealthy") && !outcome.nodeEligible) {
    return state("ineligible", prev.failures + 1, describe(outcome));
  }
  if (outcome.kind === "ok") return state("healthy", 0);
  const failures = prev.failures + 1;
  const what = describe(outcome);
  switch (prev.phase) {
    case "waiting":
      return state("waiting", failures, what);
    case "unknown":
      if (outcome.kind !== "unhealthy") return state("unknown", 0, what);
      return state(failures >= FAILURES_TO_CLOSE ? "unhealthy" : "unknown", failures, what);
    case "healthy":
    case "unhealthy":
      return state(failures >= FAILURES_TO_CLOSE ? "unhealthy" : "healthy", failures, what);
    case "ineligible":
      return state("ineligible", failures, what);
  }
}

/**
 * Parses `--kube-proxy-health`: an `http` or `https` URL, or `off`
 * (undefined). Any host is accepted, not only loopback: kube-proxy may bind
 * its health server to the node's address (`--healthz-bind-address`), and the
 * agent's `net` permission already reaches it. A URL with a user or password
 * is refused (it would be logged).
 *
 * @default "http://127.0.0.1:10256/healthz"
 * @throws {UsageError} with one line naming the flag.
 */
export function parseKubeProxyHealth(text: string | undefined): string | undefined {
  const raw = text ?? DEFAULT_KUBE_PROXY_HEALTH;
  const t = raw.trim();
  if (t === "off") return undefined;
  const bad = (what: string) =>
    new UsageError(
      `--kube-proxy-health: ${
        JSON.stringify(raw.length > 200 ? `${raw.slice(0, 200)}…` : raw)
      } ${what}`,
    );
  const unprintable = [...t].some((ch) => ch.charCodeAt(0) <= 0x20 || ch.charCodeAt(0) === 0x7f);
  if (t.length > 2048 || unprintable) throw bad("is not an http(s) URL or off");
  let url: URL;
  try {
    url = new URL(t);
  } catch (cause) {
    throw new UsageError(
      `--kube-proxy-health: ${JSON.stringify(t)} is not an http(s) URL or off`,
      { cause },
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw bad("is not an http(s) URL or off");
  }
  if (url.username !== "" || url.password !== "") {
    // Not echoed: the value holds a credential.
    throw new UsageError("--kube-proxy-health: the URL must not carry a user or password");
  }
  if (url.hostname === "") throw bad("has no host");
  return url.href;
}

/**
 * kube-proxy's health as the agent reads it (the poller of
 * `--kube-proxy-health`): it runs until its signal aborts and reports every
 * change of state.
 */
export interface HealthSource {
  /** Polls until `signal` aborts; never rejects for a failed poll. */
  run(signal: AbortSignal): Promise<void>;
  /** The state now (before the first poll: the initial state). */
  readonly state: HealthState;
}

/** What a {@linkcode HealthSource} is built from. */
export interface HealthSourceOptions {
  /** The health endpoint (validated). */
  readonly url: string;
  readonly clock: Clock;
  /** The interface held managed addresses at start (a restart, not a boot). */
  readonly startedWithAddresses: boolean;
  /** Called on every change of state. */
  onChange(state: HealthState): void;
}

/** Builds the {@linkcode HealthSource} for `--kube-proxy-health` (the adapter's constructor). */
export type HealthSourceFactory = (options: HealthSourceOptions) => HealthSource;
