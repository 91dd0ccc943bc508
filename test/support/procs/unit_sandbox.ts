/**
 * Runs a command the way a systemd unit would confine it, where no systemd
 * runs (these machines have none as PID 1): read from the unit file (and
 * drop-ins) and applied by hand with unshare, setpriv and test/support/
 * sandbox.py:
 *
 * - DynamicUser=: an unprivileged user (nobody), no supplementary groups;
 * - AmbientCapabilities=, CapabilityBoundingSet=, NoNewPrivileges=;
 * - SystemCallFilter= (groups expanded by `systemd-analyze syscall-filter`,
 *   `@default` added to an allow list as systemd does), SystemCallErrorNumber=,
 *   RestrictAddressFamilies=, RestrictNamespaces= (coarsely: setns and
 *   unshare allowed or not);
 * - ProtectSystem=strict (/ read-only), ProcSubset=pid, ProtectProc=invisible,
 *   InaccessiblePaths= (a mode-0000 node bound over each path).
 *
 * Not applied: the other mount-namespace options, cgroup limits, and the
 * finer points (clone flags, personality, realtime). Nor SocketBindAllow=/
 * SocketBindDeny= and IPAddressAllow=/IPAddressDeny=: systemd (PID 1) attaches
 * them as BPF programs to the service's cgroup (cgroup/bind4, bind6, and
 * ingress/egress filters), which needs a cgroup of the service's own and
 * systemd's programs; this emulation runs in the caller's cgroup and has
 * neither, so a test here cannot show a bind to another port failing.
 *
 * @module
 */

const HERE = new URL("./", import.meta.url).pathname;
const decoder = new TextDecoder();

/** The [Service] directives of a unit and its drop-ins, in order. */
export async function serviceDirectives(files: readonly string[]): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for (const file of files) {
    let section = "";
    for (const raw of (await Deno.readTextFile(file)).split("\n")) {
      const line = raw.trim();
      if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
      const s = /^\[(.+)\]$/.exec(line);
      if (s) {
        section = s[1];
        continue;
      }
      const eq = line.indexOf("=");
      if (section === "Service" && eq > 0) out.push([line.slice(0, eq), line.slice(eq + 1)]);
    }
  }
  return out;
}

/** Every `@group` of `systemd-analyze syscall-filter`, with its members (groups or calls). */
async function syscallGroups(): Promise<Map<string, string[]>> {
  const out = await new Deno.Command("systemd-analyze", {
    args: ["syscall-filter", "--no-pager"],
    stdin: "null",
  }).output();
  if (!out.success) {
    throw new Error(`systemd-analyze syscall-filter: ${decoder.decode(out.stderr)}`);
  }
  const groups = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of decoder.decode(out.stdout).split("\n")) {
    const t = line.trim();
    if (line.startsWith("@")) groups.set(t, current = []);
    else if (t && !t.startsWith("#") && current && /^\s/.test(line)) current.push(t);
    else if (!t) current = undefined;
  }
  return groups;
}

function expand(groups: Map<string, string[]>, item: string, into: Set<string>): void {
  if (!item.startsWith("@")) {
    into.add(item);
    return;
  }
  const members = groups.get(item);
  if (!members) throw new Error(`unknown system call group ${item}`);
  for (const m of members) expand(groups, m, into);
}

const FAMILIES: Record<string, number> = { AF_UNIX: 1, AF_INET: 2, AF_INET6: 10, AF_NETLINK: 16 };
const ERRNO: Record<string, number> = { EPERM: 1, EACCES: 13, ENOSYS: 38 };

/** What the unit asks for, in the terms the sandbox applies. */
export interface Profile {
  readonly ambient: readonly string[];
  readonly bounding: readonly string[];
  readonly allow: readonly string[];
  readonly errno: number;
  readonly families: readonly number[];
  /** InaccessiblePaths=, each with its "-" (ignore if missing) prefix kept. */
  readonly inaccessible: readonly string[];
}

/** Reads a unit (and drop-ins) into a {@linkcode Profile}; refuses what it cannot apply. */
export async function unitProfile(files: readonly string[]): Promise<Profile> {
  const d = await serviceDirectives(files);
  const values = (key: string) => {
    let acc: string[] = [];
    for (const [k, v] of d) {
      if (k !== key) continue;
      acc = v.trim() === "" ? [] : [...acc, ...v.trim().split(/\s+/)];
    }
    return acc;
  };
  if (!values("DynamicUser").includes("yes") || !values("NoNewPrivileges").includes("yes")) {
    throw new Error("the sandbox applies DynamicUser=yes and NoNewPrivileges=yes units only");
  }
  const groups = await syscallGroups();
  let allow: Set<string> | undefined;
  for (const [k, v] of d) {
    if (k !== "SystemCallFilter") continue;
    const deny = v.startsWith("~");
    const items = v.replace(/^~/, "").trim().split(/\s+/);
    if (!allow) {
      if (deny) throw new Error("the sandbox applies allow-list system call filters only");
      allow = new Set();
      expand(groups, "@default", allow);
    }
    const set = new Set<string>();
    for (const item of items) expand(groups, item, set);
    for (const s of set) deny ? allow.delete(s) : allow.add(s);
  }
  if (!allow) throw new Error("the unit has no SystemCallFilter=");
  const namespaces = values("RestrictNamespaces");
  if (namespaces.includes("yes") || namespaces.length === 0) {
    allow.delete("setns");
    allow.delete("unshare");
  }
  const families = values("RestrictAddressFamilies").map((f) => {
    if (!(f in FAMILIES)) throw new Error(`unknown address family ${f}`);
    return FAMILIES[f];
  });
  const errno = ERRNO[values("SystemCallErrorNumber").at(-1) ?? "EPERM"];
  const cap = (c: string) => c.replace(/^CAP_/, "").toLowerCase();
  return {
    ambient: [...new Set(values("AmbientCapabilities").map(cap))],
    bounding: [...new Set(values("CapabilityBoundingSet").map(cap))],
    allow: [...allow].sort(),
    errno,
    families,
    inaccessible: values("InaccessiblePaths"),
  };
}

/** The argv that runs `cmd` confined as `profile` says (start it as root). */
export function sandboxCommand(profile: Profile, cmd: readonly string[]): string[] {
  const caps = (list: readonly string[]) => ["-all", ...list.map((c) => `+${c}`)].join(",");
  const spec = JSON.stringify({
    allow: profile.allow,
    errno: profile.errno,
    families: profile.families,
  });
  return [
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "--",
    "/usr/bin/python3",
    `${HERE}sandbox.py`,
    "mounts",
    ...profile.inaccessible,
    "--",
    "/usr/bin/setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    `--inh-caps=${caps(profile.ambient)}`,
    `--ambient-caps=${caps(profile.ambient)}`,
    `--bounding-set=${caps(profile.bounding)}`,
    "--no-new-privs",
    "--",
    "/usr/bin/python3",
    `${HERE}sandbox.py`,
    "seccomp",
    spec,
    "--",
    ...cmd,
  ];
}
