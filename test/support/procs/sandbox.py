#!/usr/bin/python3
"""Test-only: parts of a systemd unit's sandbox, applied by hand where no
systemd runs, then exec of a command (the pid stays the same).

  sandbox.py mounts [PATH...] -- CMD...
      As root, in a private mount namespace (unshare --mount): covers each PATH
      with an inaccessible node (InaccessiblePaths=; a leading "-" ignores a
      missing PATH, as systemd does), makes / read-only (ProtectSystem=strict)
      and mounts a /proc that shows processes only, and only the caller's
      (ProcSubset=pid, ProtectProc=invisible); then execs CMD.

  sandbox.py seccomp JSON -- CMD...
      Loads a seccomp filter, as SystemCallFilter= and RestrictAddressFamilies=
      do: the system calls in JSON["allow"] run, any other fails with
      JSON["errno"]; socket() works only for the families in JSON["families"].
      Needs no_new_privs (setpriv --no-new-privs). Then execs CMD.

test/support/unit_sandbox.ts reads the unit and builds these command lines.
"""
import ctypes
import json
import os
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND = 32, 4096
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_EQ = 4


class ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


def check(rc, what):
    if rc < 0 if isinstance(rc, int) else not rc:
        err = ctypes.get_errno() or -rc
        sys.exit(f"sandbox.py: {what} failed: {os.strerror(err)}")


def inaccessible(libc, paths):
    """What InaccessiblePaths= does: a mode-0000 node of the same type over each path."""
    import tempfile
    scratch = tempfile.mkdtemp(prefix="kube-gw-inaccessible-")
    node_dir = os.path.join(scratch, "dir")
    node_reg = os.path.join(scratch, "reg")
    os.mkdir(node_dir, 0)
    os.close(os.open(node_reg, os.O_CREAT | os.O_WRONLY, 0))
    os.chmod(node_dir, 0)
    os.chmod(node_reg, 0)
    for raw in paths:
        path = raw.lstrip("-")
        if not os.path.lexists(path):
            if raw.startswith("-"):
                continue
            sys.exit(f"sandbox.py: InaccessiblePaths={raw}: no such path")
        node = node_dir if os.path.isdir(path) else node_reg
        check(libc.mount(node.encode(), path.encode(), None, MS_BIND, None), f"hide {path}")
        check(libc.mount(None, path.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY, None),
              f"read-only {path}")


def mounts(hidden=()):
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
    inaccessible(libc, hidden)
    check(libc.mount(None, b"/", None, MS_REMOUNT | MS_BIND | MS_RDONLY, None), "read-only /")
    check(libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                     b"hidepid=invisible,subset=pid"), "mount /proc")


def seccomp(spec):
    lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(ArgCmp)]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    ctx = lib.seccomp_init(0x00050000 | (spec["errno"] & 0xFFFF))
    check(ctx, "seccomp_init")
    for name in spec["allow"]:
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr < 0:  # not a system call of this architecture
            continue
        if name == "socket":
            for family in spec["families"]:
                cmp = ArgCmp(0, SCMP_CMP_EQ, family, 0)
                check(lib.seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, 1, ctypes.byref(cmp)),
                      f"rule socket({family})")
        else:
            check(lib.seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, 0, None), f"rule {name}")
    check(lib.seccomp_load(ctx), "seccomp_load")


def main(argv):
    if "--" not in argv:
        sys.exit(__doc__)
    split = argv.index("--")
    mode, args, cmd = argv[0], argv[1:split], argv[split + 1:]
    if mode == "mounts":
        mounts(args)
    elif mode == "seccomp":
        seccomp(json.loads(args[0]))
    else:
        sys.exit(__doc__)
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
