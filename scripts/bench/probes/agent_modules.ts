/**
 * Memory probe: every module the agent loads (main.ts and its imports),
 * without running it. Prints "ready" and idles until killed.
 *
 * @module
 */

import "../../../main.ts";

console.log("ready");
setInterval(() => {}, 60_000);
