/**
 * Where the API server is and how to authenticate: from kubeconfig files
 * (several merged as kubectl does) or from the in-cluster service account.
 * Credentials are read once, at start, except tokens read from a file (the
 * in-cluster token, which kubelet rotates, and a kubeconfig's `tokenFile`):
 * those are re-read at most once a minute, and at once after a 401, as
 * client-go's cached file token source does.
 *
 * @module
 */

import { newClusters, newContexts, newUsers } from "@kubernetes/client-node/config_types";
import yaml from "js-yaml";
import { UsageError } from "../base/flags.ts";

/** How to reach and authenticate to the API server. */
export interface ApiConnection {
  /** Base URL, e.g. `https://10.0.0.1:6443`, without a trailing slash. */
  readonly server: string;
  /** PEM certificate authorities to trust; the system store when absent. */
  readonly caCerts?: readonly string[];
  /** PEM client certificate and key for mutual TLS. */
  readonly cert?: string;
  readonly key?: string;
  /** The bearer token to send, looked up for every request. */
  readonly token?: () => string | undefined;
  /** Re-read the token now (after a 401); absent for an inline token. */
  readonly refreshToken?: () => void;
  /** The file the token is read from, if any (for the permission check at start). */
  readonly tokenFile?: string;
  /** `user:password` for basic authentication. */
  readonly basic?: string;
  /** Where this came from, for the log. */
  readonly source: string;
  /** Where the trusted CAs come from, for TLS errors (a kubeconfig field or a file). */
  readonly caSource?: string;
}

/**
 * Raised when the connection settings cannot be loaded. A configuration
 * error like a bad flag: exit status 2. Its message never holds a secret or
 * the file's text.
 */
export class KubeconfigError extends UsageError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "KubeconfigError";
  }
}

/** Reads a file as text; a seam for tests. */
export type ReadFile = (path: string) => string;

/** How often a token file is re-read at most (client-go: one minute). */
export const TOKEN_REREAD_MS = 60_000;

/**
 * A token read from `path`: the first read must succeed; later reads happen
 * at most every {@linkcode TOKEN_REREAD_MS} (or at once after `refresh`), and
 * keep the last good token when the file is unreadable, empty (mid-rotation)
 * or holds a token an HTTP header cannot carry.
 *
 * @throws {KubeconfigError} when the first read fails or the token is unusable.
 */
export function fileToken(
  path: string,
  readFile: ReadFile,
  what: string,
  now: () => number = () => performance.now(),
): { token: () => string; refresh: () => void } {
  let last = readRequired(readFile, path, what).trim();
  if (!HEADER_TOKEN.test(last)) throw new KubeconfigError(`${path}: ${BAD_TOKEN}`);
  let readAt = now();
  let stale = false;
  return {
    token: () => {
      if (stale || now() - readAt >= TOKEN_REREAD_MS) {
        stale = false;
        readAt = now();
        try {
          const fresh = readFile(path).trim();
          // Mid-rotation (empty) or unusable: keep the token we had.
          if (HEADER_TOKEN.test(fresh)) last = fresh;
        } catch {
          // Unreadable (mid-rotation, or no longer permitted): keep the token we had.
        }
      }
      return last;
    },
    refresh: () => stale = true,
  };
}

/** The service account directory kubelet mounts into pods. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

function decodeBase64(data: string, what: string): string {
  try {
    return new TextDecoder().decode(
      Uint8Array.from(atob(data.replace(/\s+/g, "")), (c) => c.charCodeAt(0)),
    );
  } catch (cause) {
    throw new KubeconfigError(`${what} is not valid base64`, { cause });
  }
}

function resolvePath(baseDir: string, p: string): string {
  return p.startsWith("/") ? p : `${baseDir.replace(/\/$/, "")}/${p}`;
}

function readRequired(readFile: ReadFile, path: string, what: string): string {
  try {
    return readFile(path);
  } catch (cause) {
    throw new KubeconfigError(`Cannot read ${what} "${path}": ${(cause as Error).message}`, {
      cause,
    });
  }
}

/** Options for {@linkcode connectionFromKubeconfig}. */
export interface KubeconfigOptions {
  /** The kubeconfig's path; relative paths inside it are resolved against its directory. */
  readonly path: string;
  readonly readFile: ReadFile;
  /** The monotonic clock of token re-reads. @default performance.now */
  readonly now?: () => number;
}

/** `tokenFile` (client-go's spelling) or `token-file` (client-node's) of a raw user entry. */
function tokenFileOf(entry: unknown): unknown {
  const user = (entry as { user?: Record<string, unknown> } | null)?.user;
  if (typeof user !== "object" || user === null) return undefined;
  return user.tokenFile ?? user["token-file"];
}

/** The user entries without their token file, which client-node would read itself, once. */
function withoutTokenFiles(users: unknown): unknown {
  if (!Array.isArray(users)) return users;
  return users.map((entry) => {
    const user = (entry as { user?: unknown } | null)?.user;
    if (typeof user !== "object" || user === null) return entry;
    const { tokenFile: _a, "token-file": _b, ...rest } = user as Record<string, unknown>;
    return { ...entry, user: rest };
  });
}

/**
 * Builds an {@linkcode ApiConnection} from kubeconfig text. Supports a CA
 * (data or file), client certificates (data or file), bearer tokens (inline, or
 * `tokenFile`/`token-file`, re-read as {@linkcode fileToken} says) and basic auth. Exec plugins and auth providers are refused:
 * kube-gw may run no program but `ip`.
 *
 * @throws {KubeconfigError} naming what is wrong.
 */
export function connectionFromKubeconfig(text: string, options: KubeconfigOptions): ApiConnection {
  const { path, readFile } = options;
  const baseDir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) || "/" : ".";
  const doc = parseDoc(text, path);
  let clusters, users, contexts;
  try {
    clusters = newClusters(doc.clusters);
    users = newUsers(withoutTokenFiles(doc.users));
    contexts = newContexts(doc.contexts);
  } catch (cause) {
    throw new KubeconfigError(`Cannot load kubeconfig "${path}": ${(cause as Error).message}`, {
      cause,
    });
  }
  const contextName = doc["current-context"] as string | undefined;
  if (!contextName) throw new KubeconfigError(`kubeconfig "${path}" has no current-context`);
  const context = contexts.find((c) => c.name === contextName);
  if (!context) throw new KubeconfigError(`kubeconfig "${path}" has no context "${contextName}"`);
  const cluster = clusters.find((c) => c.name === context.cluster);
  if (!cluster) {
    throw new KubeconfigError(`kubeconfig "${path}" has no cluster "${context.cluster}"`);
  }
  const user = context.user ? users.find((u) => u.name === context.user) : undefined;
  if (context.user && !user) {
    throw new KubeconfigError(`kubeconfig "${path}" has no user "${context.user}"`);
  }
  if (cluster.skipTLSVerify) {
    throw new KubeconfigError(
      `cluster "${cluster.name}" sets insecure-skip-tls-verify, which kube-gw refuses: give it certificate-authority`,
    );
  }
  if (cluster.proxyUrl) {
    throw new KubeconfigError(
      `cluster "${cluster.name}" sets proxy-url, which kube-gw does not support`,
    );
  }
  if (cluster.tlsServerName) {
    throw new KubeconfigError(
      `cluster "${cluster.name}" sets tls-server-name, which kube-gw does not support`,
    );
  }
  if (user?.exec || user?.authProvider) {
    throw new KubeconfigError(
      `user "${user.name}" authenticates with ${
        user.exec ? "an exec plugin" : "an auth provider"
      }, which kube-gw does not support (it may run no program but ip): use a token or a client certificate`,
    );
  }
  const caCerts = cluster.caData
    ? [decodeBase64(cluster.caData, "certificate-authority-data")]
    : cluster.caFile
    ? [readRequired(readFile, resolvePath(baseDir, cluster.caFile), "certificate-authority")]
    : undefined;
  const cert = user?.certData
    ? decodeBase64(user.certData, "client-certificate-data")
    : user?.certFile
    ? readRequired(readFile, resolvePath(baseDir, user.certFile), "client-certificate")
    : undefined;
  const key = user?.keyData
    ? decodeBase64(user.keyData, "client-key-data")
    : user?.keyFile
    ? readRequired(readFile, resolvePath(baseDir, user.keyFile), "client-key")
    : undefined;
  if ((cert === undefined) !== (key === undefined)) {
    throw new KubeconfigError(
      `user "${user?.name}" has a client certificate without a key, or a key without a certificate`,
    );
  }
  const rawUser = Array.isArray(doc.users)
    ? doc.users.find((u) => (u as { name?: unknown } | null)?.name === context.user)
    : undefined;
  const tokenFileField = tokenFileOf(rawUser);
  if (tokenFileField !== undefined && typeof tokenFileField !== "string") {
    throw new KubeconfigError(`user "${user?.name}": tokenFile is not a string`);
  }
  const tokenFile = tokenFileField ? resolvePath(baseDir, tokenFileField) : undefined;
  const token = user?.token?.trim();
  if (token && !HEADER_TOKEN.test(token)) {
    throw new KubeconfigError(`user "${user?.name}": ${BAD_TOKEN}`);
  }
  // As client-go: a token file, when given, is the source (re-read); else the inline token.
  const fromFile = tokenFile
    ? fileToken(tokenFile, readFile, `tokenFile of user "${user?.name}"`, options.now)
    : undefined;
  const basic = user?.username ? `${user.username}:${user.password ?? ""}` : undefined;
  if (basic !== undefined && /[^\x20-\x7e\xa0-\xff]/.test(basic)) {
    throw new KubeconfigError(
      `user "${user?.name}": the username or password holds a control or non-Latin-1 character, which basic authentication cannot send (not shown)`,
    );
  }
  const server = checkServer(
    cluster.server,
    `cluster "${cluster.name}"`,
    !!(token || basic || fromFile),
  );
  return {
    server,
    caCerts,
    cert,
    key,
    token: fromFile ? fromFile.token : token ? () => token : undefined,
    refreshToken: fromFile?.refresh,
    tokenFile,
    basic,
    source: `kubeconfig ${path} (context ${contextName})`,
    caSource: cluster.caData
      ? `certificate-authority-data of cluster "${cluster.name}" in kubeconfig ${path}`
      : cluster.caFile
      ? `certificate-authority ${
        resolvePath(baseDir, cluster.caFile)
      } of cluster "${cluster.name}" in kubeconfig ${path}`
      : `the system's CA store (cluster "${cluster.name}" in kubeconfig ${path} sets no certificate-authority)`,
  };
}

/** The file-path fields of kubeconfig entries, which are relative to their own file. */
const PATH_FIELDS = {
  clusters: ["cluster", ["certificate-authority"]],
  users: ["user", ["client-certificate", "client-key", "tokenFile", "token-file"]],
} as const;

function parseDoc(text: string, path: string): Record<string, unknown> {
  try {
    const parsed = yaml.load(text);
    if (typeof parsed !== "object" || parsed === null) throw new Error("not a mapping");
    return parsed as Record<string, unknown>;
  } catch (cause) {
    throw new KubeconfigError(`Cannot parse kubeconfig "${path}": ${yamlProblem(cause)}`, {
      cause,
    });
  }
}

/**
 * Merges several kubeconfig files as kubectl does for `KUBECONFIG=a:b`: for
 * clusters, users and contexts the first file that names an entry wins, and
 * `current-context` comes from the first file that sets it. Relative paths
 * inside each entry are made absolute against that entry's own file.
 *
 * @returns the merged kubeconfig as YAML text, for {@linkcode connectionFromKubeconfig}.
 * @throws {KubeconfigError} when a file cannot be parsed.
 */
export function mergeKubeconfigs(files: readonly { path: string; text: string }[]): string {
  const merged: Record<string, unknown> = { apiVersion: "v1", kind: "Config" };
  const lists: Record<string, unknown[]> = { clusters: [], users: [], contexts: [] };
  const seen: Record<string, Set<unknown>> = {
    clusters: new Set(),
    users: new Set(),
    contexts: new Set(),
  };
  for (const { path, text } of files) {
    const doc = parseDoc(text, path);
    const baseDir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) || "/" : ".";
    if (merged["current-context"] === undefined && doc["current-context"]) {
      merged["current-context"] = doc["current-context"];
    }
    for (const key of ["clusters", "users", "contexts"] as const) {
      const entries = doc[key];
      if (!Array.isArray(entries)) continue;
      for (const entry of entries) {
        const name = (entry as { name?: unknown } | null)?.name;
        if (name === undefined || seen[key].has(name)) continue;
        seen[key].add(name);
        lists[key].push(key === "contexts" ? entry : absolutePaths(entry, key, baseDir));
      }
    }
  }
  return yaml.dump({ ...merged, ...lists });
}

function absolutePaths(entry: unknown, key: "clusters" | "users", baseDir: string): unknown {
  const [inner, fields] = PATH_FIELDS[key];
  const body = (entry as Record<string, unknown>)[inner];
  if (typeof body !== "object" || body === null) return entry;
  const out: Record<string, unknown> = { ...(body as Record<string, unknown>) };
  for (const f of fields) {
    if (typeof out[f] === "string" && out[f]) out[f] = resolvePath(baseDir, out[f] as string);
  }
  return { ...(entry as Record<string, unknown>), [inner]: out };
}

/** A bearer token as an HTTP header can carry it: visible ASCII, no space or control character. */
const HEADER_TOKEN = /^[\x21-\x7e]+$/;
const BAD_TOKEN =
  "the token holds a character an HTTP header cannot carry (a control character such as CR or LF, a space, or a non-ASCII character); the token is not shown";

/** js-yaml's error as reason, line and column, without the excerpt of the file it quotes. */
function yamlProblem(err: unknown): string {
  if (err instanceof yaml.YAMLException) {
    const mark = err.mark;
    const at = mark ? ` at line ${mark.line + 1}, column ${mark.column + 1}` : "";
    return `${err.reason}${at}`;
  }
  return (err as Error).message;
}

/**
 * Checks the API server's URL: http or https, no user name or password in it
 * (they would be logged and are never sent by fetch), and no credentials over
 * plain http.
 *
 * @returns the URL without a trailing slash.
 */
function checkServer(server: string, what: string, credentials: boolean): string {
  let url: URL;
  try {
    url = new URL(server);
  } catch (cause) {
    throw new KubeconfigError(`${what}: the server is not a URL`, { cause });
  }
  if (url.username || url.password) {
    throw new KubeconfigError(
      `${what}: the server URL holds a user name or password (not shown), which kube-gw refuses: give credentials in the user entry`,
    );
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new KubeconfigError(`${what}: the server URL must start with https://`);
  }
  if (url.protocol === "http:" && credentials) {
    throw new KubeconfigError(
      `${what}: the server ${url.origin} is plain http, and kube-gw sends no token or password in clear: use https`,
    );
  }
  return server.replace(/\/+$/, "");
}

/**
 * Builds an {@linkcode ApiConnection} for a pod: the API server from
 * `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT`, the service account's
 * CA, and its token, re-read at most every minute and at once after a 401,
 * so that kubelet's rotation works.
 *
 * @throws {KubeconfigError} when the variables or the files are missing.
 */
export function inClusterConnection(
  env: (name: string) => string | undefined,
  readFile: ReadFile,
  dir = SERVICE_ACCOUNT_DIR,
  now: () => number = () => performance.now(),
): ApiConnection {
  const host = env("KUBERNETES_SERVICE_HOST");
  const port = env("KUBERNETES_SERVICE_PORT");
  if (!host || !port) {
    throw new KubeconfigError(
      "in-cluster mode needs KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT (is kube-gw running in a pod?)",
    );
  }
  const ca = readRequired(readFile, `${dir}/ca.crt`, "service account CA");
  const tokenPath = `${dir}/token`;
  const source = fileToken(tokenPath, readFile, "service account token", now);
  if (!/^[A-Za-z0-9.:-]+$/.test(host) || !/^[0-9]{1,5}$/.test(port)) {
    throw new KubeconfigError(
      "KUBERNETES_SERVICE_HOST or KUBERNETES_SERVICE_PORT is not a host name or address and a port",
    );
  }
  return {
    server: checkServer(
      `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
      "in-cluster API server",
      true,
    ),
    caCerts: [ca],
    token: source.token,
    refreshToken: source.refresh,
    tokenFile: tokenPath,
    source: `in-cluster service account (${dir})`,
    caSource: `the service account CA ${dir}/ca.crt`,
  };
}
