/**
 * Memory probe: the Deno runtime alone. Prints "ready" and idles until killed.
 *
 * @module
 */

console.log("ready");
setInterval(() => {}, 60_000);
