"""Kernel state a sandbox must not share: the system calls it is refused, and its keyrings.

Covers: :func:`seccomp_program`, a seccomp filter assembled here as classic BPF (what
``bwrap --seccomp FD`` loads, no library needed), for x86-64 and AArch64; :func:`new_session_keyring`,
run in the sandbox's first process before bubblewrap starts, so that the sandbox never
holds the grader's session keyring; :func:`clear_user_keys`, which empties the user
keyrings a sandbox uid may have filled (where no filter could stop it). Does not cover:
starting the sandbox (``sandbox.py``).

What the filter refuses, and why (a notebook's ordinary work, torch, ONNX Runtime,
OpenVINO, matplotlib or a FastAPI server on the loopback, needs none of it):

- *Kernel keyrings* (``keyctl``, ``add_key``, ``request_key``): keyrings are kernel state
  shared across the sandbox's walls: the session keyring a process inherits, and the user
  keyrings of a uid, which outlive its processes and would pass a secret to the next
  sandbox with that uid. Refused with ENOSYS (as on a kernel without keys).
- *Watching files* (``inotify_*``, ``fanotify_*``): the system, the virtual environment and
  the course library are mounted read-only into every sandbox at once; a watch on them
  sees the file accesses of a classmate's sandbox graded beside it (a covert channel).
  Refused with ENOSYS (libraries fall back to polling).
- *Other processes' memory* (``ptrace``, ``process_vm_readv``/``writev``, ``kcmp``): a
  sandbox sees only its own processes, but it has no use for tracing them. EPERM.
- *New namespaces and mounts* (``unshare``, ``setns``, ``clone`` with a namespace flag,
  ``mount`` and the new mount API, ``pivot_root``, ``chroot``): the sandbox's walls are
  bubblewrap's; a user namespace inside them would hand the student capabilities over a
  large part of the kernel. EPERM; ``clone3`` gets ENOSYS, so that the C library falls
  back to ``clone``, whose flags the filter can read.
- *Kernel attack surface no notebook needs* (``bpf``, ``perf_event_open``,
  ``userfaultfd``, ``io_uring_*``, ``open_by_handle_at``, modules, ``kexec``, ``reboot``,
  swap, ``acct``, ``syslog``, ``quotactl``, ``iopl``/``ioperm``): ENOSYS or EPERM.
- Any call of another architecture's numbering (32-bit calls on x86-64, the x32 ABI):
  ENOSYS, since the numbers above would not apply to them.
"""
from __future__ import annotations

import ctypes
import errno
import os
import platform
import shutil
import struct
import subprocess

__all__ = ["seccomp_program", "REFUSED", "new_session_keyring", "clear_user_keys", "uids_with_keys"]

_ALLOW, _ERRNO = 0x7FFF0000, 0x00050000
_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ARCH_OFFSET, _NR_OFFSET, _ARG0_OFFSET = 4, 0, 16  # struct seccomp_data (little-endian)
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000

#: The calls refused, by purpose: (errno, names). See the module docstring for why.
REFUSED = {
    "keyrings": (errno.ENOSYS, ("keyctl", "add_key", "request_key")),
    "watching files": (errno.ENOSYS, ("inotify_init", "inotify_init1", "inotify_add_watch",
                                      "fanotify_init", "fanotify_mark")),
    "other processes": (errno.EPERM, ("ptrace", "process_vm_readv", "process_vm_writev", "kcmp")),
    "namespaces and mounts": (errno.EPERM, ("unshare", "setns", "mount", "umount2", "pivot_root",
                                            "chroot", "open_tree", "move_mount", "fsopen", "fsconfig",
                                            "fsmount", "fspick", "mount_setattr")),
    "clone3": (errno.ENOSYS, ("clone3",)),
    "kernel surface": (errno.ENOSYS, ("bpf", "perf_event_open", "userfaultfd", "io_uring_setup",
                                      "io_uring_enter", "io_uring_register")),
    "privileged": (errno.EPERM, ("open_by_handle_at", "name_to_handle_at", "init_module",
                                 "finit_module", "delete_module", "kexec_load", "kexec_file_load",
                                 "reboot", "swapon", "swapoff", "acct", "syslog", "quotactl",
                                 "iopl", "ioperm")),
}

# Linux's system call numbers (arch/x86/entry/syscalls/syscall_64.tbl; include/uapi/asm-generic/unistd.h).
_NUMBERS = {
    "x86_64": {"read": 0, "keyctl": 250, "add_key": 248, "request_key": 249, "inotify_init": 253,
               "inotify_init1": 294, "inotify_add_watch": 254, "fanotify_init": 300, "fanotify_mark": 301,
               "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312,
               "unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155,
               "chroot": 161, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431,
               "fsmount": 432, "fspick": 433, "mount_setattr": 442, "clone": 56, "clone3": 435,
               "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "io_uring_setup": 425,
               "io_uring_enter": 426, "io_uring_register": 427, "open_by_handle_at": 304,
               "name_to_handle_at": 303, "init_module": 175, "finit_module": 313, "delete_module": 176,
               "kexec_load": 246, "kexec_file_load": 320, "reboot": 169, "swapon": 167, "swapoff": 168,
               "acct": 163, "syslog": 103, "quotactl": 179, "iopl": 172, "ioperm": 173},
    "aarch64": {"read": 63, "keyctl": 219, "add_key": 217, "request_key": 218, "inotify_init1": 26,
                "inotify_add_watch": 27, "fanotify_init": 262, "fanotify_mark": 263, "ptrace": 117,
                "process_vm_readv": 270, "process_vm_writev": 271, "kcmp": 272, "unshare": 97,
                "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51,
                "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
                "fspick": 433, "mount_setattr": 442, "clone": 220, "clone3": 435, "bpf": 280,
                "perf_event_open": 241, "userfaultfd": 282, "io_uring_setup": 425,
                "io_uring_enter": 426, "io_uring_register": 427, "open_by_handle_at": 265,
                "name_to_handle_at": 264, "init_module": 105, "finit_module": 273,
                "delete_module": 106, "kexec_load": 104, "kexec_file_load": 294, "reboot": 142,
                "swapon": 224, "swapoff": 225, "acct": 89, "syslog": 116, "quotactl": 60},
}
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_X32_BIT = 0x40000000


def _machine() -> str | None:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine) if machine else None


def seccomp_program(machine: str | None = None) -> bytes | None:
    """The filter as bytes (an array of ``struct sock_filter``), or None on an architecture
    this module has no numbers for (the sandbox then runs without it, and says so).

    Example:
        >>> len(seccomp_program("x86_64")) % 8
        0
    """
    machine = machine or _machine()
    numbers = _NUMBERS.get(machine)
    if numbers is None:
        return None
    labels = {errno.EPERM: "eperm", errno.ENOSYS: "enosys"}
    code: list[tuple] = [  # (op, jt, jf, k): jt and jf are offsets, or the labels of the returns
        (_LD_W_ABS, 0, 0, _ARCH_OFFSET),
        (_JEQ, 1, 0, _AUDIT_ARCH[machine]),
        (_RET, 0, 0, _ERRNO | errno.ENOSYS),  # another architecture's numbering
        (_LD_W_ABS, 0, 0, _NR_OFFSET)]
    if machine == "x86_64":
        code.append((_JGE, "enosys", 0, _X32_BIT))  # the x32 ABI
    for err, names in REFUSED.values():
        code += [(_JEQ, labels[err], 0, numbers[name]) for name in names if name in numbers]
    code += [(_JEQ, 0, "allow", numbers["clone"]),  # clone: refused with a namespace flag only
             (_LD_W_ABS, 0, 0, _ARG0_OFFSET),
             (_JSET, "eperm", 0, _NAMESPACE_FLAGS)]
    returns = {"allow": _ALLOW, "eperm": _ERRNO | errno.EPERM, "enosys": _ERRNO | errno.ENOSYS}
    at = {label: len(code) + index for index, label in enumerate(returns)}
    out = []
    for index, (op, jt, jf, k) in enumerate(code):
        jt, jf = (at[j] - index - 1 if isinstance(j, str) else j for j in (jt, jf))
        out.append(struct.pack("=HBBI", op, jt, jf, k))
    out += [struct.pack("=HBBI", _RET, 0, 0, value) for value in returns.values()]
    return b"".join(out)


# ------------------------------------------------------------------ keyrings

_KEYCTL = {"x86_64": 250, "aarch64": 219}
_JOIN_SESSION_KEYRING, _CLEAR = 1, 7
_USER_KEYRING, _USER_SESSION_KEYRING = -4, -5


def _keyctl(*args) -> int:
    number = _KEYCTL.get(_machine() or "")
    if number is None:
        return -1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc.syscall(ctypes.c_long(number), *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])


def new_session_keyring() -> None:
    """Give the calling process a new, empty, anonymous session keyring (run before exec).

    Without it the sandbox would hold the grader's session keyring, and possession grants
    access whatever the uid. A kernel without keyrings has nothing to share: nothing to do.
    """
    _keyctl(_JOIN_SESSION_KEYRING, None)


def uids_with_keys(uids=None) -> dict[int, int]:
    """uid -> number of keys it owns, from /proc/key-users (every uid's, whoever reads it)."""
    found = {}
    try:
        lines = open("/proc/key-users", encoding="ascii").read().splitlines()
    except OSError:
        return found
    for line in lines:
        try:
            uid, rest = line.split(":", 1)
            count = int(rest.split()[1].split("/")[0])
        except (ValueError, IndexError):
            continue
        if count and (uids is None or int(uid) in uids):
            found[int(uid)] = count
    return found


def clear_user_keys(uid: int) -> None:
    """Empty the user and user-session keyrings of ``uid`` (root only), where it owns keys.

    The filter keeps a sandbox from making any; this is for a kernel where it could not be
    loaded, so that no key a sandbox left passes to the next one with its uid. The keyrings
    are a uid's own: they are emptied from a child that has become ``uid`` (before it runs
    ``true``), with no import, so nothing of the grader's need be readable by that uid.
    """
    if os.geteuid() != 0 or not uids_with_keys({uid}):
        return
    subprocess.run([shutil.which("true") or "/bin/true"], user=uid, group=uid, extra_groups=[],
                   preexec_fn=_clear_own_keyrings, cwd="/", env={}, stdin=subprocess.DEVNULL,
                   capture_output=True, timeout=30)


def _clear_own_keyrings() -> None:  # in the child, already running as the sandbox's uid
    _keyctl(_CLEAR, _USER_KEYRING)
    _keyctl(_CLEAR, _USER_SESSION_KEYRING)
