/**
 * The object store: every resource's objects, one global resourceVersion
 * counter as etcd has (each write bumps it), a history of changes for watches
 * to replay, compaction, snapshots and restore to a lower resourceVersion.
 *
 * Each resource also has the resourceVersion its watch cache has reached: it
 * moves with writes to that resource and, on a progress notification, to the
 * global counter (as etcd's progress notifications move kube-apiserver's watch
 * cache). Bookmarks are only sent when it moved past what a watch last saw.
 *
 * @module
 */

import { type ResourceName, RESOURCES } from "./resources.ts";

/** A stored object: any JSON object with the metadata the server maintains. */
export type K8sObject = Record<string, unknown> & {
  metadata: Record<string, unknown> & {
    name: string;
    namespace: string;
    resourceVersion: string;
    uid: string;
    labels?: Record<string, string>;
  };
};

/** One committed write. */
export interface Change {
  readonly rv: number;
  readonly resource: ResourceName;
  readonly type: "ADDED" | "MODIFIED" | "DELETED";
  readonly before?: K8sObject;
  readonly after: K8sObject;
}

interface Table {
  readonly objects: Map<string, K8sObject>;
  sorted?: string[];
  cacheRv: number;
}

/** A copy of the store at one resourceVersion, for {@linkcode Store.restore}. */
export interface Snapshot {
  readonly rv: number;
  readonly objects: ReadonlyMap<ResourceName, ReadonlyMap<string, K8sObject>>;
}

/** The key objects are stored and paged under, as etcd orders them. */
export function keyOf(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

const itemJson = new WeakMap<K8sObject, string>();

/** An object's JSON without `kind` and `apiVersion`, as list items carry it (cached). */
export function itemText(obj: K8sObject): string {
  let text = itemJson.get(obj);
  if (text === undefined) {
    const { kind: _k, apiVersion: _a, ...item } = obj;
    text = JSON.stringify(item);
    itemJson.set(obj, text);
  }
  return text;
}

/** The store. */
export class Store {
  rv = 1000;
  /** Watches and continue tokens from below this resourceVersion get 410. */
  compactedBelow = 0;
  /** Keep at most this many changes for watches to replay; 0 keeps all since the last compaction. */
  historyLimit = 0;
  readonly #log: Change[] = [];
  readonly #tables = new Map<ResourceName, Table>();
  readonly #listeners = new Set<(c: Change) => void>();
  #uid = 0;

  constructor() {
    for (const name of Object.keys(RESOURCES) as ResourceName[]) {
      this.#tables.set(name, { objects: new Map(), cacheRv: 0 });
    }
  }

  #table(resource: ResourceName): Table {
    return this.#tables.get(resource)!;
  }

  /** A fresh uid. */
  uid(): string {
    const n = ++this.#uid;
    const hex = n.toString(16).padStart(12, "0");
    return `00000000-0000-4000-8000-${hex}`;
  }

  /** Calls `fn` after each committed change. */
  subscribe(fn: (c: Change) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  get(resource: ResourceName, namespace: string, name: string): K8sObject | undefined {
    return this.#table(resource).objects.get(keyOf(namespace, name));
  }

  /** How many objects of `resource` are stored. */
  count(resource: ResourceName): number {
    return this.#table(resource).objects.size;
  }

  /** Keys of `resource` in etcd order. */
  sortedKeys(resource: ResourceName): string[] {
    const t = this.#table(resource);
    t.sorted ??= [...t.objects.keys()].sort();
    return t.sorted;
  }

  /** The object under `key`. */
  byKey(resource: ResourceName, key: string): K8sObject | undefined {
    return this.#table(resource).objects.get(key);
  }

  /** The resourceVersion the watch cache of `resource` has reached. */
  cacheRv(resource: ResourceName): number {
    return this.#table(resource).cacheRv;
  }

  /** Moves every watch cache to the current resourceVersion, as an etcd progress notification does. */
  progressNotify(): void {
    for (const t of this.#tables.values()) t.cacheRv = this.rv;
  }

  /** Commits one write: bumps the resourceVersion, stamps it on `after`, records and announces it. */
  commit(
    resource: ResourceName,
    type: Change["type"],
    after: K8sObject,
    before?: K8sObject,
  ): Change {
    this.rv++;
    after.metadata.resourceVersion = String(this.rv);
    const t = this.#table(resource);
    const key = keyOf(after.metadata.namespace, after.metadata.name);
    if (type === "DELETED") t.objects.delete(key);
    else t.objects.set(key, after);
    if (type !== "MODIFIED") t.sorted = undefined;
    t.cacheRv = this.rv;
    const change: Change = { rv: this.rv, resource, type, before, after };
    this.#log.push(change);
    if (this.historyLimit > 0 && this.#log.length > this.historyLimit) {
      const drop = this.#log.length - this.historyLimit;
      this.compactedBelow = this.#log[drop - 1].rv;
      this.#log.splice(0, drop);
    }
    for (const fn of this.#listeners) fn(change);
    return change;
  }

  /** Stores objects without history or events, as an existing cluster has them, then compacts. */
  load(resource: ResourceName, objects: Iterable<K8sObject>): void {
    const t = this.#table(resource);
    for (const obj of objects) {
      this.rv++;
      obj.metadata.resourceVersion = String(this.rv);
      t.objects.set(keyOf(obj.metadata.namespace, obj.metadata.name), obj);
    }
    t.sorted = undefined;
    t.cacheRv = this.rv;
    this.compact();
  }

  /** Changes after `rv`, oldest first. */
  since(rv: number): Change[] {
    let lo = 0;
    let hi = this.#log.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#log[mid].rv <= rv) lo = mid + 1;
      else hi = mid;
    }
    return this.#log.slice(lo);
  }

  /** Forgets history: watches from an older resourceVersion get 410 Gone. */
  compact(): void {
    this.compactedBelow = this.rv;
    this.#log.length = 0;
  }

  /** A copy of every object now (objects are replaced on write, so sharing them is safe). */
  snapshot(): Snapshot {
    const objects = new Map<ResourceName, Map<string, K8sObject>>();
    for (const [name, t] of this.#tables) objects.set(name, new Map(t.objects));
    return { rv: this.rv, objects };
  }

  /**
   * Rewinds to a snapshot, or only the counter to `rv` (objects above it are
   * stamped with it), as an etcd restore does; history is gone.
   */
  restore(to: Snapshot | number): void {
    const rv = typeof to === "number" ? to : to.rv;
    for (const [name, t] of this.#tables) {
      if (typeof to !== "number") {
        t.objects.clear();
        for (const [k, v] of to.objects.get(name) ?? []) t.objects.set(k, v);
      } else {
        for (const [k, obj] of t.objects) {
          if (Number(obj.metadata.resourceVersion) > rv) {
            t.objects.set(k, {
              ...obj,
              metadata: { ...obj.metadata, resourceVersion: String(rv) },
            });
          }
        }
      }
      t.sorted = undefined;
      t.cacheRv = rv;
    }
    this.rv = rv;
    this.compact();
  }
}
