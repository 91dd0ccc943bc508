/**
 * Leader election on a `coordination.k8s.io/v1` Lease, the pure part: reading
 * a Lease, and deciding each retry period what to write, with client-go's
 * semantics (k8s.io/client-go/tools/leaderelection):
 *
 * - A Lease held by another identity is expired when the local time at which
 *   this process last saw its record change, plus the record's
 *   `leaseDurationSeconds`, has passed. The remote `renewTime` is never
 *   compared with the local clock (clocks of two hosts differ).
 * - A Lease without a holder (released) may be taken at once.
 * - A leader renews every retry period; when it has not renewed for the renew
 *   deadline (shorter than the lease duration) it stops leading, so it stops
 *   writing before anyone else may take the Lease. It also stops at once when
 *   the Lease names another holder.
 * - A leader that stops cleanly releases the Lease (holder emptied,
 *   `leaseDurationSeconds: 1`), so a standby takes over at its next retry.
 *
 * The elector (`elector.ts`) calls {@linkcode nextLeaseAction} every retry
 * period with the Lease it just read (or `undefined` when there is none),
 * writes the body of the action (create, or update with the read
 * resourceVersion as precondition), and calls {@linkcode leaseWritten} when
 * the write succeeded.
 *
 * @module
 */

import { isObject, objectName } from "../../base/shape.ts";

/** What kube-gw keeps of a Lease. */
export interface LeaseRecord {
  readonly namespace: string;
  readonly name: string;
  readonly resourceVersion: string;
  /** Empty or absent: nobody holds the Lease. */
  readonly holderIdentity?: string;
  readonly leaseDurationSeconds?: number;
  /** MicroTime texts as the API returns them; compared, never parsed. */
  readonly acquireTime?: string;
  readonly renewTime?: string;
  readonly leaseTransitions: number;
}

/** client-go's timings, in milliseconds. */
export interface LeaseTimings {
  /** How long a standby waits after the last change it saw. @default 15000 */
  readonly leaseDurationMs: number;
  /** How long a leader may go without renewing before it stops. @default 10000 */
  readonly renewDeadlineMs: number;
  /** How often every candidate reads and writes the Lease. @default 2000 */
  readonly retryPeriodMs: number;
}

/** The defaults of client-go's leader election. */
export const DEFAULT_TIMINGS: LeaseTimings = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
};

/**
 * The renew deadline must exceed the retry period times this (client-go's
 * `JitterFactor`, which it also checks the timings with).
 */
const MIN_RENEW_DEADLINE_IN_RETRY_PERIODS = 1.2;

/**
 * Checks timings as client-go does: lease duration > renew deadline >
 * 1.2 × retry period > 0, lease duration a whole number of seconds.
 *
 * @throws {RangeError} naming the timing at fault.
 */
export function checkTimings(t: LeaseTimings): void {
  if (!(t.retryPeriodMs > 0)) throw new RangeError("retry period must be positive");
  if (!(t.renewDeadlineMs > MIN_RENEW_DEADLINE_IN_RETRY_PERIODS * t.retryPeriodMs)) {
    throw new RangeError(
      `renew deadline must be longer than ${MIN_RENEW_DEADLINE_IN_RETRY_PERIODS} times the retry period`,
    );
  }
  if (!(t.leaseDurationMs > t.renewDeadlineMs)) {
    throw new RangeError("lease duration must be longer than the renew deadline");
  }
  if (t.leaseDurationMs % 1000 !== 0) {
    throw new RangeError("lease duration must be a whole number of seconds");
  }
}

const MAX_TEXT = 256;

function text(v: unknown): string | undefined {
  return typeof v === "string" && v.length <= MAX_TEXT ? v : undefined;
}

function count(v: unknown, max: number): number | undefined {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= max ? v : undefined;
}

/**
 * Decodes a Lease object from the API. Fields of the wrong type or too long
 * read as absent (so a broken Lease counts as expired or free, never as held
 * forever by garbage).
 *
 * @throws {ShapeError} when metadata, its name or namespace is missing.
 */
export function decodeLease(obj: unknown): LeaseRecord {
  const { namespace, name } = objectName(obj, "Lease");
  const o = obj as Record<string, unknown>;
  const meta = o.metadata as Record<string, unknown>;
  const spec = isObject(o.spec) ? o.spec : {};
  return {
    namespace,
    name,
    resourceVersion: text(meta.resourceVersion) ?? "",
    holderIdentity: text(spec.holderIdentity) || undefined,
    leaseDurationSeconds: count(spec.leaseDurationSeconds, 2 ** 31 - 1),
    acquireTime: text(spec.acquireTime),
    renewTime: text(spec.renewTime),
    leaseTransitions: count(spec.leaseTransitions, 2 ** 31 - 1) ?? 0,
  };
}

/** What one candidate knows between two retries. Start from {@linkcode INITIAL_ELECTION}. */
export interface ElectionState {
  /** The last Lease record seen (its spec fields). */
  readonly observed?: LeaseRecord;
  /** Local time (ms) at which the observed record last changed. */
  readonly observedAt: number;
  /** Whether this process leads (and may write). */
  readonly leading: boolean;
  /** Local time (ms) of the last successful create, acquire or renew. */
  readonly lastRenewAt?: number;
}

/** The state of a candidate that has seen nothing yet. */
export const INITIAL_ELECTION: ElectionState = { observedAt: 0, leading: false };

/** A Lease to write (create, or update with `metadata.resourceVersion` as precondition). */
export interface LeaseBody {
  readonly apiVersion: "coordination.k8s.io/v1";
  readonly kind: "Lease";
  readonly metadata: {
    readonly namespace: string;
    readonly name: string;
    readonly resourceVersion?: string;
  };
  readonly spec: {
    readonly holderIdentity: string;
    readonly leaseDurationSeconds: number;
    readonly acquireTime: string;
    readonly renewTime: string;
    readonly leaseTransitions: number;
  };
}

/** What to do this retry period. */
export type LeaseAction =
  /** No Lease exists: create it (POST); on 409 someone else was faster. */
  | { readonly kind: "create"; readonly body: LeaseBody }
  /** The Lease is free or expired: take it (PUT with the read resourceVersion). */
  | { readonly kind: "acquire"; readonly body: LeaseBody }
  /** We hold it: renew it (PUT with the read resourceVersion). */
  | { readonly kind: "renew"; readonly body: LeaseBody }
  /** Another holder's Lease is still valid: wait; it expires at `expiresAt` (local ms) unless renewed. */
  | { readonly kind: "standby"; readonly holder: string; readonly expiresAt: number }
  /** We led but must stop writing now (renew deadline passed, or Lease taken). */
  | { readonly kind: "stop"; readonly why: "renew_deadline" | "lost" }
  /** Stopping cleanly while holding: release (PUT with the read resourceVersion). */
  | { readonly kind: "release"; readonly body: LeaseBody }
  /** Stopping and not holding: nothing to write. */
  | { readonly kind: "none" };

/** Where the Lease lives and who we are. */
export interface LeaseTarget {
  /** @default "kube-system" (`--lease-namespace`) */
  readonly namespace: string;
  /** @default "kube-gw-controller" */
  readonly name: string;
  /** This process's holder identity; see {@linkcode holderIdentity}. */
  readonly identity: string;
}

/** Formats local time as a Kubernetes MicroTime (`2026-05-14T10:00:00.000000Z`). */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

function sameSpec(a: LeaseRecord | undefined, b: LeaseRecord | undefined): boolean {
  if (!a || !b) return a === b;
  return a.holderIdentity === b.holderIdentity &&
    a.leaseDurationSeconds === b.leaseDurationSeconds && a.acquireTime === b.acquireTime &&
    a.renewTime === b.renewTime && a.leaseTransitions === b.leaseTransitions;
}

function body(
  target: LeaseTarget,
  lease: LeaseRecord | undefined,
  spec: LeaseBody["spec"],
): LeaseBody {
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: {
      namespace: target.namespace,
      name: target.name,
      ...(lease ? { resourceVersion: lease.resourceVersion } : {}),
    },
    spec,
  };
}

/**
 * Decides what to write this retry period, and the state to keep.
 *
 * @param lease the Lease as just read; `undefined` when it does not exist
 * @param now local time in ms
 * @param options.stopping the process is shutting down cleanly
 * @default timings {@linkcode DEFAULT_TIMINGS}
 */
export function nextLeaseAction(
  lease: LeaseRecord | undefined,
  state: ElectionState,
  now: number,
  target: LeaseTarget,
  timings: LeaseTimings = DEFAULT_TIMINGS,
  options: { readonly stopping?: boolean } = {},
): { readonly action: LeaseAction; readonly state: ElectionState } {
  const observed = sameSpec(lease, state.observed) ? state : {
    ...state,
    observed: lease,
    observedAt: now,
  };
  const holder = lease?.holderIdentity;
  const ours = holder === target.identity;
  const durationS = Math.round(timings.leaseDurationMs / 1000);
  const stamp = microTime(now);
  /** The spec that makes (or keeps) this process the holder, renewed now. */
  const held = (acquireTime: string, leaseTransitions: number) => ({
    holderIdentity: target.identity,
    leaseDurationSeconds: durationS,
    acquireTime,
    renewTime: stamp,
    leaseTransitions,
  });

  if (options.stopping) {
    const next = { ...observed, leading: false };
    if (!lease || !ours) return { action: { kind: "none" }, state: next };
    return {
      action: {
        kind: "release",
        body: body(target, lease, {
          holderIdentity: "",
          leaseDurationSeconds: 1,
          acquireTime: stamp,
          renewTime: stamp,
          leaseTransitions: lease.leaseTransitions,
        }),
      },
      state: next,
    };
  }
  if (state.leading) {
    if (renewDeadlinePassed(state, now, timings)) {
      return {
        action: { kind: "stop", why: "renew_deadline" },
        state: { ...observed, leading: false },
      };
    }
    if (lease && !ours) {
      return { action: { kind: "stop", why: "lost" }, state: { ...observed, leading: false } };
    }
  }
  if (!lease) {
    return {
      action: {
        kind: "create",
        body: body(target, undefined, held(stamp, 0)),
      },
      state: observed,
    };
  }
  if (ours) {
    return {
      action: {
        kind: "renew",
        body: body(target, lease, held(lease.acquireTime ?? stamp, lease.leaseTransitions)),
      },
      state: observed,
    };
  }
  if (holder) {
    const expiresAt = observed.observedAt + (lease.leaseDurationSeconds ?? 0) * 1000;
    if (expiresAt > now) {
      return { action: { kind: "standby", holder, expiresAt }, state: observed };
    }
  }
  return {
    action: {
      kind: "acquire",
      body: body(target, lease, held(stamp, lease.leaseTransitions + 1)),
    },
    state: observed,
  };
}

/**
 * The state after the write of `action` succeeded at local time `now`:
 * create, acquire and renew make (or keep) this process the leader; release
 * ends its term. `resourceVersion` is the one the API returned.
 */
export function leaseWritten(
  state: ElectionState,
  action: LeaseAction,
  now: number,
  resourceVersion: string,
): ElectionState {
  if (action.kind === "create" || action.kind === "acquire" || action.kind === "renew") {
    const b = action.body;
    const observed: LeaseRecord = {
      namespace: b.metadata.namespace,
      name: b.metadata.name,
      resourceVersion,
      ...b.spec,
    };
    return { observed, observedAt: now, leading: true, lastRenewAt: now };
  }
  if (action.kind === "release") return { ...state, leading: false };
  return state;
}

/**
 * A holder identity unique to this process: the host name (cut to 63
 * characters of `[A-Za-z0-9.-]`; `kube-gw` when empty) and a random hex
 * suffix from `random`, e.g. `spine1-3f9a0c7e1b2d4e5f`, so two controllers on
 * one host are two candidates.
 */
export function holderIdentity(hostname: string, random: Uint8Array): string {
  const host = hostname.replace(/[^A-Za-z0-9.-]/g, "").slice(0, 63) || "kube-gw";
  const suffix = [...random.slice(0, 16)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${host}-${suffix}`;
}

/**
 * Whether a leader must stop writing now because it has not renewed within
 * the renew deadline; for the adapter to check when it cannot even read the
 * Lease (API unreachable).
 *
 * @default timings {@linkcode DEFAULT_TIMINGS}
 */
export function renewDeadlinePassed(
  state: ElectionState,
  now: number,
  timings: LeaseTimings = DEFAULT_TIMINGS,
): boolean {
  return state.leading && now - (state.lastRenewAt ?? state.observedAt) >= timings.renewDeadlineMs;
}
