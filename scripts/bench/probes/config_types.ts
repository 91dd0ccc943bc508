/**
 * Memory probe: the client-node subpath the agent imports (config_types).
 * Prints "ready" and idles until killed.
 *
 * @module
 */

import * as configTypes from "@kubernetes/client-node/config_types";

console.log("ready", Object.keys(configTypes).length);
setInterval(() => {}, 60_000);
