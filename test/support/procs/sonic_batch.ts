/**
 * A process that writes one large plan through the SONiC store, for the test
 * that kills it mid-batch: prints "writing" just before the transaction goes
 * out. Arguments: the socket, the loopback, a round number (the addresses'
 * third group, so each round writes other addresses).
 *
 * @module
 */

import { SonicStore } from "../../../lib/kernel/sonic_store.ts";

const [socket, loopback, round] = Deno.args;
const store = new SonicStore({ loopback, socketPath: socket });
const add = Array.from({ length: 50_000 }, (_, i) => `2001:db8:100:${round}::${i.toString(16)}`);
await store.read();
await Deno.stdout.write(new TextEncoder().encode("writing\n"));
await store.apply({ add, remove: [] });
await Deno.stdout.write(new TextEncoder().encode("written\n"));
store.close();
