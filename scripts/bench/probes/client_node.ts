/**
 * Memory probe: the whole client-node package, which the agent does not
 * import. Prints "ready" and idles until killed.
 *
 * @module
 */

import * as k8s from "npm:@kubernetes/client-node@1.4.0";

console.log("ready", Object.keys(k8s).length);
setInterval(() => {}, 60_000);
