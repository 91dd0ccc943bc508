/**
 * Where a program's API connection comes from, the same for the agent and
 * the controller: the in-cluster service account (`--in-cluster`), or a
 * list of kubeconfig files (`--kubeconfig`/`KUBECONFIG`, `a:b:c`, merged as
 * kubectl does), by default `$HOME/.kube/config`. Files are read through an
 * injected `readFile`; giving up file reads afterwards is the caller's.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  type ApiConnection,
  connectionFromKubeconfig,
  inClusterConnection,
  KubeconfigError,
  mergeKubeconfigs,
  type ReadFile,
} from "./kubeconfig.ts";

const log = getLogger(["kube-gw"]);

/** The settings that say where the connection comes from (both programs have them). */
export interface ConnectionSettings {
  /** Use the pod's service account. */
  readonly inCluster: boolean;
  /** A kubeconfig path, or several separated by `:` (as `KUBECONFIG`). */
  readonly kubeconfig?: string;
}

/** The process's environment and files, injected. */
export interface ConnectionIo {
  /** Reads a variable (`HOME`, `KUBERNETES_SERVICE_HOST`, `KUBERNETES_SERVICE_PORT`). */
  readonly env: (name: string) => string | undefined;
  readonly readFile: ReadFile;
}

/** One kubeconfig text, merged from the files of a list when it names several. */
export interface KubeconfigText {
  /** The first file read: relative paths of a single file resolve against it. */
  readonly path: string;
  readonly text: string;
  /** Every file read, in order. */
  readonly files: readonly string[];
}

/**
 * Reads a kubeconfig list (`a:b:c`, as `KUBECONFIG`) and merges the files as
 * kubectl does: the first file to name an entry wins. Files of a list of
 * several that do not exist are skipped, as kubectl does; a single file must
 * exist.
 *
 * @throws {KubeconfigError} (exit status 2) when a file cannot be read, or none exists.
 */
export function readKubeconfigList(list: string, readFile: ReadFile): KubeconfigText {
  const paths = list.split(":").filter((p) => p !== "");
  const files: { path: string; text: string }[] = [];
  let problem = "";
  for (const p of paths) {
    try {
      files.push({ path: p, text: readFile(p) });
    } catch (err) {
      if (paths.length === 1 || !(err instanceof Deno.errors.NotFound)) {
        throw new KubeconfigError(
          `--kubeconfig: ${JSON.stringify(p)} cannot be read: ${(err as Error).message}`,
          { cause: err },
        );
      }
      problem = `${JSON.stringify(p)} does not exist`;
    }
  }
  if (files.length === 0) throw new KubeconfigError(`--kubeconfig: ${problem || "no file given"}`);
  if (files.length > 1) {
    log.info("merging kubeconfig files {files} (the first to name an entry wins)", {
      files: files.map((f) => f.path).join(", "),
    });
  }
  return {
    path: files[0].path,
    text: files.length === 1 ? files[0].text : mergeKubeconfigs(files),
    files: files.map((f) => f.path),
  };
}

/**
 * The API connection of `settings`: in-cluster, or from the kubeconfig list
 * (`$HOME/.kube/config` when none is given).
 *
 * @throws {KubeconfigError} (exit status 2) naming what is missing or wrong.
 */
export function loadConnection(settings: ConnectionSettings, io: ConnectionIo): ApiConnection {
  if (settings.inCluster) return inClusterConnection(io.env, io.readFile);
  const home = io.env("HOME");
  const list = settings.kubeconfig ?? (home ? `${home}/.kube/config` : undefined);
  if (!list) {
    throw new KubeconfigError(
      "--kubeconfig: not given, and HOME is not set (or use --in-cluster)",
    );
  }
  const { path, text } = readKubeconfigList(list, io.readFile);
  return connectionFromKubeconfig(text, { path, readFile: io.readFile });
}
