/**
 * The notes of the controller's Events that say more than one value: the
 * refused externalIPs of a Service, a contested address, addresses removed
 * from a status. Pure; every value is bounded and escaped before it is shown.
 *
 * @module
 */

import type { LbServiceRecord } from "./lb_service.ts";
import { shown } from "./request.ts";
import { serviceKey } from "../service/record.ts";

/** Room left in a note for the list of refusals (the API takes 1 kB in all). */
const REFUSALS_ROOM = 900;

/**
 * One note for every refusal of a Service's externalIPs, as many as fit in
 * an Event, then how many more; empty when there are none.
 */
export function refusalNote(messages: readonly string[]): string {
  let note = "";
  let shownCount = 0;
  for (const m of messages) {
    if (note.length + m.length + 2 > REFUSALS_ROOM && shownCount > 0) break;
    note += (note ? "; " : "") + m;
    shownCount++;
  }
  const more = messages.length - shownCount;
  return more > 0 ? `${note}; and ${more} more` : note;
}

function when(ms: number | undefined): string {
  return ms === undefined ? "at an unknown time" : new Date(ms).toISOString();
}

/**
 * Why `loser` does not keep `address` that `winner` claims too: the older
 * Service keeps it. The winner is named when it is of the same namespace.
 */
export function conflictNote(
  address: string,
  loser: Pick<LbServiceRecord, "namespace" | "name" | "created">,
  winner: Pick<LbServiceRecord, "namespace" | "name" | "created">,
): string {
  const who = winner.namespace === loser.namespace
    ? `Service ${serviceKey(winner)}`
    : "a Service of another namespace";
  const why = winner.created !== undefined && winner.created === loser.created
    ? `both were created ${when(winner.created)}, and its namespace/name sorts first`
    : `it is older (created ${when(winner.created)}; this Service ${when(loser.created)})`;
  return `${address} is also in the status of ${who}, which keeps it: ${why}`;
}

/** The note for addresses removed from a Service's status that kube-gw did not give it. */
export function removedNote(addresses: readonly string[]): string {
  const list = addresses.map(shown).join(", ");
  return `removed ${list} from the status: kube-gw did not give ${
    addresses.length === 1 ? "it" : "them"
  } to this Service`;
}

/** A Normal Event about the Service being decided. */
export interface NormalEvent {
  readonly reason: string;
  readonly action: string;
  readonly note: string;
}

/**
 * The Events for the addresses a status write took out of a status that
 * listed `ingress` and now lists `addresses`: `IPReleased` for those kube-gw
 * held for the Service (`held`), `StatusCorrected` for the others (another
 * Service's claim, a hand-written value), so that an Event never says
 * kube-gw released an address it never had.
 */
export function releaseEvents(
  ingress: readonly string[],
  addresses: readonly string[],
  held: readonly string[],
): NormalEvent[] {
  const gone = ingress.filter((a) => !addresses.includes(a));
  const released = gone.filter((a) => held.includes(a));
  const others = gone.filter((a) => !held.includes(a));
  const out: NormalEvent[] = [];
  if (released.length > 0) {
    out.push({ reason: "IPReleased", action: "Release", note: `released ${released.join(", ")}` });
  }
  if (others.length > 0) {
    out.push({ reason: "StatusCorrected", action: "Release", note: removedNote(others) });
  }
  return out;
}
