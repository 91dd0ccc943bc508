/**
 * A test-only entry point, never shipped: the real kube-gw (`main` from
 * main.ts) with planted calls. test/e2e/permissions_test.ts bundles it and
 * runs it exactly as the shipped bundle runs (same flags). It starts the agent
 * with its arguments, waits until `/readyz` answers 200 (start-up is over:
 * configuration loaded, read access given up, first list done), then tries
 * what the agent must never be able to do, prints one JSON line with the
 * outcome of each try, and exits.
 *
 * @module
 */

import { main } from "../../../main.ts";
import { SERVICE_ACCOUNT_DIR } from "../../../lib/kube/kubeconfig.ts";
import { waitFor } from "../wait.ts";

function arg(name: string): string {
  const found = Deno.args.find((a) => a.startsWith(`--${name}=`));
  if (!found) throw new Error(`planted entry: --${name}= is required`);
  return found.slice(name.length + 3);
}

/** "allowed", "denied" (a permission error), or the other error. */
async function attempt(fn: () => unknown): Promise<string> {
  try {
    await fn();
    return "allowed";
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
      return "denied";
    }
    return `error ${(err as Error).name}: ${(err as Error).message}`;
  }
}

async function waitReady(url: string): Promise<void> {
  await waitFor(
    `${url} to answer 200`,
    async () => {
      try {
        const res = await fetch(url);
        await res.body?.cancel();
        return res.status === 200;
      } catch {
        return false; // Not listening yet.
      }
    },
    20_000,
    100,
  );
}

async function planted(kubeconfig: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const spawn = (cmd: string, ...args: string[]) => () =>
    new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output();
  out["run /bin/sh"] = await attempt(spawn("/bin/sh", "-c", "true"));
  out["run sh"] = await attempt(spawn("sh", "-c", "true"));
  out["run ip"] = await attempt(spawn("ip", "-V"));
  const scratch = `/tmp/kgw-planted-${Deno.pid}`;
  out["write /tmp"] = await attempt(() => Deno.writeTextFileSync(scratch, "planted"));
  if (out["write /tmp"] === "allowed") Deno.removeSync(scratch);
  out["write the kubeconfig"] = await attempt(() =>
    Deno.writeTextFileSync(kubeconfig, "planted", { append: true })
  );
  out["read /etc/shadow"] = await attempt(() => Deno.readTextFileSync("/etc/shadow"));
  out["read the kubeconfig"] = await attempt(() => Deno.readTextFileSync(kubeconfig));
  out["read the service account token"] = await attempt(() =>
    Deno.readTextFileSync(`${SERVICE_ACCOUNT_DIR}/token`)
  );
  out["read /proc/self/environ"] = await attempt(() => Deno.readFileSync("/proc/self/environ"));
  out["env PATH"] = await attempt(() => {
    if (Deno.env.get("PATH") === undefined) {
      throw new Deno.errors.NotCapable("ignored: reads as unset");
    }
  });
  out["env all"] = await attempt(() => {
    if (!("PATH" in Deno.env.toObject())) {
      throw new Deno.errors.NotCapable("ignored: PATH is not in the environment it sees");
    }
  });
  out["sys hostname"] = await attempt(() => Deno.hostname());
  out["sys osRelease"] = await attempt(() => Deno.osRelease());
  out["ffi dlopen"] = await attempt(() => {
    const dlopen = (Deno as unknown as { dlopen?: (p: string, s: object) => unknown }).dlopen;
    if (!dlopen) throw new Error("Deno.dlopen is not available");
    return dlopen("libc.so.6", {});
  });
  for (
    const d of [
      { name: "read", path: "/" },
      { name: "write" },
      { name: "run" },
      { name: "env" },
      { name: "sys" },
      { name: "ffi" },
      { name: "net" },
    ] as Deno.PermissionDescriptor[]
  ) {
    const where = "path" in d ? ` ${d.path}` : "";
    out[`query ${d.name}${where}`] = Deno.permissions.querySync(d).state;
  }
  return out;
}

const ready = waitReady(`http://${arg("metrics-address")}/readyz`);
const running = main(Deno.args);
await Promise.race([ready, running.then((code) => Promise.reject(new Error(`exited ${code}`)))]);
const report = await planted(arg("kubeconfig"));
Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(report) + "\n"));
Deno.exit(0);
