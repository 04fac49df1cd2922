"""The sandbox's new root, built by the supervisor inside its fresh mount namespace (step 4
of `core.enter`): a size-capped tmpfs at `spec.root_dir` holding read-only binds of the system
directories, of the interpreter's own files and of `spec.binds`, the private tmpfs mounts of
`spec.tmpfs`, a minimal /dev and an /etc with only the sandbox's user. Raises OSError; the
caller turns it into `SandboxUnavailable`."""

from __future__ import annotations

import os
import re

from kubeserve_runtime.sandbox import linux
from kubeserve_runtime.sandbox.spec import Bind, SandboxSpec, Tmpfs

_ROOT_TMPFS = "size=4m,nr_inodes=4096,mode=0755"
_DEVICES = ("null", "zero", "full", "random", "urandom")
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_OCTAL = re.compile(r"\\([0-7]{3})")  # mountinfo escapes space, tab, newline and backslash
_MOUNT_FLAGS = {
    "ro": linux.MS_RDONLY,
    "nosuid": linux.MS_NOSUID,
    "nodev": linux.MS_NODEV,
    "noexec": linux.MS_NOEXEC,
    "noatime": linux.MS_NOATIME,
    "nodiratime": linux.MS_NODIRATIME,
    "relatime": linux.MS_RELATIME,
}


def _mounts_under(target: str) -> list[tuple[str, int]]:
    """(mount point, per-mount flags) of `target` and every mount below it."""
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            point = _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), parts[4])
            if point == target or point.startswith(target.rstrip("/") + "/"):
                flags = 0
                for option in parts[5].split(","):
                    flags |= _MOUNT_FLAGS.get(option, 0)
                found.append((point, flags))
    return found


def _bind(source: str, target: str, *, writable: bool) -> None:
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o644))
    linux.mount(source, target, None, linux.MS_BIND | linux.MS_REC)
    # A remount may not drop flags the original mount had (locked in a user namespace), so
    # keep them, add ours, and do it for every mount the recursive bind brought along.
    for point, flags in _mounts_under(target):
        extra = linux.MS_NOSUID | linux.MS_NODEV | (0 if writable else linux.MS_RDONLY)
        linux.mount(None, point, None, linux.MS_REMOUNT | linux.MS_BIND | flags | extra)


def build(spec: SandboxSpec, paths: list[str]) -> None:
    root = spec.root_dir.rstrip("/")
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    linux.mount("tmpfs", root, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, _ROOT_TMPFS)
    for top in _SYSTEM_DIRS:
        if os.path.islink(top):
            os.symlink(os.readlink(top), root + top)
        elif os.path.isdir(top):
            _bind(top, root + top, writable=False)
    _make_etc(root, spec)
    _make_dev(root)
    # Binds and private tmpfs mounts in path order, parents first: a bind below a tmpfs target
    # (the interpreter of a checkout under /tmp, say) must land on the tmpfs, not under it.
    mounts: list[Bind | Tmpfs] = [Bind(p, p) for p in paths]
    mounts += [*spec.binds, *spec.tmpfs]
    for mount in sorted(mounts, key=lambda m: (m.target.rstrip("/").count("/"), m.target)):
        if isinstance(mount, Tmpfs):
            os.makedirs(root + mount.target, exist_ok=True)
            options = f"size={mount.size_bytes},mode=0700,uid={spec.uid},gid={spec.gid}"
            flags = linux.MS_NOSUID | linux.MS_NODEV
            linux.mount("tmpfs", root + mount.target, "tmpfs", flags, options)
            continue
        if not os.path.exists(mount.source):
            raise OSError(0, f"bind source {mount.source} does not exist")
        _bind(mount.source, root + mount.target, writable=mount.writable)
    os.makedirs(root + "/proc", exist_ok=True)
    os.makedirs(root + spec.workdir, exist_ok=True)


def _make_etc(root: str, spec: SandboxSpec) -> None:
    etc = root + "/etc"
    os.makedirs(etc, exist_ok=True)
    # Just enough for the dynamic loader (ld.so.cache), time zones and libraries that look
    # their user up (getpass, some caches): a passwd with the sandbox's user and nothing else.
    files = {
        "passwd": f"sandbox:x:{spec.uid}:{spec.gid}:sandbox:/tmp:/usr/sbin/nologin\n",
        "group": f"sandbox:x:{spec.gid}:\n",
        "hosts": "127.0.0.1 localhost\n::1 localhost\n",
        "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
    }
    for name, text in files.items():
        with open(f"{etc}/{name}", "w", encoding="utf-8") as fh:
            fh.write(text)
    if os.path.exists("/etc/ld.so.cache"):
        _bind("/etc/ld.so.cache", etc + "/ld.so.cache", writable=False)
    if os.path.islink("/etc/localtime"):
        os.symlink(os.readlink("/etc/localtime"), etc + "/localtime")
    elif os.path.isfile("/etc/localtime"):
        _bind("/etc/localtime", etc + "/localtime", writable=False)


def _make_dev(root: str) -> None:
    dev = root + "/dev"
    os.makedirs(dev, exist_ok=True)
    flags = linux.MS_NOSUID | linux.MS_NOEXEC
    linux.mount("tmpfs", dev, "tmpfs", flags, "size=64k,nr_inodes=64,mode=0755")
    for name in _DEVICES:
        path = f"{dev}/{name}"
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o666))
        linux.mount(f"/dev/{name}", path, None, linux.MS_BIND)
        linux.mount(None, path, None, linux.MS_REMOUNT | linux.MS_BIND | flags)
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, f"{dev}/{name}")
