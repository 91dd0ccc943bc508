/**
 * The API client's metrics, the same for both programs (one dashboard panel
 * serves the agent and the controller): refused credentials and replaced
 * connections, as an {@linkcode ApiObserver} on prom-client.
 *
 * @module
 */

import { Counter, type Registry } from "prom-client";
import type { ApiObserver } from "./observer.ts";

/** Registers `kubegw_api_auth_failures_total` and `kubegw_api_connections_replaced_total`. */
export function apiMetrics(registers: Registry[]): ApiObserver {
  const authFailures = new Counter({
    name: "kubegw_api_auth_failures_total",
    help: "Answers of the API server that refused the credentials (401) or the permission (403).",
    labelNames: ["code"],
    registers,
  });
  for (const code of ["401", "403"]) authFailures.inc({ code }, 0);
  const replaced = new Counter({
    name: "kubegw_api_connections_replaced_total",
    help:
      "Times new requests were moved to a new connection to the API server, by reason: error, timeout, probe (the liveness probe got no answer), stall (a watch went silent).",
    labelNames: ["reason"],
    registers,
  });
  for (const reason of ["error", "timeout", "probe", "stall"]) replaced.inc({ reason }, 0);
  return {
    authFailed: (status) => authFailures.inc({ code: String(status) }),
    connectionReplaced: (reason) => replaced.inc({ reason }),
  };
}
