/**
 * The port in front of the kernel: an {@linkcode AddressStore} reads and
 * changes where the router holds the Service addresses. `iproute2.ts`
 * implements it with addresses on one interface (address mode),
 * `route_store.ts` with routes of kube-gw's protocol (route mode); tests use
 * the one fake in `test/support/fakes/address_store.ts`. Nothing here does I/O.
 *
 * @module
 */

/** One address as read from the interface. */
export interface InterfaceAddress {
  readonly family: 4 | 6;
  readonly local: string;
  readonly prefixlen: number;
  /** The address has a finite lifetime (`--address-lifetime`, or added so by hand). */
  readonly expires?: boolean;
  /**
   * The store knows the entry is kube-gw's wherever it lies (route mode: a
   * route of kube-gw's protocol): one that is not a host entry inside a
   * managed network is removed, not left alone. @default false
   */
  readonly owned?: boolean;
  /**
   * Owned, but not in the form the store writes (a route of another type):
   * written again when the address is wanted, removed when not. @default false
   */
  readonly misshapen?: boolean;
}

/** What to change on the interface. Addresses are canonical texts. */
export interface Plan {
  readonly add: readonly string[];
  readonly remove: readonly string[];
}

/**
 * Reads and changes the addresses of one interface. Once `signal` aborts, a
 * running call stops its process and rejects with {@linkcode InterruptedError}.
 */
export interface AddressStore {
  /** Every address on the interface. */
  read(signal?: AbortSignal): Promise<InterfaceAddress[]>;
  /** Applies a plan; on failure the interface may hold part of it. */
  apply(plan: Plan, signal?: AbortSignal): Promise<void>;
  /**
   * Renews the lifetime of addresses already held (`--address-lifetime`), in
   * one run, without removing any; a store without a lifetime makes them
   * permanent. Optional: stores without lifetimes may leave it out.
   */
  renew?(addresses: Iterable<string>): Promise<void>;
  /**
   * What the last read found missing of what the store keeps beside the
   * addresses (route mode: the local-access rule and routes), in words for
   * the log; undefined when nothing is, or before the first read. The next
   * apply, even of an empty plan, puts it in place. Optional: stores that
   * keep nothing beside the addresses leave it out.
   */
  missing?(): string | undefined;
}

/**
 * The store's process ended by a signal before it finished: a stop (kube-gw's
 * own, or systemd's SIGTERM to the whole unit), or someone killed it. The
 * interface may hold part of the plan; it is read again before the next one.
 */
export class InterruptedError extends Error {
  constructor(message: string, readonly signal: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "InterruptedError";
  }
}
