"""One student's kernel in a bubblewrap sandbox, driven and limited from outside.

Covers: starting an IPython kernel inside ``bwrap`` (read-only system and
virtual environment, a private work folder, a private home, its own pid, IPC
and network namespaces with only a loopback, limits on memory, processes and
file size, a uid of its own when the grader runs as root, a cgroup of its own
for the sandbox as a whole where ``limits.py`` found one), talking to it over
``ipc`` sockets in a folder bound into the sandbox, running one cell with a
time limit and an output cap enforced from the grader's side (every message the
kernel sends counts, whatever its type or channel), answering a cell's input
requests where the grader asks it to (``answer_input``), and killing the whole
sandbox. The sandbox shares no kernel state with the grader or another sandbox: a
seccomp filter refuses keyrings, file watches, tracing and new namespaces, and its
first process starts a new session keyring (``syscalls.py``). Does not cover: what
is run (``grader.py``) or how answers are read (``verdicts.py``).

Nothing the sandbox can write is trusted: each start gets fresh folders that the
grader creates under a folder the sandbox never sees; the connection file is
created there (exclusive, no links) and bound read-only, as is the inbox where
probe inputs go; the one folder the kernel writes (its ``ipc`` sockets and what
a capture writes) is only ever read with no-follow, regular-file, bounded reads
(``verdicts.py``); the grader never chowns or writes a path inside it.

``--no-sandbox`` (``sandboxed=False``) runs the same kernel as a plain child
process: only for trusted notebooks, e.g. on macOS where bubblewrap does not exist.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..errors import CourseError
from .limits import kill_all, uid_processes
from .syscalls import clear_user_keys, new_session_keyring, seccomp_program

__all__ = ["KernelLimits", "SandboxedKernel", "CellResult", "require_bwrap", "SandboxError"]

WORK, IO, LIB, HOME = "/course/work", "/course/io", "/course/lib", "/home/student"
CONN, INBOX = "/course/conn", "/course/in"
MiB = 2**20
#: The largest message the kernel may send on its request channels (replies, input requests)...
_REQUEST_MESSAGE_BYTES = MiB
#: ...and how many messages of a channel may wait unread: whatever the kernel sends while the
#: grader is busy elsewhere (checks, probes) stays within a few tens of MiB per sandbox.
_QUEUED_MESSAGES = {"iopub": 4, "other": 16}
_SECCOMP: list = []  # the filter, assembled once per grader (None where it cannot be)


def _seccomp() -> bytes | None:
    if not _SECCOMP:
        program = seccomp_program()
        if program is None:
            import logging

            logging.getLogger(__name__).warning(
                "sandbox: no seccomp filter for this CPU architecture; keyrings and file watches "
                "are not refused (user keyrings are emptied after each sandbox)")
        _SECCOMP.append(program)
    return _SECCOMP[0]


class SandboxError(CourseError, RuntimeError):
    """The sandbox or its kernel could not be started."""


@dataclass
class KernelLimits:
    """Limits of one sandbox (the per-cell time limit is given per call)."""

    memory_bytes: int = 8 * 2**30  # address space of each process
    processes: int = 512  # processes and threads of the sandbox's uid
    file_bytes: int = 2 * 2**30  # largest file it may write
    tmp_bytes: int = 1 * 2**30  # its private /tmp (in memory)
    output_bytes: int = 8 * MiB  # output one cell may print before it is stopped
    start_seconds: int = 90
    cpus: float = 1.0  # CPU quota of the whole sandbox (with a cgroup)
    work_bytes: int = 2 * 2**30  # size of the work folder (a tmpfs, where it can be mounted)


@dataclass
class CellResult:
    """What happened to one cell: ``ok``, ``error``, ``timeout``, ``flood`` or ``died``."""

    status: str
    ename: str = ""
    evalue: str = ""
    seconds: float = 0.0
    output_bytes: int = 0


def require_bwrap() -> str:
    """The path of bwrap, or a SandboxError with the install command."""
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxError("bubblewrap (bwrap) is not installed: install it with "
                           "'sudo apt-get install bubblewrap' (Debian/Ubuntu) or "
                           "'sudo dnf install bubblewrap', or grade trusted notebooks with --no-sandbox")
    return path


def copy_library(dest: Path) -> Path:
    """Copy course_utils without its grader (``grading/``): the library the sandbox sees."""
    source = Path(__file__).resolve().parent.parent
    target = dest / "course_utils"
    grader = Path(__file__).resolve().parent
    shutil.copytree(source, target, ignore=lambda folder, names: [
        n for n in names if n in ("__pycache__",) or n.endswith(".pyc")
        or Path(folder, n).resolve() == grader])
    return dest


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for name in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(name):
            args += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            args += ["--ro-bind", name, name]
    made = set()
    prefixes = {os.path.realpath(p): p for p in (sys.base_prefix, sys.prefix)}
    for real, given in sorted(prefixes.items()):
        if real.startswith("/usr/") or not os.path.isdir(real):
            continue
        for target in {real, given}:
            parents = Path(target).parents
            for parent in reversed(list(parents)[:-1]):  # readable parents, not the host's modes
                if str(parent) not in made:
                    made.add(str(parent))
                    args += ["--perms", "0755", "--dir", str(parent)]
            args += ["--ro-bind", real, target]
    # Where the grader's own course_utils sits inside a bound tree (a non-editable
    # install in the venv), cover the whole grader (hidden checks included) with an empty folder.
    hidden = os.path.realpath(Path(__file__).resolve().parent)
    bound = ["/usr", "/etc"] + list(prefixes)
    if os.path.isdir(hidden) and any(hidden.startswith(b.rstrip("/") + "/") for b in bound):
        args += ["--tmpfs", hidden]
    return args


class SandboxedKernel:
    """A kernel in its own sandbox; ``run`` one cell at a time, ``kill`` when done."""

    def __init__(self, workdir: Path, rundir: Path, libdir: Path, limits: KernelLimits,
                 sandboxed: bool = True, uid: int = 61000, cgroups=None):
        # rundir: a folder of the grader's that the sandbox never sees; each start
        # makes its own fresh folders in it (see start()).
        self.workdir, self.rundir, self.libdir = Path(workdir), Path(rundir), Path(libdir)
        self.limits, self.sandboxed, self.uid, self.cgroups = limits, sandboxed, uid, cgroups
        self.as_root = os.geteuid() == 0
        self.proc = None
        self.client = None
        self.group = None
        self._context = None
        self.starts = 0
        self.startdir = None
        self.hit_memory_cap = False  # the whole sandbox reached --memory-mb (with a cgroup)
        self.iodir = self.inbox_dir = None  # this start's folders, grader-side paths
        self._io_fd = None  # io/ held open: its sockets are reached through /proc/self/fd

    # paths as the kernel sees them
    @property
    def work_path(self) -> str:
        return WORK if self.sandboxed else str(self.workdir)

    @property
    def io_path(self) -> str:
        return IO if self.sandboxed else f"/proc/{os.getpid()}/fd/{self._io_fd}"

    @property
    def inbox_path(self) -> str:
        return INBOX if self.sandboxed else str(self.inbox_dir)

    def _fresh_folder(self, path: Path, mode: int, owner: tuple[int, int] | None) -> Path:
        os.mkdir(path, mode)  # fails if anything is there: never an old or planted folder
        if owner is not None and self.sandboxed and self.as_root:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            try:
                os.fchown(fd, *owner)
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
        return path

    def _command(self, connection: str, seccomp_fd: int | None = None) -> list[str]:
        kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", connection]
        if not self.sandboxed:
            return kernel
        lim = self.limits
        args = [require_bwrap(), "--die-with-parent", "--new-session",
                "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                "--unshare-cgroup-try"]
        if not self.as_root:
            args += ["--unshare-user", "--uid", "65534", "--gid", "65534"]
        if seccomp_fd is not None:  # loaded by bwrap right before it runs the command below
            args += ["--seccomp", str(seccomp_fd)]
        # The private /tmp and home first: a virtual environment that lives under /tmp
        # (a CI clone, say) is bound on top of them, not hidden by them.
        args += ["--perms", "1777", "--size", str(lim.tmp_bytes), "--tmpfs", "/tmp",
                 "--perms", "0777", "--size", str(256 * MiB), "--tmpfs", HOME]
        args += _system_binds()
        args += ["--proc", "/proc", "--dev", "/dev",
                 "--perms", "0755", "--dir", "/course", "--ro-bind", str(self.libdir), LIB,
                 "--bind", str(self.workdir), WORK, "--bind", str(self.iodir), IO,
                 "--ro-bind", str(self.conndir), CONN, "--ro-bind", str(self.inbox_dir), INBOX,
                 "--chdir", WORK, "--clearenv"]
        env = {"HOME": HOME, "PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin",
               "PYTHONPATH": LIB, "LANG": "C.UTF-8", "TMPDIR": "/tmp",
               "PYTHONDONTWRITEBYTECODE": "1", "JUPYTER_PLATFORM_DIRS": "1",
               "IPYTHONDIR": f"{HOME}/.ipython", "MPLCONFIGDIR": f"{HOME}/.matplotlib",
               # No browser in here (the address-space cap stops Chromium, after seconds of
               # trying): the lesson's browser cells skip at once, and the checks run an answer
               # in a browser outside the sandbox.
               "ONNX_COURSE_BROWSER": "none"}
        for key, value in env.items():
            args += ["--setenv", key, value]
        # OpenMP threads (PyTorch's) sleep while they wait instead of spinning: a spinning thread
        # burns the sandbox's CPU share that the kernel's own thread needs, and the other
        # sandboxes' cores. Measured on resnet18 with Python work between calls (2 cores, busy
        # machine): 6-7.6 CPU seconds spinning, 0.6-0.7 sleeping, for the same ten calls.
        args += ["--setenv", "OMP_WAIT_POLICY", "PASSIVE"]
        if self.as_root:  # drop to a uid of its own: no root, and the process cap applies
            setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
            args += [setpriv, f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups",
                     "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
        return args + kernel

    def _limit_resources(self) -> None:  # runs in the child before exec
        if self.sandboxed:
            new_session_keyring()  # never the grader's: possessing a keyring grants access to it
        lim = self.limits
        resource.setrlimit(resource.RLIMIT_AS, (lim.memory_bytes, lim.memory_bytes))
        resource.setrlimit(resource.RLIMIT_NPROC, (lim.processes, lim.processes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (lim.file_bytes, lim.file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if self.group is not None:
            self.group.join()

    def start(self, limit: float = float("inf")) -> None:
        """Start the sandbox and its kernel (within ``limit`` s); SandboxError if it does not answer."""
        import zmq
        from jupyter_client import BlockingKernelClient

        if self.sandboxed and self.as_root:
            _reap_uid(self.uid)  # nothing of an earlier sandbox with this uid may remain
            clear_user_keys(self.uid)  # ...nor a key (where no filter kept it from making one)
        # Fresh folders for this start, made by the grader in its own folder: the
        # connection file and the inbox are bound read-only, only io/ is the kernel's.
        self.starts += 1
        run = self.startdir = self._fresh_folder(self.rundir / f"start-{uuid.uuid4().hex[:12]}", 0o755, None)
        self.conndir = self._fresh_folder(run / "conn", 0o750, (0, self.uid))
        self.inbox_dir = self._fresh_folder(run / "in", 0o755, None)
        self.iodir = self._fresh_folder(run / "io", 0o700, (self.uid, self.uid))
        # A socket's path may be at most 107 bytes, and the grader's folders lie under TMPDIR,
        # however long that is: the grader reaches io/ through a descriptor it holds
        # (/proc/self/fd/N, which also pins the folder it made), the kernel at IO.
        self._io_fd = os.open(self.iodir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        key = uuid.uuid4().hex
        sock = f"k{uuid.uuid4().hex[:8]}"
        ports = {"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5}
        info = {**ports, "transport": "ipc", "ip": f"{self.io_path}/{sock}", "key": key,
                "signature_scheme": "hmac-sha256", "kernel_name": "python3"}
        write_new_file(self.conndir / "kernel.json", json.dumps(info).encode(), 0o640,
                       (0, self.uid) if self.sandboxed and self.as_root else None)
        if self.cgroups is not None and self.sandboxed:
            self.group = self.cgroups.group(f"u{self.uid}", self.limits.memory_bytes,
                                            self.limits.processes, self.limits.cpus)
        env = None if self.sandboxed else {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        connection = f"{CONN}/kernel.json" if self.sandboxed else str(self.conndir / "kernel.json")
        program = _seccomp() if self.sandboxed else None
        seccomp_fd = None
        if program is not None:  # bwrap reads the filter from a pipe (a few hundred bytes)
            seccomp_fd, write_end = os.pipe()
            os.write(write_end, program)
            os.close(write_end)
        try:
            self.proc = subprocess.Popen(
                self._command(connection, seccomp_fd), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=self._limit_resources if os.name == "posix" else None,
                pass_fds=() if seccomp_fd is None else (seccomp_fd,),
                cwd=None if self.sandboxed else str(self.workdir), env=env)
        finally:
            if seccomp_fd is not None:
                os.close(seccomp_fd)
        self._context = zmq.Context()
        # Output is counted, never kept, and little waits unread: a flood the grader reads
        # slower than it arrives (a busy machine) must not pile up in the grader's memory.
        # The kernel drops what does not fit; the cell still ends on its shell reply. Request
        # channels (replies, input requests) carry small messages only; output may come in
        # messages as large as the cap.
        self._context.setsockopt(zmq.MAXMSGSIZE, _REQUEST_MESSAGE_BYTES)
        self._context.setsockopt(zmq.RCVHWM, _QUEUED_MESSAGES["other"])
        client = BlockingKernelClient(context=self._context)
        client.load_connection_info({**info, "ip": f"/proc/self/fd/{self._io_fd}/{sock}"})
        for channel in ("shell", "stdin", "control"):  # their sockets are made on first use
            getattr(client, f"{channel}_channel")
        self._context.setsockopt(zmq.MAXMSGSIZE, self.limits.output_bytes + MiB)
        self._context.setsockopt(zmq.RCVHWM, _QUEUED_MESSAGES["iopub"])
        client.iopub_channel
        deadline = time.monotonic() + min(self.limits.start_seconds, max(1.0, limit))
        while not all(_is_socket(self.iodir / f"{sock}-{p}") for p in (1, 2, 4)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise SandboxError("the kernel did not start in the sandbox (is bubblewrap "
                                   "allowed to create namespaces here? try --no-sandbox "
                                   "only for trusted notebooks)")
            time.sleep(0.05)
        client.start_channels()
        self.client = client
        try:
            client.wait_for_ready(timeout=max(1, deadline - time.monotonic()))
        except RuntimeError as error:
            self.kill()
            raise SandboxError(f"the kernel did not answer: {error}") from None
        self._monitor = client.iopub_channel.socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def run(self, code: str, limit: float, silent: bool = False, answer_input=None) -> CellResult:
        """Run code; stop the kernel (kill the sandbox) past ``limit`` s or the output cap.

        Every message the kernel sends while the cell runs counts against the output cap,
        by its bytes, whatever its type or channel (output, comms, echoes of the code, errors,
        stray replies, input requests). ``answer_input(prompt)`` (optional) answers the
        cell's input requests (``input()``, ``kernel.raw_input``); without it the cell may
        not ask for any.
        """
        import zmq

        started = time.monotonic()
        if not self.alive():
            return CellResult("died")
        client = self.client
        # One request at a time, so there is never a queue to abort: without
        # stop_on_error=False a request sent just after an error can come back "aborted"
        # (ipykernel aborts what arrives while it clears an error; seen on a busy machine).
        msg_id = client.execute(code, silent=silent, store_history=False,
                                allow_stdin=answer_input is not None, stop_on_error=False)
        poller = zmq.Poller()
        shell, iopub = client.shell_channel.socket, client.iopub_channel.socket
        stdin = client.stdin_channel.socket
        for sock in (shell, iopub, stdin, self._monitor):
            poller.register(sock, zmq.POLLIN)
        out, reply = 0, None
        while True:
            left = limit - (time.monotonic() - started)
            if left <= 0:
                self.kill()
                return CellResult("timeout", seconds=time.monotonic() - started, output_bytes=out)
            events = dict(poller.poll(timeout=min(left, 0.5) * 1000))
            if self._monitor in events:
                self._monitor.recv_multipart()
                try:  # the kernel's end also disconnects: tell the two apart
                    self.proc.wait(timeout=1.0)
                except subprocess.TimeoutExpired:
                    pass
                if not self.alive():
                    self.kill()
                    return CellResult("died", seconds=time.monotonic() - started, output_bytes=out)
                self.kill()  # a single message over the cap: an output flood
                return CellResult("flood", seconds=time.monotonic() - started,
                                  output_bytes=max(out, self.limits.output_bytes + 1))
            for sock in (iopub, stdin, shell):
                if sock not in events:
                    continue
                while True:  # everything waiting, counted by its bytes; output is never read
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    out += sum(len(frame) for frame in frames)
                    if out > self.limits.output_bytes:
                        self.kill()
                        return CellResult("flood", seconds=time.monotonic() - started, output_bytes=out)
                    if sock is iopub:
                        continue
                    msg = _message(client.session, frames)
                    if msg is None or msg.get("parent_header", {}).get("msg_id") != msg_id:
                        continue  # not about this cell
                    if sock is shell:
                        reply = msg["content"]
                    elif msg.get("msg_type") == "input_request" and answer_input is not None:
                        client.input(str(answer_input(str(msg["content"].get("prompt", ""))[:200]) or ""))
                if reply is not None:
                    break
            if reply is not None:
                break
            if not self.alive():
                return CellResult("died", seconds=time.monotonic() - started, output_bytes=out)
        status = "ok" if reply.get("status") == "ok" else "error"
        return CellResult(status, str(reply.get("ename", ""))[:200], str(reply.get("evalue", ""))[:300],
                          time.monotonic() - started, out)

    def kill(self) -> None:
        """Kill the sandbox and everything in it (its pid namespace dies with it)."""
        if self.client is not None:
            try:
                self.client.stop_channels()
            except Exception:
                pass
            self.client = None
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait()
            self.proc = None
        if self.group is not None:  # everything in the sandbox's cgroup, wherever it went
            self.group.kill()
            self.hit_memory_cap = self.hit_memory_cap or self.group.hit_memory_cap()
            self.group.remove()
            self.group = None
        if self.sandboxed and self.as_root:
            _reap_uid(self.uid)
            clear_user_keys(self.uid)
        if self.startdir is not None:  # nothing runs there any more: fd-based, never follows links
            shutil.rmtree(self.startdir, ignore_errors=True)
            self.startdir = None
        if self._context is not None:
            self._context.destroy(linger=0)
            self._context = None
        if self._io_fd is not None:  # after the sockets: none may reconnect through it
            os.close(self._io_fd)
            self._io_fd = None


def write_new_file(path: Path, data: bytes, mode: int = 0o644, owner=None) -> None:
    """Create ``path`` (never an existing file, never through a link) and write ``data``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_NONBLOCK, mode)
    try:
        if owner is not None:
            os.fchown(fd, *owner)
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except OSError:
        return False


def _reap_uid(uid: int, seconds: float = 15.0) -> None:
    """Wait until no process of the sandbox's own uid is left (killing stragglers).

    The pid namespace dies with the sandbox, but its processes take a moment to go;
    the next sandbox with this uid must not inherit them (nor their process count).
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = uid_processes(uid)
        if not left:
            return
        kill_all(left)
        time.sleep(0.05)


def _message(session, frames) -> dict | None:
    """A message of the kernel's (its signature checked), or None if it is not one."""
    try:
        _, parts = session.feed_identities([bytes(frame.buffer) for frame in frames], copy=True)
        msg = session.deserialize(parts, content=True, copy=True)
    except Exception:  # malformed, unsigned or foreign: counted, then ignored
        return None
    return msg if isinstance(msg, dict) and isinstance(msg.get("content"), dict) else None
