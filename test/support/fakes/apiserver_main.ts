/**
 * The fake API server as a process of its own, for tests that need it inside a
 * network namespace (a Deno process cannot change its own): run it with
 * `ip netns exec NAME deno run -P=test test/support/fakes/apiserver_main.ts [FLAGS]`.
 * It serves the demo Service and its EndpointSlice (unless `--empty`), prints its URL as the first
 * line, and runs until killed. Being in another process, it is driven over
 * HTTP like a real API server (POST, PUT, PATCH, DELETE).
 *
 * Flags: `--empty` (no demo Service), `--tls` (the test certificates in
 * test/fixtures, HTTP/2 by ALPN), `--token TOKEN`, `--port N`,
 * `--bookmark-interval-ms N`, `--min-request-timeout-seconds N`.
 *
 * @module
 */

import { demoSlice } from "./endpoint_slices.ts";
import { DEMO_SERVICE, FakeApiServer, type FakeApiServerOptions } from "./apiserver.ts";

/** Parses the flags above; throws with a line naming a bad one. */
export function parseFlags(args: readonly string[]): FakeApiServerOptions & { empty: boolean } {
  const fixture = (name: string) =>
    Deno.readTextFileSync(new URL(`../../fixtures/${name}`, import.meta.url));
  let opts: FakeApiServerOptions & { empty: boolean } = { empty: false };
  const num = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < 0) {
      throw new Error(`${flag}: expected a whole number, got ${JSON.stringify(v ?? "")}`);
    }
    return n;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    switch (a) {
      case "--empty":
        opts = { ...opts, empty: true };
        break;
      case "--tls":
        opts = { ...opts, tls: { cert: fixture("server.crt"), key: fixture("server.key") } };
        break;
      case "--token": {
        const token = args[++i];
        if (!token) throw new Error("--token: expected a token");
        opts = { ...opts, token };
        break;
      }
      case "--port":
        opts = { ...opts, port: num(a, args[++i]) };
        break;
      case "--bookmark-interval-ms":
        opts = { ...opts, bookmarkIntervalMs: num(a, args[++i]) };
        break;
      case "--min-request-timeout-seconds":
        opts = { ...opts, minRequestTimeoutSeconds: num(a, args[++i]) };
        break;
      default:
        throw new Error(`unknown flag ${JSON.stringify(a)}`);
    }
  }
  return opts;
}

if (import.meta.main) {
  let opts;
  try {
    opts = parseFlags(Deno.args);
  } catch (err) {
    console.error(`fake_api_main: ${(err as Error).message}`);
    Deno.exit(2);
  }
  const api = await FakeApiServer.start(opts);
  if (!opts.empty) {
    api.create(DEMO_SERVICE);
    api.createObject("endpointslices", demoSlice());
  }
  console.log(api.url);
}
