/**
 * The pools ConfigMap as the controller keeps it: its identity and the text
 * of its `pools.yaml` key, nothing else (the rest of the object is dropped).
 * A text longer than the pools parser accepts is kept cut, marked too long,
 * so the parser's refusal names the reason.
 *
 * @module
 */

import { MAX_POOLS_TEXT } from "./pools.ts";
import { isObject, objectName } from "../base/shape.ts";

/** The key of the ConfigMap that holds the pools. */
export const POOLS_KEY = "pools.yaml";

/** What the controller keeps of the pools ConfigMap. */
export interface PoolsConfigMap {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  /** The `pools.yaml` text; absent when the key is missing or not a string. */
  readonly text?: string;
  /** Why the key cannot be used, when it is there but not a string. */
  readonly problem?: string;
}

/** Decodes a ConfigMap. @throws {ShapeError} when its metadata is unreadable. */
export function decodePoolsConfigMap(obj: unknown): PoolsConfigMap {
  const { namespace, name } = objectName(obj, "ConfigMap");
  const o = obj as Record<string, unknown>;
  const meta = o.metadata as Record<string, unknown>;
  const uid = typeof meta.uid === "string" ? meta.uid.slice(0, 64) : "";
  const data = isObject(o.data) ? o.data : {};
  const raw = data[POOLS_KEY];
  if (raw === undefined) return { namespace, name, uid };
  if (typeof raw !== "string") {
    return { namespace, name, uid, problem: `key ${POOLS_KEY} is not a string` };
  }
  // One character over the limit is enough for the parser to refuse it by size.
  return {
    namespace,
    name,
    uid,
    text: raw.length > MAX_POOLS_TEXT ? raw.slice(0, MAX_POOLS_TEXT + 1) : raw,
  };
}
