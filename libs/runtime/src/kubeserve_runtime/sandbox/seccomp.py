"""A seccomp deny-list for confined processes: a classic BPF program built with struct.

A deny-list (like Docker's default profile in spirit, much shorter): the process keeps every
ordinary system call a Python model server and its libraries use, and loses the ones that
administer the kernel or escape a namespace - mounts, new namespaces, ptrace and cross-process
memory access, kernel modules and kexec, BPF and perf, keyrings, userfaultfd, file handles,
io_uring, swap, reboot, accounting, quotas, the kernel log. Capabilities are already gone when
the filter is installed; the filter removes the attack surface of calls that need none (new
user namespaces, io_uring, userfaultfd, perf) and is a second wall for the rest.

Only x86_64 and aarch64 are known. A foreign architecture value in a call (the i386 entry on
x86_64, `int 0x80`) kills the process, as does the x32 ABI; on an unknown machine no filter is
built (`build()` returns None) and the sandbox records that seccomp is absent.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

from kubeserve_runtime.sandbox import linux

# <linux/filter.h>, <linux/seccomp.h>
_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_JSET_K = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_RET_K = 0x06  # BPF_RET | BPF_K
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_RET_ALLOW = 0x7FFF0000
_OFFSET_NR = 0
_OFFSET_ARCH = 4
_OFFSET_ARG0_LOW = 16  # args[0], low 32 bits (both known machines are little-endian)
_X32_SYSCALL_BIT = 0x40000000

_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}

# name -> (x86_64 number, aarch64 number or None when the call does not exist there)
_DENIED: dict[str, tuple[int, int | None]] = {
    "mount": (165, 40),
    "umount2": (166, 39),
    "pivot_root": (155, 41),
    "chroot": (161, 51),
    "unshare": (272, 97),
    "setns": (308, 268),
    "open_tree": (428, 428),
    "move_mount": (429, 429),
    "fsopen": (430, 430),
    "fsconfig": (431, 431),
    "fsmount": (432, 432),
    "fspick": (433, 433),
    "mount_setattr": (442, 442),
    "ptrace": (101, 117),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "process_madvise": (440, 440),
    "pidfd_getfd": (438, 438),
    "kcmp": (312, 272),
    "kexec_load": (246, 104),
    "kexec_file_load": (320, 294),
    "init_module": (175, 105),
    "finit_module": (313, 273),
    "delete_module": (176, 106),
    "bpf": (321, 280),
    "perf_event_open": (298, 241),
    "keyctl": (250, 219),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "userfaultfd": (323, 282),
    "open_by_handle_at": (304, 265),
    "name_to_handle_at": (303, 264),
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
    "swapon": (167, 224),
    "swapoff": (168, 225),
    "reboot": (169, 142),
    "acct": (163, 89),
    "quotactl": (179, 60),
    "quotactl_fd": (443, 443),
    "syslog": (103, 116),
    "fanotify_init": (300, 262),
    "lookup_dcookie": (212, 18),
    "vhangup": (153, 58),
    "iopl": (172, None),
    "ioperm": (173, None),
    "uselib": (134, None),
    "nfsservctl": (180, 42),
}
_CLONE = (56, 220)
# clone3 passes its flags in memory, out of a filter's reach: ENOSYS makes the C library fall
# back to clone(), whose flags the filter can check.
_CLONE3 = (435, 435)


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def denied_calls() -> list[str]:
    return sorted([*_DENIED, "clone (with namespace flags)", "clone3"])


def build(machine: str | None = None) -> bytes | None:
    """The filter program for `machine` (default: this one); None on an unknown machine."""
    machine = machine or platform.machine()
    arch = _ARCH.get(machine)
    if arch is None:
        return None
    column = 0 if machine == "x86_64" else 1
    eperm = _RET_ERRNO | errno.EPERM
    prog = [
        _insn(_LD_W_ABS, _OFFSET_ARCH),
        _insn(_JEQ_K, arch, jt=1),
        _insn(_RET_K, _RET_KILL_PROCESS),
        _insn(_LD_W_ABS, _OFFSET_NR),
    ]
    if machine == "x86_64":
        prog += [_insn(_JGE_K, _X32_SYSCALL_BIT, jf=1), _insn(_RET_K, _RET_KILL_PROCESS)]
    for numbers in _DENIED.values():
        number = numbers[column]
        if number is not None:
            prog += [_insn(_JEQ_K, number, jf=1), _insn(_RET_K, eperm)]
    prog += [
        _insn(_JEQ_K, _CLONE3[column], jf=1),
        _insn(_RET_K, _RET_ERRNO | errno.ENOSYS),
        # clone: refuse any namespace flag (a new user namespace would give back capabilities).
        _insn(_JEQ_K, _CLONE[column], jf=3),
        _insn(_LD_W_ABS, _OFFSET_ARG0_LOW),
        _insn(_JSET_K, linux.CLONE_NAMESPACES, jf=1),
        _insn(_RET_K, eperm),
        _insn(_RET_K, _RET_ALLOW),
    ]
    return b"".join(prog)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(program: bytes) -> None:
    """Install `program` for the calling thread and its future children. Needs no_new_privs
    (or CAP_SYS_ADMIN); the caller must be single-threaded for the filter to cover it all."""
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    linux.prctl_pointer(
        linux.PR_SET_SECCOMP,
        linux.SECCOMP_MODE_FILTER,
        ctypes.cast(ctypes.pointer(fprog), ctypes.c_void_p),
    )
