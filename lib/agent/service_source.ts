/**
 * Services as one use of the list-watch engine: the collection's path, the
 * decoder (`decodeService`) and a sink bound to one scope (one namespace, or
 * all) in front of whatever keeps the Services.
 *
 * @module
 */

import { ListWatch, type ListWatchOptions } from "../kube/list_watch.ts";
import { decodeService, type ServiceRecord } from "../service/record.ts";
import { collectionPath } from "../kube/collection.ts";

/** What keeps the Services of every scope (the reconciler). */
export interface ServiceStore {
  /** A complete list of the Services in `namespace`, or in all when undefined. */
  replace(services: ServiceRecord[], namespace: string | undefined): void;
  upsert(service: ServiceRecord): void;
  delete(namespace: string, name: string): void;
}

/** Options for {@linkcode serviceSource}: the engine's, but for what Services fix. */
export type ServiceSourceOptions =
  & Omit<ListWatchOptions<ServiceRecord>, "path" | "kind" | "decode" | "sink">
  & {
    readonly store: ServiceStore;
    /** One namespace, or all when undefined. */
    readonly namespace?: string;
  };

/** Lists and watches the Services of one scope into `store`. */
export function serviceSource(options: ServiceSourceOptions): ListWatch<ServiceRecord> {
  const { store, namespace, ...rest } = options;
  return new ListWatch({
    ...rest,
    path: collectionPath({ version: "v1", resource: "services" }, namespace),
    kind: "Service",
    decode: decodeService,
    sink: {
      replace: (services) => store.replace(services, namespace),
      upsert: (service) => store.upsert(service),
      delete: (service) => store.delete(service.namespace, service.name),
    },
  });
}
