"""Tests for course_utils/grading/syscalls.py: does the sandbox's seccomp filter refuse the calls it
names (keyrings, file watches, tracing, namespaces) and let a notebook's ordinary work run?

The filter is loaded into a plain child process here (no sandbox: a fraction of a second); the
hostile batch (test_grading_hostile.py) tries the same calls from a sandboxed kernel."""
import errno
import json
import os
import subprocess
import sys

import pytest

from course_utils.grading.syscalls import (REFUSED, _NUMBERS, _machine, clear_user_keys, seccomp_program,
                                           uids_with_keys)

CHILD = r'''
import ctypes, json, os, socket, subprocess, sys, tempfile, threading
from course_utils.grading.syscalls import _NUMBERS, _machine, seccomp_program

numbers = _NUMBERS[_machine()]
program = seccomp_program()
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

class Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

buffer = ctypes.create_string_buffer(program, len(program))
fprog = Fprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
assert libc.prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS
assert libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) == 0, ctypes.get_errno()  # SECCOMP_MODE_FILTER

def call(name, *args):
    ctypes.set_errno(0)
    result = libc.syscall(ctypes.c_long(numbers[name]), *[ctypes.c_long(a) for a in args])
    if result == 0 and name == "clone":
        os._exit(0)  # a child the filter let through
    return ctypes.get_errno() if result == -1 else 0

refused = {
    "keyctl": call("keyctl", 0, -3, 1),  # KEYCTL_GET_KEYRING_ID of the session keyring
    "add_key": call("add_key", 0, 0, 0, 0, -4),
    "request_key": call("request_key", 0, 0, 0, 0),
    "inotify_init1": call("inotify_init1", 0),
    "inotify_add_watch": call("inotify_add_watch", 0, 0, 0),
    "ptrace": call("ptrace", 16, 0, 0, 0),  # PTRACE_ATTACH (to no process: ESRCH without the filter)
    "unshare": call("unshare", 0x10000000),  # CLONE_NEWUSER
    "clone-newuser": call("clone", 0x10000000 | 17, 0, 0, 0, 0),
    "clone3": call("clone3", 0, 0),
    "mount": call("mount", 0, 0, 0, 0, 0),
    "bpf": call("bpf", 0, 0, 0),
}
threads = [threading.Thread(target=sum, args=([1, 2],)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
pid = os.fork()
if pid == 0:
    os._exit(7)
forked = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
ran = subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True, text=True).stdout.strip()
with socket.socket() as listener:
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
with tempfile.NamedTemporaryFile("w+") as handle:
    handle.write("x")
    handle.flush()
    wrote = open(handle.name).read()
import numpy
print(json.dumps({"refused": refused, "ordinary": [forked, ran, port > 0, wrote, int(numpy.arange(4).sum())]}))
'''

needs_numbers = pytest.mark.skipif(_machine() not in _NUMBERS, reason="no system call numbers for this CPU")


@needs_numbers
def test_the_filter_refuses_its_calls_and_lets_ordinary_work_run():
    """Under the filter, do keyrings, inotify, ptrace, new namespaces, clone3, mount and bpf fail with
    their errno, while threads, fork, a subprocess, a loopback socket, files and numpy still work?"""
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout)
    assert found["ordinary"] == [7, "42", True, "x", 6]
    enosys, eperm = errno.ENOSYS, errno.EPERM
    assert found["refused"] == {
        "keyctl": enosys, "add_key": enosys, "request_key": enosys, "inotify_init1": enosys,
        "inotify_add_watch": enosys, "ptrace": eperm, "unshare": eperm, "clone-newuser": eperm,
        "clone3": enosys, "mount": eperm, "bpf": enosys}


def test_the_program_is_classic_bpf_for_both_architectures():
    """Is the program whole 8-byte instructions, under BPF's 4096, naming every refused call that the
    architecture has, and None for one it does not know?"""
    for machine in ("x86_64", "aarch64"):
        program = seccomp_program(machine)
        assert len(program) % 8 == 0 and len(program) // 8 < 4096
        named = sum(name in _NUMBERS[machine] for _, names in REFUSED.values() for name in names)
        assert named >= 40
    assert seccomp_program("mips") is None


def _keyctl_as(uid, *args):
    """Run one keyctl-family call as ``uid`` in a child (before it runs ``true``); raise if it fails."""
    def call():
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        name, rest = args[0], args[1:]
        result = libc.syscall(ctypes.c_long(_NUMBERS[_machine()][name]),
                              *[ctypes.c_long(a) if isinstance(a, int) else a for a in rest])
        if result < 0:
            raise OSError(ctypes.get_errno(), name)

    subprocess.run(["true"], user=uid, group=uid, extra_groups=[], preexec_fn=call, cwd="/",
                   check=True, timeout=60)


@needs_numbers
@pytest.mark.skipif(os.geteuid() != 0, reason="clearing another uid's keyrings needs root")
def test_a_uids_left_keys_are_cleared():
    """Where a uid was left owning a key (no filter stopped it), is the key gone after clear_user_keys?
    (A uid outside the sandboxes' range: the kernel keeps a uid's keyrings once made.)"""
    uid = 60999
    _keyctl_as(uid, "add_key", b"user", b"left-behind", b"x", 1, -4)  # into its user keyring
    _keyctl_as(uid, "keyctl", 10, -4, b"user", b"left-behind", 0)  # KEYCTL_SEARCH finds it
    clear_user_keys(uid)
    with pytest.raises(subprocess.SubprocessError):  # ...and no longer
        _keyctl_as(uid, "keyctl", 10, -4, b"user", b"left-behind", 0)
