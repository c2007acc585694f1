"""Work on a student's data in a limited child process: parsing a notebook, checking an answer.

Covers: a fork server started once per grader (numpy, onnx, onnxruntime and every
check module preloaded, so a child costs a fork, not an import), and ``run_limited``,
which runs one function of this package in a fresh child with a memory cap (address
space), a wall-clock limit enforced by the grader, its stdout/stderr sent to
/dev/null and an empty working folder of its own (never the course's), relaying
the child's requests (a probe of a function answer) to the grader while it waits.
A child that runs out of memory, crashes or overstays ends with a one-line reason;
the grader's own memory never holds what the child decoded.
Does not cover: what the children do (``verdicts.py`` checks answers, ``grader.py``
parses notebooks).
"""
from __future__ import annotations

import multiprocessing
import os
import resource
import threading
import time

__all__ = ["run_limited", "ChildFailed", "start_server"]

_LOCK = threading.Lock()
_CONTEXT = None


class ChildFailed(Exception):
    """The child ended without an answer: out of time, out of memory, or crashed."""


def _preload() -> list[str]:
    import importlib
    import pkgutil

    exercise_checks = importlib.import_module("course_utils.exercise_checks")
    hidden_checks = importlib.import_module(f"{__package__}.hidden_checks")

    # torch too: checks that build their own reference need it, and its import would
    # otherwise cost seconds (and gigabytes of address space) in every child.
    names = ["numpy", "onnx", "onnxruntime", "torch", "nbformat", "course_utils.checks",
             "course_utils.grading.verdicts", "course_utils.grading.isolated",
             "course_utils.grading.submissions"]
    for package in (exercise_checks, hidden_checks):
        names += [f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)]
    return names


def start_server(checks: bool = True):
    """The fork server's context (started now, once per process).

    ``checks=False`` starts it with the notebook parser only, for a process that never
    checks an answer (``report``): the checks' libraries (torch among them) would cost it
    seconds for nothing. A server already running is kept as it is; its children import
    what they need. The server and its children get a temporary folder of their own (what
    the libraries write there on import goes with it when the grader ends).
    """
    global _CONTEXT
    with _LOCK:
        if _CONTEXT is None:
            import atexit
            import shutil
            import tempfile
            from multiprocessing import forkserver

            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(_preload() if checks else
                                           ["nbformat", "course_utils.grading.submissions",
                                            "course_utils.grading.isolated"])
            private = tempfile.mkdtemp(prefix="course-checks-")
            atexit.register(shutil.rmtree, private, ignore_errors=True)
            saved = os.environ.get("TMPDIR")
            os.environ["TMPDIR"] = private
            # The server listens on TMPDIR/pymp-XXXXXXXX/listener-XXXXXXXX; a socket's path
            # may be at most 107 bytes, so a longer one gets that one folder made in /tmp
            # instead (removed when the grader ends).
            saved_tempdir = tempfile.tempdir
            listener = os.path.join(tempfile.gettempdir(), "pymp-xxxxxxxx", "listener-xxxxxxxx")
            if len(os.fsencode(listener)) > 107 and os.access("/tmp", os.W_OK | os.X_OK):
                tempfile.tempdir = "/tmp"
            try:
                forkserver.ensure_running()
            finally:
                tempfile.tempdir = saved_tempdir
                if saved is None:
                    os.environ.pop("TMPDIR", None)
                else:
                    os.environ["TMPDIR"] = saved
            _CONTEXT = context
        return _CONTEXT


def _address_space(field: str = "VmSize") -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    return 0


def _child(conn, memory_bytes: int, target, args, browser: bool = False) -> None:
    import shutil
    import tempfile

    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 1)
    os.dup2(null, 2)
    # An empty folder of its own as the working folder, never the course's: a relative name in
    # what a student handed in (a model's external data, say) finds nothing there.
    workdir = tempfile.mkdtemp(prefix="cwd-")
    os.chdir(workdir)
    if browser:
        # Chromium reserves terabytes of address space (V8 and WebAssembly cages) that it never
        # uses, so an address-space cap kills it at start; RLIMIT_DATA counts only writable
        # private memory, what a process really fills, and each of Chromium's processes
        # inherits it (measured: a headless run of onnxruntime-web under 2 GiB each).
        limit = _address_space("VmData") + memory_bytes
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    else:
        limit = _address_space() + memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        result = ("done", target(conn, *args))
    except MemoryError:
        result = ("failed", "it needed more than the memory the grader allows it")
    except RecursionError:
        result = ("failed", "it is nested too deeply")
    except BaseException as error:  # reported by type only: the message may quote student data
        result = ("failed", f"it raised {type(error).__name__}")
    os.chdir("/")
    shutil.rmtree(workdir, ignore_errors=True)
    try:
        conn.send(result)
    except BaseException:
        conn.send(("failed", "its result could not be sent back"))


def run_limited(target, args, *, seconds: float, memory_bytes: int, on_request=None,
                browser: bool = False):
    """Run ``target(conn, *args)`` in a child; return what it returns.

    Args:
        target: a module-level function of this package (it runs in the fork server's child).
        args: its arguments (picklable).
        seconds: wall-clock limit, requests relayed to ``on_request`` included.
        memory_bytes: address space the child may add to what it starts with.
        on_request: ``on_request(message, seconds_left)`` answers what the child sends
            on ``conn`` while it runs (its reply is sent back).
        browser: the child starts a browser: its memory is capped per process as written
            data (``RLIMIT_DATA``) instead of address space, which Chromium reserves by the
            terabyte (a killed child's browser ends when its driver's pipe closes).

    Raises:
        ChildFailed: with the reason, in words that finish "the child ...": "ran
            longer than 20 s", "needed more than the memory...", "raised TypeError".
    """
    context = start_server()
    parent, child = context.Pipe()
    process = context.Process(target=_child, args=(child, memory_bytes, target, args, browser),
                              daemon=True)
    deadline = time.monotonic() + max(0.5, seconds)
    process.start()
    child.close()
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChildFailed(f"ran longer than {seconds:.0f} s")
            if not parent.poll(min(left, 0.5)):
                if not process.is_alive() and not parent.poll(0):
                    raise ChildFailed("crashed (out of memory?)")
                continue
            try:
                message = parent.recv()
            except (EOFError, OSError):
                raise ChildFailed("crashed (out of memory?)") from None
            if message[0] == "done":
                return message[1]
            if message[0] == "failed":
                raise ChildFailed(message[1])
            if on_request is None:
                raise ChildFailed("asked for something nobody answers")
            parent.send(on_request(message, deadline - time.monotonic()))
    finally:
        if process.is_alive():
            process.kill()
        process.join(5)
        parent.close()
