/**
 * Which LoadBalancer Services are kube-gw's: `type: LoadBalancer` with
 * kube-gw's `spec.loadBalancerClass` (`--class`), or without a class when
 * `--default-class` is set. The agent announces their status addresses; the
 * controller allocates them. Pure.
 *
 * @module
 */

import { badValue, parseBool, type RawOptions, sourceOf } from "../base/flags.ts";
import type { ServiceRecord } from "./record.ts";

const CLASS =
  /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

/** Which Services are kube-gw's. */
export interface ClassOptions {
  /** kube-gw's `spec.loadBalancerClass` (`--class`). @default "kube-gw.io/anycast" */
  readonly class: string;
  /** Whether Services without a class are kube-gw's too (`--default-class`). @default false */
  readonly defaultClass: boolean;
}

/** The class kube-gw answers to unless `--class` says otherwise. */
export const DEFAULT_CLASS = "kube-gw.io/anycast";

/**
 * Whether kube-gw serves this Service: `type: LoadBalancer` and its class is
 * kube-gw's, or it has no class and `defaultClass` is set.
 */
export function isOurs(
  record: Pick<ServiceRecord, "type" | "loadBalancerClass">,
  options: ClassOptions,
): boolean {
  if (record.type !== "LoadBalancer") return false;
  if (record.loadBalancerClass === undefined || record.loadBalancerClass === "") {
    return options.defaultClass;
  }
  return record.loadBalancerClass === options.class;
}

/**
 * The LoadBalancer class options of `run` and `controller` (`--class`,
 * `--default-class`). A class is a label-style name with a domain prefix,
 * as the API requires of `spec.loadBalancerClass`.
 *
 * @param fallback the class when none is given (the program's defaults table).
 * @default defaultClass false
 * @throws {UsageError} naming the flag or environment variable.
 */
export function parseClassOptions(raw: RawOptions, fallback: string): ClassOptions {
  const cls = (raw.class ?? fallback).trim();
  if (!CLASS.test(cls)) {
    throw badValue(
      sourceOf(raw, "class", "--class"),
      cls,
      "is not a load-balancer class (a prefixed name like kube-gw.io/anycast)",
    );
  }
  return {
    class: cls,
    defaultClass: parseBool(sourceOf(raw, "defaultClass", "--default-class"), raw.defaultClass),
  };
}
