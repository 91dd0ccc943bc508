/**
 * What an end-to-end agent test runs in: a throwaway network namespace, a
 * fake API server and a kubeconfig for it, removed together when disposed
 * (even when the test fails).
 *
 * @module
 */

import { writeKubeconfig } from "./agent.ts";
import { FakeApiServer, type FakeApiServerOptions } from "../fakes/apiserver.ts";
import { Netns } from "./netns.ts";

/** A namespace, a fake API server and a kubeconfig for it. */
export interface AgentWorld extends AsyncDisposable {
  readonly ns: Netns;
  readonly api: FakeApiServer;
  readonly kc: { readonly path: string; readonly dir: string };
  /** `--netns` and `--kubeconfig` for this world, then `extra`. */
  args(...extra: string[]): string[];
}

/**
 * Creates the namespace (named after `label`), starts the fake API server with
 * `opts` and writes a kubeconfig for it.
 */
export async function agentWorld(
  label: string,
  opts: FakeApiServerOptions = {},
): Promise<AgentWorld> {
  const ns = await Netns.create(label);
  const api = await FakeApiServer.start(opts);
  const kc = await writeKubeconfig(api, {});
  return {
    ns,
    api,
    kc,
    args: (...extra) => [`--netns=${ns.name}`, `--kubeconfig=${kc.path}`, ...extra],
    async [Symbol.asyncDispose]() {
      await api.close();
      await kc[Symbol.asyncDispose]();
      await ns.delete();
    },
  };
}
