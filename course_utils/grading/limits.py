"""Limits for a sandbox as a whole: cgroups, a size-capped work folder, uids no other grader holds.

Covers: finding a usable cgroup hierarchy (v2, or v1 with the memory, pids and cpu
controllers) and making one group per sandbox under a group of this grader's own,
with a memory cap for all its processes together, a process count and an equal CPU
share plus a quota (so a sandbox full of busy processes gets no more CPU than a
classmate's graded beside it); killing and removing such a group; a tmpfs of a
given size as a submission's work folder; claiming sandbox uids with a lock file
that two graders on one machine can never both hold. Does not cover: starting the
sandbox (``sandbox.py``). Where cgroups or tmpfs mounts are not usable (not root,
a read-only /sys/fs/cgroup), :func:`describe` says so in one line and the per-process
limits of ``sandbox.KernelLimits`` are what remains.
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

__all__ = ["CgroupTree", "SandboxGroup", "find_cgroups", "mount_work_folder", "unmount_work_folder",
           "claim_uid", "kill_all", "uid_processes", "UID_FIRST", "UID_LAST"]

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
_V1_CONTROLLERS = ("memory", "pids", "cpu")
#: Sandbox uids are taken from this range (both ends included), one lock file each.
UID_FIRST, UID_LAST = 61000, 64999
_UID_LOCKS = Path("/run/course_utils-grader")


def _own_paths() -> dict[str, str]:
    """controller (or "" for v2) -> this process's cgroup path."""
    paths = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def _write(path: Path, value) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


class CgroupTree:
    """This grader's own group(s); one child per sandbox (see :meth:`group`)."""

    def __init__(self, version: int, parents: dict[str, Path]):
        self.version, self.parents, self.count = version, parents, 0

    def group(self, name: str, memory_bytes: int, processes: int, cpus: float) -> "SandboxGroup":
        """A new group for one sandbox with these limits (removed by ``SandboxGroup.remove``)."""
        self.count += 1
        dirs = {c: p / f"{name}-{self.count}" for c, p in self.parents.items()}
        for folder in dirs.values():
            folder.mkdir(mode=0o755)
        group = SandboxGroup(self.version, dirs)
        period = 100_000
        quota = max(10_000, int(cpus * period))
        if self.version == 2:
            folder = dirs[""]
            _write(folder / "memory.max", memory_bytes)
            for name_, value in (("memory.swap.max", 0), ("cpu.weight", 100)):
                if (folder / name_).exists():
                    _write(folder / name_, value)
            _write(folder / "pids.max", processes)
            _write(folder / "cpu.max", f"{quota} {period}")
        else:
            memory = dirs["memory"]
            _write(memory / "memory.limit_in_bytes", memory_bytes)
            if (memory / "memory.memsw.limit_in_bytes").exists():
                try:  # no swap beyond the cap either (where swap accounting is on)
                    _write(memory / "memory.memsw.limit_in_bytes", memory_bytes)
                except OSError:
                    pass
            _write(dirs["pids"] / "pids.max", processes)
            _write(dirs["cpu"] / "cpu.shares", 1024)
            _write(dirs["cpu"] / "cpu.cfs_period_us", period)
            _write(dirs["cpu"] / "cpu.cfs_quota_us", quota)
        return group

    def remove(self) -> None:
        for folder in self.parents.values():
            for child in folder.glob("*"):
                if child.is_dir():
                    try:
                        child.rmdir()
                    except OSError:
                        pass
            try:
                folder.rmdir()
            except OSError as error:
                log.warning("could not remove the cgroup %s (%s)", folder, error.strerror)


class SandboxGroup:
    """The cgroup(s) of one sandbox: join before exec, kill everything in it, remove."""

    def __init__(self, version: int, dirs: dict[str, Path]):
        self.version, self.dirs = version, dirs
        # Opened now: joining runs between fork and exec, where nothing may be allocated.
        self._procs = [str(d / "cgroup.procs").encode() for d in dirs.values()]

    def join(self) -> None:
        """Move the calling process into the group (runs in the child before exec)."""
        pid = str(os.getpid()).encode()
        for path in self._procs:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)

    def pids(self) -> list[int]:
        found = set()
        for folder in self.dirs.values():
            try:
                found.update(int(p) for p in (folder / "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                pass
        return sorted(found)

    def kill(self, seconds: float = 10.0) -> None:
        """Kill every process in the group and wait until it is empty."""
        deadline = time.monotonic() + seconds
        kill_file = self.dirs.get("", Path("/nonexistent")) / "cgroup.kill"
        while time.monotonic() < deadline:
            left = self.pids()
            if not left:
                return
            if kill_file.exists():
                try:
                    _write(kill_file, 1)
                except OSError:
                    pass
            kill_all(left)
            time.sleep(0.05)

    def hit_memory_cap(self) -> bool:
        """Whether the sandbox's processes together reached the memory cap."""
        for folder in self.dirs.values():
            for name, keys in (("memory.events", ("max", "oom_kill")), ("memory.oom_control", ("oom_kill",))):
                try:  # v2, and v1's counter of processes the cap killed
                    lines = (folder / name).read_text().splitlines()
                except OSError:
                    continue
                counts = dict(line.split()[:2] for line in lines if len(line.split()) >= 2)
                if any(int(counts.get(key, 0)) > 0 for key in keys):
                    return True
            try:  # v1: its peak met the cap (the kernel may reclaim files' pages, not kill)
                peak = int((folder / "memory.max_usage_in_bytes").read_text())
                if int((folder / "memory.failcnt").read_text()) > 0 or \
                        peak >= int((folder / "memory.limit_in_bytes").read_text()):
                    return True
            except (OSError, ValueError):
                pass
        return False

    def remove(self) -> None:
        self.kill()
        for folder in self.dirs.values():
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # EBUSY while the last process is reaped
                    time.sleep(0.05)


def find_cgroups(name: str, jobs: int = 1) -> tuple[CgroupTree | None, str]:
    """This grader's cgroup tree, or None and the one line that says why there is none.

    The tree as a whole weighs as much as ``jobs`` ordinary processes on the machine
    (one per sandbox), and shares that equally among its sandboxes.
    """
    if os.geteuid() != 0:
        return None, "cgroups: not used (not root): each process keeps its own memory and process limits"
    own = _own_paths()
    try:
        if (CGROUP_ROOT / "cgroup.controllers").exists():
            return _v2_tree(own.get("", "/"), name, jobs)
        return _v1_tree(own, name, jobs)
    except OSError as error:
        return None, (f"cgroups: not usable here ({error.strerror or error}): each process keeps its "
                      "own memory and process limits")


def _v1_tree(own: dict[str, str], name: str, jobs: int):
    parents = {}
    for controller in _V1_CONTROLLERS:
        mount = CGROUP_ROOT / controller
        base = mount / own.get(controller, "/").lstrip("/")
        if not base.is_dir():
            base = mount
        if not (base / "cgroup.procs").exists() or not os.access(base, os.W_OK):
            for folder in parents.values():
                folder.rmdir()
            return None, (f"cgroups: v1 without a writable {controller} controller: each process "
                          "keeps its own memory and process limits")
        parents[controller] = base / name
        parents[controller].mkdir(mode=0o755)
    _write(parents["cpu"] / "cpu.shares", 1024 * max(1, jobs))
    return CgroupTree(1, parents), ("cgroups v1: each sandbox has its own memory cap, process "
                                   "count and CPU share")


def _v2_tree(own: str, name: str, jobs: int):
    # A v2 group with processes of its own cannot hand controllers to children;
    # this process's group usually has some (itself), so the tree goes where it can.
    needed = {"memory", "pids", "cpu"}
    for base in (CGROUP_ROOT / own.lstrip("/"), CGROUP_ROOT):
        available = set((base / "cgroup.controllers").read_text().split())
        if not needed <= available or not os.access(base, os.W_OK):
            continue
        try:
            _write(base / "cgroup.subtree_control", " ".join(f"+{c}" for c in sorted(needed)))
            parent = base / name
            parent.mkdir(mode=0o755)
            try:
                _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in sorted(needed)))
                _write(parent / "cpu.weight", min(10_000, 100 * max(1, jobs)))
            except OSError:
                parent.rmdir()
                raise
        except OSError as error:
            if error.errno in (errno.EBUSY, errno.EACCES, errno.EPERM, errno.ENOTSUP, errno.EINVAL):
                continue
            raise
        return CgroupTree(2, {"": parent}), ("cgroups v2: each sandbox has its own memory cap, "
                                             "process count and CPU share")
    return None, ("cgroups v2 without the memory, pids and cpu controllers available to this "
                  "grader: each process keeps its own memory and process limits")


# ------------------------------------------------------------------ the work folder

def mount_work_folder(path: Path, size_bytes: int) -> bool:
    """Mount a tmpfs of ``size_bytes`` at ``path`` (root only); False where it cannot."""
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes},mode=0700,nosuid,nodev",
                           "course-work", str(path)], capture_output=True, timeout=30)
    return done.returncode == 0


def unmount_work_folder(path: Path) -> None:
    for args in (["umount", str(path)], ["umount", "-l", str(path)]):
        if subprocess.run(args, capture_output=True, timeout=30).returncode == 0:
            return
    log.warning("could not unmount the work folder %s", path)


# ------------------------------------------------------------------ uids

def kill_all(pids) -> None:
    """SIGKILL each pid, passing over those already gone."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def uid_processes(uid: int) -> list[int]:
    """The pids of every process running as ``uid``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
                for line in status:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            found.append(int(pid))
                        break
        except (OSError, ValueError):
            continue
    return found


def claim_uid(start: int) -> tuple[int, int]:
    """A sandbox uid held by this process only, and the lock's fd (close it to give it back).

    Each uid has a lock file in a folder only root may write; ``flock`` is released
    by the kernel when this process ends, so a crashed grader leaves nothing behind.
    A uid that some process already runs as is passed over.
    """
    _UID_LOCKS.mkdir(mode=0o700, exist_ok=True)
    info = os.lstat(_UID_LOCKS)
    if info.st_uid != 0 or info.st_mode & 0o022 or not os.path.isdir(_UID_LOCKS) or os.path.islink(_UID_LOCKS):
        raise OSError(f"{_UID_LOCKS} is not a folder only root may write")
    size = UID_LAST - UID_FIRST + 1
    for step in range(size):
        uid = UID_FIRST + (start + step) % size
        fd = os.open(_UID_LOCKS / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        if uid_processes(uid):
            os.close(fd)
            continue
        return uid, fd
    raise OSError(f"every sandbox uid from {UID_FIRST} to {UID_LAST} is in use")
