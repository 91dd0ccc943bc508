import assert from "node:assert/strict";
import { TestRouter } from "../support/procs/sshd.ts";
import { install, ROOT, runInstaller, sha } from "../support/procs/installer.ts";

/** What is at each path: "mode sha256-prefix", the mode of a directory, or "absent". */
async function files(...paths: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const p of paths) {
    try {
      const st = await Deno.stat(p);
      const mode = (st.mode! & 0o777).toString(8);
      out[p] = st.isDirectory ? mode : `${mode} ${await sha(p)}`;
    } catch {
      out[p] = "absent";
    }
  }
  return out;
}

async function changes(router: TestRouter): Promise<string[]> {
  return (await router.takeSystemctlLog()).filter((c) => !/ is-(enabled|active) /.test(c));
}

/** A directory laid out like a SONiC switch's root, as far as the installer looks. */
async function sonicRoot(dir: string, { version = true } = {}): Promise<string> {
  const root = `${dir}/sonic-root`;
  for (
    const d of [
      "etc/sonic",
      "etc/systemd/system",
      "etc/config-setup/config-migration-post-hooks.d",
      "host",
    ]
  ) await Deno.mkdir(`${root}/${d}`, { recursive: true });
  if (version) {
    await Deno.writeTextFile(
      `${root}/etc/sonic/sonic_version.yml`,
      "build_version: 'SONiC.202405.0'\nasic_type: broadcom\n",
    );
  }
  return root;
}

Deno.test("install.sh --sonic: /host for the binary and settings, units with the SONiC drop-in and the FRR unit, a migration hook that puts them back after an image upgrade", async (t) => {
  await using router = await TestRouter.start();
  const log = `${router.dir}/kube-gw.log`;
  const stub = `${router.dir}/kube-gw-stub`;
  await Deno.writeTextFile(
    stub,
    `#!/bin/sh\necho "kube-gw $*" >> ${log}\n[ "$1" != version ] || echo "kube-gw 0.1.0 (commit s1)"\n`,
    { mode: 0o755 },
  );
  const root = await sonicRoot(router.dir);
  const HOST = `${root}/host/kube-gw`;
  const SYS = `${root}/etc/systemd/system`;
  const HOOK = `${root}/etc/config-setup/config-migration-post-hooks.d/kube-gw`;
  const installed = [
    `${HOST}/kube-gw`,
    `${HOST}/kube-gw.env`,
    `${HOST}/frr-sonic.conf`,
    `${HOST}/kube-gw-frr.sh`,
    `${HOST}/secret`,
    `${SYS}/kube-gw.service`,
    `${SYS}/kube-gw.service.d/sonic.conf`,
    `${SYS}/kube-gw-frr.service`,
    HOOK,
  ];

  await t.step("a tree without sonic_version.yml is not a SONiC switch", async () => {
    const other = await sonicRoot(`${router.dir}/other`, { version: false });
    const r = await runInstaller(router, "--binary", stub, "--sonic-root", other);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /sonic_version\.yml is missing: not a SONiC switch/);
    assert.equal((await files(`${other}/host/kube-gw`))[`${other}/host/kube-gw`], "absent");
    await changes(router);
  });

  await t.step("a first install puts everything in place and enables both units", async () => {
    const out = await install(router, "--binary", stub, "--sonic-root", root);
    assert.deepEqual(await files(...installed), {
      [`${HOST}/kube-gw`]: `755 ${await sha(stub)}`,
      [`${HOST}/kube-gw.env`]: `644 ${await sha(`${ROOT}scripts/kube-gw.env`)}`,
      [`${HOST}/frr-sonic.conf`]: `644 ${await sha(`${ROOT}scripts/router/frr-sonic.conf`)}`,
      [`${HOST}/kube-gw-frr.sh`]: `755 ${await sha(`${ROOT}scripts/sonic/kube-gw-frr.sh`)}`,
      [`${HOST}/secret`]: "700",
      [`${SYS}/kube-gw.service`]: `644 ${await sha(`${ROOT}scripts/kube-gw.service`)}`,
      [`${SYS}/kube-gw.service.d/sonic.conf`]: `644 ${await sha(
        `${ROOT}scripts/sonic/kube-gw-sonic.conf`,
      )}`,
      [`${SYS}/kube-gw-frr.service`]: `644 ${await sha(
        `${ROOT}scripts/sonic/kube-gw-frr.service`,
      )}`,
      [HOOK]: `755 ${await sha(`${ROOT}scripts/sonic/kube-gw-migration-hook`)}`,
    });
    // The hook's copies of the units, on /host.
    for (const u of ["kube-gw.service", "kube-gw.service.d/sonic.conf", "kube-gw-frr.service"]) {
      assert.deepEqual(
        (await files(`${HOST}/systemd/${u}`))[`${HOST}/systemd/${u}`],
        (await files(`${SYS}/${u}`))[`${SYS}/${u}`],
        u,
      );
    }
    assert.deepEqual(await changes(router), [
      "systemctl daemon-reload",
      "systemctl daemon-reload",
      "systemctl daemon-reload",
      "systemctl enable --quiet kube-gw-frr.service",
      "systemctl enable --quiet kube-gw.service",
    ]);
    assert.match(out.stdout, /binary: kube-gw 0\.1\.0 \(commit s1\)/);
    assert.match(out.stdout, /set KUBEGW_NETWORK .* in .*\/host\/kube-gw\/kube-gw\.env/);
    assert.match(
      out.stdout,
      /put a kubeconfig for kube-gw at .*\/host\/kube-gw\/secret\/kubeconfig/,
    );
  });

  await t.step("running it again changes nothing", async () => {
    const before = await files(...installed);
    await install(router, "--binary", stub, "--sonic-root", root);
    assert.deepEqual(await files(...installed), before);
    assert.deepEqual(await changes(router), []);
  });

  await t.step(
    "after an image upgrade (a fresh /etc), the hook puts the units back and enables them",
    async () => {
      const before = await files(...installed);
      await Deno.remove(`${root}/etc/systemd/system`, { recursive: true });
      await Deno.mkdir(`${root}/etc/systemd/system`);
      await Deno.remove(HOOK);
      // config-setup restores the hook with the old configuration and runs it.
      const r = await router.ssh(
        `KUBEGW_SONIC_ROOT=${root} sh ${HOST}/migration-hook`,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await files(...installed), before);
      assert.deepEqual(await changes(router), [
        "systemctl daemon-reload",
        "systemctl enable --quiet kube-gw.service kube-gw-frr.service",
        "systemctl start --no-block kube-gw.service kube-gw-frr.service",
      ]);
    },
  );

  await t.step(
    "kube-gw-frr.sh waits for router bgp ASN and sends the snippet as one vtysh session",
    async () => {
      const vlog = `${router.dir}/vtysh.log`;
      const vtysh = `${router.dir}/vtysh`;
      await Deno.writeTextFile(
        vtysh,
        `#!/bin/sh\nif [ "$2" = "show running-config" ]; then echo "router bgp 65100"; exit 0; fi\n` +
          `for a in "$@"; do echo "$a" >> ${vlog}; done\n`,
        { mode: 0o755 },
      );
      const r = await router.ssh(
        `VTYSH=${vtysh} CONFIG_ASN="echo 65100" sh ${HOST}/kube-gw-frr.sh ${HOST}/frr-sonic.conf`,
      );
      assert.equal(r.code, 0, r.stderr);
      const sent = (await Deno.readTextFile(vlog)).split("\n").filter((l) => l !== "-c" && l);
      assert.deepEqual(sent.slice(0, 2), [
        "configure terminal",
        "ip prefix-list KUBE-GW-SERVICES seq 10 permit 10.0.100.0/24 le 32",
      ]);
      assert.ok(sent.includes("router bgp 65100"), sent.join("\n"));
      assert.ok(sent.includes("  redistribute connected route-map V4_CONNECTED_ROUTES"));
      assert.equal(sent.at(-1), "end");
      assert.ok(!sent.some((l) => l.startsWith("!")), "no comments sent");
      const noAsn = await router.ssh(
        `VTYSH=${vtysh} CONFIG_ASN="echo" sh ${HOST}/kube-gw-frr.sh ${HOST}/frr-sonic.conf`,
      );
      assert.equal(noAsn.code, 1);
      assert.match(noAsn.stderr, /no BGP ASN in CONFIG_DB/);
    },
  );

  await t.step(
    "--uninstall drains through the SONiC store and removes what it put; settings stay",
    async () => {
      await router.ssh(
        `sed -i 's|^KUBEGW_NETWORK=$|KUBEGW_NETWORK=10.0.100.0/24|' ${HOST}/kube-gw.env && ` +
          `echo KUBEGW_SONIC_LOOPBACK=Loopback1001 >> ${HOST}/kube-gw.env`,
      );
      await Deno.remove(log).catch(() => {});
      await install(router, "--uninstall", "--sonic-root", root);
      assert.equal(
        await Deno.readTextFile(log),
        "kube-gw drain --network=10.0.100.0/24 --install-as=sonic --sonic-loopback=Loopback1001\n",
      );
      const after = await files(...installed, `${HOST}/systemd`);
      for (
        const gone of [
          `${HOST}/kube-gw`,
          `${HOST}/kube-gw-frr.sh`,
          `${SYS}/kube-gw.service`,
          `${SYS}/kube-gw.service.d/sonic.conf`,
          `${SYS}/kube-gw-frr.service`,
          HOOK,
          `${HOST}/systemd`,
        ]
      ) {
        assert.equal(after[gone], "absent", gone);
      }
      for (const kept of [`${HOST}/kube-gw.env`, `${HOST}/frr-sonic.conf`, `${HOST}/secret`]) {
        assert.notEqual(after[kept], "absent", kept);
      }
      // Started by the hook above, so stopped first.
      assert.deepEqual(await changes(router), [
        "systemctl stop kube-gw.service",
        "systemctl disable --quiet kube-gw.service",
        "systemctl disable --quiet kube-gw-frr.service",
        "systemctl daemon-reload",
      ]);
    },
  );
});
