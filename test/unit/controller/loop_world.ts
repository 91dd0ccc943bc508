/**
 * The pieces the controller loop's unit tests drive it with: Service records,
 * a status writer and an Event API that record what they get and fail on
 * demand, and a {@linkcode setup} that wires a {@linkcode Controller} to them
 * on a {@linkcode FakeClock}.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Controller } from "../../../lib/controller/loop.ts";
import { EventRecorder } from "../../../lib/controller/event_recorder.ts";
import type { JsonApi, JsonMethod } from "../../../lib/kube/ports.ts";
import { decodeLbService, type LbServiceRecord } from "../../../lib/controller/lb_service.ts";
import type { ControllerObserver, StatusWriter } from "../../../lib/controller/ports.ts";
import { decodePoolsConfigMap } from "../../../lib/controller/pools_configmap.ts";
import { flagPool, type Pool } from "../../../lib/controller/pools.ts";
import { FakeClock } from "../../support/fakes/clock.ts";
import { ApiError } from "../../../lib/kube/errors.ts";

/** The class the controller under test serves. */
export const CLASS = "kube-gw.io/anycast";

/** What a test sets of a Service. */
export interface SvcOpts {
  rv?: string;
  cls?: string | null;
  type?: string;
  ingress?: string[];
  annotations?: Record<string, string>;
  uid?: string;
  /** `metadata.creationTimestamp`. */
  created?: string;
}

/** A Service record as the watch decodes it: LoadBalancer of {@linkcode CLASS}, port 80. */
export function svc(name: string, namespace: string, o: SvcOpts = {}): LbServiceRecord {
  return decodeLbService({
    metadata: {
      name,
      namespace,
      uid: o.uid ?? `uid-${namespace}-${name}`,
      resourceVersion: o.rv ?? "1",
      creationTimestamp: o.created,
      annotations: o.annotations,
    },
    spec: {
      type: o.type ?? "LoadBalancer",
      ...(o.cls === null ? {} : { loadBalancerClass: o.cls ?? CLASS }),
      ports: [{ port: 80, protocol: "TCP" }],
    },
    status: { loadBalancer: { ingress: (o.ingress ?? []).map((ip) => ({ ip, ipMode: "VIP" })) } },
  });
}

/** The pools ConfigMap with `text` as its pools.yaml. */
export function configMap(text: string) {
  return decodePoolsConfigMap({
    metadata: { name: "kube-gw-pools", namespace: "kube-system", uid: "cm-uid" },
    data: { "pools.yaml": text },
  });
}

/** One status write a {@linkcode FakeStatus} saw. */
export interface Write {
  key: string;
  rv: string;
  addresses: readonly string[];
}

/** A status writer that records writes and fails the ones a test scripts. */
export class FakeStatus implements StatusWriter {
  readonly writes: Write[] = [];
  /** Errors thrown by the next writes, in order. */
  readonly failNext: Error[] = [];
  #rv = 1000;

  /** While set, writes wait for {@linkcode release} (and fail when their signal aborts). */
  hold = false;
  #held: (() => void)[] = [];
  /** Writes started, held or not. */
  started = 0;

  async write(
    s: LbServiceRecord,
    addresses: readonly string[],
    signal: AbortSignal,
  ): Promise<string> {
    this.started++;
    const err = this.failNext.shift();
    if (err) throw err;
    if (this.hold) {
      await new Promise<void>((resolve, reject) => {
        this.#held.push(resolve);
        signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
    }
    this.writes.push({ key: `${s.namespace}/${s.name}`, rv: s.resourceVersion, addresses });
    return String(++this.#rv);
  }

  /** Lets held writes finish. */
  release(): void {
    for (const r of this.#held.splice(0)) r();
  }

  /** The last addresses written per Service. */
  get last(): Map<string, readonly string[]> {
    return new Map(this.writes.map((w) => [w.key, w.addresses]));
  }
}

/** An API that accepts Event POSTs and keeps their bodies, or fails those a test picks. */
export class FakeEventApi implements JsonApi {
  readonly posted: Record<string, unknown>[] = [];
  /** When each POST arrived (clock ms), accepted or not. */
  readonly arrivals: number[] = [];
  /** POSTs refused so far. */
  refused = 0;
  /** Whether to refuse the n-th POST (from 0) with a 500. */
  fail: (n: number, body: Record<string, unknown>) => boolean = () => false;
  readonly #clock: FakeClock;

  constructor(clock: FakeClock) {
    this.#clock = clock;
  }

  json(method: JsonMethod, _path: string, body: unknown): Promise<unknown> {
    assert.equal(method, "POST");
    const n = this.arrivals.length;
    this.arrivals.push(this.#clock.now());
    if (this.fail(n, body as Record<string, unknown>)) {
      this.refused++;
      return Promise.reject(new ApiError("the API server is unwell", 500));
    }
    this.posted.push(body as Record<string, unknown>);
    return Promise.resolve(body);
  }

  /** `reason: note` of each Event about `name`. */
  about(name: string): string[] {
    return this.posted
      .filter((e) => (e.regarding as { name: string }).name === name)
      .map((e) => `${e.reason}: ${e.note}`);
  }
}

/** An observer that counts what the controller reports. */
export function countingObserver() {
  const counts = { configErrors: 0, conflicts: 0, errors: 0, failures: [] as string[] };
  const observer: ControllerObserver = {
    statusWritten() {},
    allocationFailed: (r) => void counts.failures.push(r),
    writeFailed: (k) => void (k === "conflict" ? counts.conflicts++ : counts.errors++),
    configError: () => void counts.configErrors++,
    poolsChanged() {},
    leadership() {},
  };
  return { counts, observer };
}

/**
 * The pool as if it allowed the reserved addresses, so the tests of the loop
 * count every address of a block (the `--pool` default is tested on its own).
 */
export function allowingReserved(pool: Pool | undefined): Pool | undefined {
  return pool && { ...pool, allowReserved: true };
}

/**
 * A controller on a fake clock, with a {@linkcode FakeStatus} and a
 * {@linkcode FakeEventApi} behind a real {@linkcode EventRecorder}; `pool`: the
 * `--pool` CIDRs (allowing the reserved addresses unless `reserved: false`).
 */
export function setup(opts: { pool?: string[]; config?: boolean; reserved?: false } = {}) {
  const clock = new FakeClock();
  const status = new FakeStatus();
  const eventApi = new FakeEventApi(clock);
  const events = new EventRecorder({ api: eventApi, clock, instance: "test-1", wallNow: () => 0 });
  const { counts, observer } = countingObserver();
  const controller = new Controller({
    classes: { class: CLASS, defaultClass: false },
    flagPool: opts.reserved === false
      ? flagPool(opts.pool ?? ["198.51.100.0/30"])
      : allowingReserved(flagPool(opts.pool ?? ["198.51.100.0/30"])),
    watchesConfig: opts.config ?? false,
    status,
    events,
    clock,
    observer,
  });
  /** Lets every decision and Event finish, moving the clock by the recorder's pace (10 a second). */
  const settle = async () => {
    for (;;) {
      await controller.idle();
      if (events.pending === 0) break;
      await clock.tick(100);
    }
    await events.settled();
  };
  return { clock, status, eventApi, events, controller, counts, settle };
}
