/**
 * The fake API server as a process of its own, for tests that need it inside a
 * network namespace (a Deno process cannot change its own): run it with
 * `ip netns exec NAME deno run -P=test test/support/fake_api_main.ts`. It
 * serves the demo Service, prints its URL as the first line, and runs until
 * killed.
 *
 * @module
 */

import { DEMO_SERVICE, FakeApiServer } from "./fake_apiserver.ts";

const api = await FakeApiServer.start();
api.create(DEMO_SERVICE);
console.log(api.url);
