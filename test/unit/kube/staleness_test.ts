import assert from "node:assert/strict";
import fc from "fast-check";
import { apiNotReady, type CurrencySource, oldestAge } from "../../../lib/kube/staleness.ts";

const src = (lastCurrent: number | undefined, lastError?: string, path = "/api/v1/services") => ({
  kind: "Service",
  path,
  synced: lastCurrent !== undefined,
  lastCurrent,
  lastError,
});

Deno.test("the API side turns not ready only past the staleness, naming the watch and its error", () => {
  const sources = [
    src(100_000),
    src(60_000, "GET /x: no answer in 30s", "/api/v1/namespaces/b/services"),
  ];
  assert.equal(apiNotReady(sources, 105_000, 45_000), undefined);
  assert.equal(
    apiNotReady(sources, 105_001, 45_000),
    "the Kubernetes API was last known current 45s ago (Service watch of /api/v1/namespaces/b/services): GET /x: no answer in 30s",
  );
  assert.equal(apiNotReady([src(undefined), src(0)], 1e9, 45_000), undefined, "not listed yet");
});

Deno.test("oldestAge is the age of the least current source", () => {
  fc.assert(
    fc.property(fc.array(fc.nat(1e6), { minLength: 1 }), fc.nat(1e6), (times, extra) => {
      const now = Math.max(...times) + extra;
      const sources: CurrencySource[] = times.map((t) => src(t));
      assert.equal(oldestAge(sources, now), now - Math.min(...times));
      assert.equal(
        apiNotReady(sources, now, 45_000) === undefined,
        now - Math.min(...times) <= 45_000,
      );
    }),
  );
});
