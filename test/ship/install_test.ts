import assert from "node:assert/strict";
import { TestRouter } from "../support/procs/sshd.ts";
import { install, ROOT, runInstaller, sha } from "../support/procs/installer.ts";

/** No binary can be compiled here: a stand-in that says its version and logs its calls. */
async function writeStub(path: string, version: string, log: string): Promise<void> {
  await Deno.writeTextFile(
    path,
    `#!/bin/sh\n# kube-gw stand-in ${version}\necho "kube-gw $*" >> ${log}\n` +
      `[ "$1" != version ] || echo "kube-gw 0.1.0 (commit ${version})"\n`,
    { mode: 0o755 },
  );
}

/** What is at each path on the router: "mode sha256-prefix", or "absent". */
async function files(router: TestRouter, ...paths: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const p of paths) {
    const r = await router.ssh(
      `if [ -d ${p} ]; then stat -c %a ${p}; elif [ -e ${p} ]; then ` +
        `echo $(stat -c %a ${p}) $(sha256sum < ${p} | cut -c1-12); else echo absent; fi`,
    );
    out[p] = r.stdout.trim();
  }
  return out;
}

/** The calls that change something (queries such as is-active are left out). */
/**
 * The installer's temporary directories on the router. The test router shares
 * this machine's /tmp, so a test compares them before and after its own run
 * rather than count them (another installer may run beside it).
 */
async function leftovers(router: TestRouter): Promise<string[]> {
  const out = await router.ssh("ls -d /tmp/kube-gw-install.* 2>/dev/null || true");
  return out.stdout.split("\n").filter((l) => l !== "").sort();
}

async function changes(router: TestRouter): Promise<string[]> {
  return (await router.takeSystemctlLog()).filter((c) => !/ is-(enabled|active) /.test(c));
}

const BIN = "/usr/local/bin/kube-gw";
const UNIT = "/etc/systemd/system/kube-gw.service";
const ENV_FILE = "/etc/default/kube-gw";
const KUBECONFIG = "/etc/kube-gw/kubeconfig";
const EXAMPLE = "/usr/local/share/kube-gw/kube-gw.env";
const APISERVER = "/etc/systemd/system/kube-gw.service.d/apiserver.conf";
const APISERVER_EXAMPLE = "/usr/local/share/kube-gw/kube-gw-apiserver.conf";
const RT_PROTOS = "/etc/iproute2/rt_protos.d/kube-gw.conf";

/** The protocol `ip` names for this number on the router, through iproute2's own lookup. */
async function protocolName(router: TestRouter, n: number): Promise<string> {
  const r = await router.ssh(
    `ip netns add kgw-proto-$$ && ip -n kgw-proto-$$ link set lo up && ` +
      `ip -n kgw-proto-$$ route add unreachable 10.0.100.1/32 proto ${n} && ` +
      `ip -n kgw-proto-$$ route show 10.0.100.1/32; ip netns del kgw-proto-$$`,
  );
  assert.deepEqual(r.code, 0, r.stderr);
  return /proto (\S+)/.exec(r.stdout)?.[1] ?? `no route: ${r.stdout}`;
}

Deno.test("install.sh installs, is idempotent, starts once configured, upgrades with a restart, uninstalls", async (t) => {
  await using router = await TestRouter.start();
  const before = await leftovers(router);
  const log = `${router.dir}/kube-gw.log`;
  const stub = `${router.dir}/kube-gw-v1`;
  await writeStub(stub, "v1", log);
  const unit = await sha(`${ROOT}scripts/kube-gw.service`);
  const example = await sha(`${ROOT}scripts/kube-gw.env`);

  await t.step(
    "a first install copies the files, enables the unit, and says what to edit",
    async () => {
      const out = await install(router, "--binary", stub);
      assert.deepEqual(await files(router, BIN, UNIT, ENV_FILE, EXAMPLE, "/etc/kube-gw"), {
        [BIN]: `755 ${await sha(stub)}`,
        [UNIT]: `644 ${unit}`,
        [ENV_FILE]: `644 ${example}`,
        [EXAMPLE]: `644 ${example}`,
        "/etc/kube-gw": "700",
      });
      assert.deepEqual(await changes(router), [
        "systemctl daemon-reload",
        "systemctl enable --quiet kube-gw.service",
      ]);
      assert.match(out.stdout, /binary: kube-gw 0\.1\.0 \(commit v1\)/);
      assert.match(out.stdout, /Not started/);
      assert.match(
        out.stdout,
        /set KUBEGW_NETWORK \(the managed networks\) in \/etc\/default\/kube-gw/,
      );
      assert.match(out.stdout, /put a kubeconfig for kube-gw at \/etc\/kube-gw\/kubeconfig/);
      assert.match(
        out.stdout,
        /allow the API server: the unit reaches localhost only\. Run the installer again with --api-server-address ADDR/,
      );
      assert.deepEqual(await files(router, APISERVER_EXAMPLE, APISERVER), {
        [APISERVER_EXAMPLE]: `644 ${await sha(`${ROOT}scripts/kube-gw-apiserver.conf`)}`,
        [APISERVER]: "absent",
      });
      // kube-gw's routes are named for iproute2: `ip route` shows `proto kube-gw`.
      const names = await router.ssh(`cat ${RT_PROTOS}`);
      assert.match(names.stdout, /^200 kube-gw$/m);
      assert.deepEqual(await protocolName(router, 200), "kube-gw");
      // Nothing is left in the router's /tmp.
      assert.deepEqual(await leftovers(router), before);
    },
  );

  await t.step("running it again changes nothing and calls nothing but queries", async () => {
    const before = await files(router, BIN, UNIT, ENV_FILE);
    const out = await install(router, "--binary", stub);
    assert.deepEqual(await files(router, BIN, UNIT, ENV_FILE), before);
    assert.deepEqual(await changes(router), []);
    assert.match(out.stdout, /unchanged \/usr\/local\/bin\/kube-gw/);
    assert.match(out.stdout, /kept \/etc\/default\/kube-gw/);
    assert.match(out.stdout, /unchanged \/etc\/iproute2\/rt_protos\.d\/kube-gw\.conf/);
  });

  await t.step("a configured route protocol is the one named kube-gw", async () => {
    const set = await router.ssh(`echo KUBEGW_ROUTE_PROTOCOL=201 >> ${ENV_FILE}`);
    assert.deepEqual(set.code, 0, set.stderr);
    await install(router, "--binary", stub);
    assert.match((await router.ssh(`cat ${RT_PROTOS}`)).stdout, /^201 kube-gw$/m);
    assert.deepEqual(await protocolName(router, 201), "kube-gw");
    assert.deepEqual(await protocolName(router, 200), "200");
    assert.deepEqual(await changes(router), []);
    const back = await router.ssh(`sed -i '/^KUBEGW_ROUTE_PROTOCOL=/d' ${ENV_FILE}`);
    assert.deepEqual(back.code, 0, back.stderr);
    await install(router, "--binary", stub);
    assert.match((await router.ssh(`cat ${RT_PROTOS}`)).stdout, /^200 kube-gw$/m);
  });

  await t.step("once configured, it starts the service", async () => {
    const edit = await router.ssh(
      "sed -i 's|^KUBEGW_NETWORK=$|KUBEGW_NETWORK=10.0.100.0/24|' /etc/default/kube-gw && " +
        `echo 'apiVersion: v1' > ${KUBECONFIG} && chmod 600 ${KUBECONFIG}`,
    );
    assert.deepEqual(edit.code, 0, edit.stderr);
    // The unit reaches localhost only: without the API server's addresses it is not started.
    const notYet = await install(router, "--binary", stub);
    assert.deepEqual(await changes(router), []);
    assert.match(notYet.stdout, /Not started/);
    assert.doesNotMatch(notYet.stdout, /KUBEGW_NETWORK|put a kubeconfig/);
    assert.match(notYet.stdout, /allow the API server/);
    const out = await install(
      router,
      "--binary",
      stub,
      "--api-server-address",
      "10.0.0.1",
      "--api-server-address=2001:db8::1",
    );
    const dropin = await router.ssh(`cat ${APISERVER}`);
    assert.match(dropin.stdout, /^\[Service\]\nIPAddressAllow=10\.0\.0\.1 2001:db8::1\n$/m);
    assert.deepEqual(await changes(router), [
      "systemctl daemon-reload",
      "systemctl start kube-gw.service",
    ]);
    assert.match(
      out.stdout,
      /installed \/etc\/systemd\/system\/kube-gw\.service\.d\/apiserver\.conf/,
    );
    assert.match(out.stdout, /started kube-gw\.service/);
  });

  await t.step("new API server addresses replace the drop-in and restart the service", async () => {
    await install(router, "--binary", stub, "--api-server-address", "10.0.0.2");
    assert.match((await router.ssh(`cat ${APISERVER}`)).stdout, /^IPAddressAllow=10\.0\.0\.2$/m);
    assert.deepEqual(await changes(router), [
      "systemctl daemon-reload",
      "systemctl restart kube-gw.service",
    ]);
    // The same addresses again, or none given: the drop-in stays as it is.
    await install(router, "--binary", stub, "--api-server-address", "10.0.0.2");
    await install(router, "--binary", stub);
    assert.deepEqual(await changes(router), []);
    assert.match((await router.ssh(`cat ${APISERVER}`)).stdout, /^IPAddressAllow=10\.0\.0\.2$/m);
  });

  await t.step(
    "a new binary is installed and the service restarted; the settings stay",
    async () => {
      const v2 = `${router.dir}/kube-gw-v2`;
      await writeStub(v2, "v2", log);
      const out = await install(router, "--binary", v2);
      assert.deepEqual((await files(router, BIN))[BIN], `755 ${await sha(v2)}`);
      assert.deepEqual(await changes(router), ["systemctl restart kube-gw.service"]);
      assert.match(out.stdout, /restarted kube-gw\.service \(the addresses stayed in place\)/);
      assert.match(out.stdout, /binary: kube-gw 0\.1\.0 \(commit v2\)/);
      const env = await router.ssh(`grep ^KUBEGW_NETWORK= ${ENV_FILE}`);
      assert.deepEqual(env.stdout, "KUBEGW_NETWORK=10.0.100.0/24\n");
    },
  );

  await t.step(
    "--uninstall stops, withdraws the addresses, disables, removes; settings stay",
    async () => {
      await Deno.remove(log);
      const out = await install(router, "--uninstall");
      assert.deepEqual(await changes(router), [
        "systemctl stop kube-gw.service",
        "systemctl disable --quiet kube-gw.service",
        "systemctl daemon-reload",
      ]);
      assert.deepEqual(await Deno.readTextFile(log), "kube-gw drain --network=10.0.100.0/24\n");
      const after = await files(router, BIN, UNIT, EXAMPLE, ENV_FILE, KUBECONFIG, RT_PROTOS);
      assert.deepEqual(
        [after[BIN], after[UNIT], after[EXAMPLE], after[RT_PROTOS]],
        ["absent", "absent", "absent", "absent"],
      );
      assert.ok(after[ENV_FILE] !== "absent" && after[KUBECONFIG] !== "absent", "settings kept");
      assert.match(
        out.stdout,
        /kept \/etc\/default\/kube-gw, \/etc\/kube-gw and \/etc\/systemd\/system\/kube-gw\.service\.d/,
      );
      assert.deepEqual((await files(router, APISERVER_EXAMPLE))[APISERVER_EXAMPLE], "absent");
      // Again: nothing left to do, and still a success.
      await install(router, "--uninstall");
      assert.deepEqual(await changes(router), ["systemctl daemon-reload"]);
    },
  );
});

Deno.test("install.sh names a missing binary and an unreachable router", async () => {
  await using router = await TestRouter.start();
  const before = await leftovers(router);
  const missing = await runInstaller(router, "--binary", `${router.dir}/nope`);
  assert.deepEqual(missing.code, 1);
  assert.match(missing.stderr, /nope not found: build it with deno task compile, or pass --binary/);
  assert.deepEqual(await leftovers(router), before);
  const unreachable = await runInstaller(router, "--ssh-option", "Port=1");
  assert.deepEqual(unreachable.code, 1);
  assert.match(unreachable.stderr, /cannot reach router over ssh/);
});

Deno.test("install.sh refuses an --api-server-address that is not an address, before any ssh", async () => {
  await using router = await TestRouter.start();
  const before = await leftovers(router);
  for (const bad of ["10.0.0.1; reboot", "$(id)", "api.example.com", "", "10.0.0.0/8/8"]) {
    const r = await runInstaller(router, "--api-server-address", bad);
    assert.deepEqual(r.code, 2, `${bad}: ${r.stdout}${r.stderr}`);
    assert.equal(
      r.stderr,
      `install.sh: --api-server-address: "${bad}" is not an IP address or prefix\n`,
    );
  }
  assert.deepEqual(await leftovers(router), before);
});
