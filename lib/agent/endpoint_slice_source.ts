/**
 * EndpointSlices as one use of the list-watch engine: the collection's path
 * (`discovery.k8s.io/v1`), the decoder (`decodeEndpointSlice`) and a sink
 * bound to one scope (one namespace, or all) in front of whatever keeps the
 * endpoint counts (the reconciler's endpoint index).
 *
 * @module
 */

import { decodeEndpointSlice, type EndpointSliceRecord } from "./endpoint_slice.ts";
import { ListWatch, type ListWatchOptions } from "../kube/list_watch.ts";
import { collectionPath } from "../kube/collection.ts";

/** What keeps the EndpointSlices of every scope (the reconciler). */
export interface EndpointSliceStore {
  /** A complete list of the slices in `namespace`, or in all when undefined. */
  replaceSlices(slices: EndpointSliceRecord[], namespace: string | undefined): void;
  upsertSlice(slice: EndpointSliceRecord): void;
  deleteSlice(slice: EndpointSliceRecord): void;
}

/** Options for {@linkcode endpointSliceSource}: the engine's, but for what slices fix. */
export type EndpointSliceSourceOptions =
  & Omit<ListWatchOptions<EndpointSliceRecord>, "path" | "kind" | "decode" | "sink">
  & {
    readonly store: EndpointSliceStore;
    /** One namespace, or all when undefined. */
    readonly namespace?: string;
  };

/** Lists and watches the EndpointSlices of one scope into `store`. */
export function endpointSliceSource(
  options: EndpointSliceSourceOptions,
): ListWatch<EndpointSliceRecord> {
  const { store, namespace, ...rest } = options;
  return new ListWatch({
    ...rest,
    path: collectionPath(
      { group: "discovery.k8s.io", version: "v1", resource: "endpointslices" },
      namespace,
    ),
    kind: "EndpointSlice",
    decode: decodeEndpointSlice,
    sink: {
      replace: (slices) => store.replaceSlices(slices, namespace),
      upsert: (slice) => store.upsertSlice(slice),
      delete: (slice) => store.deleteSlice(slice),
    },
  });
}
