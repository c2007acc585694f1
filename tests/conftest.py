"""Shared pytest setup.

``tests/files/`` holds fixture notebooks that are wrong on purpose; they must
not be collected by nbval.
"""
import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

collect_ignore_glob = ["files/*"]

ROOT = Path(__file__).resolve().parent.parent


def declared_points(number: str) -> dict[str, int]:
    """Exercise id -> points of notebook ``number`` (``"01"``), in order, as notebooks/ declares them.

    Tests derive totals and exercise lists from this, so that changing an exercise's points or
    adding one changes no test.
    """
    import nbformat

    from course_utils.build import parse_exercises

    (path,) = (ROOT / "notebooks").glob(f"{number}-*.ipynb")
    return {e.id: e.points for e in parse_exercises(nbformat.read(path, as_version=4), path.stem)}


@pytest.fixture
def root() -> Path:
    """The repository root."""
    return ROOT


@pytest.fixture
def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def in_ci() -> bool:
    """True when running under CI (CI=true), where nothing may be skipped for lack of tools."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def stop_process_group(process: subprocess.Popen) -> None:
    """Stop a process started with ``start_new_session=True`` and all it started (TERM, then KILL)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        process.wait()
        return
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture
def broken_numpy_env(tmp_path) -> dict:
    """An environment in which ``import numpy`` fails, as it does in a broken install."""
    (tmp_path / "numpy").mkdir()
    (tmp_path / "numpy" / "__init__.py").write_text('raise ImportError("numpy is broken on purpose")\n')
    return {**os.environ, "PYTHONPATH": str(tmp_path)}


# make test runs two pytest-xdist workers with this scheduler: each test file runs whole on one
# worker, in order (a notebook's cells share one kernel; a module's fixtures run once), and the
# files that grade whole notebooks through the sandbox share one worker and run one after
# another. Each such batch grades two notebooks at a time, one core each: two batches at once
# would halve each one's share and put their cell time limits at risk. The check tests of the
# topics that build the same context items (resnet18 exported, the trained digits CNN: built once
# per worker, `check_support.context`) share a worker too, so that they are built once.
SANDBOXED_BATCHES = ("test_alternative_answers.py", "test_grading.py", "test_grading_hostile.py")
SHARED_CONTEXT = ("test_checks_export.py", "test_checks_graphs.py", "test_checks_runtime.py")
# The test files (and groups) that take the longest, longest first: CPU seconds measured on this
# 2-core machine, busy: 43, 29, 24, 24, 16, 16, 13, 12.
LONGEST = ("test_export.py", "check tests sharing a context", "test_student_path.py",
           "test_grading_limits.py", "test_release.py", "test_notebook03_without_nchwc.py",
           "test_benchmark.py", "test_browser_run.py")


def _scope(nodeid: str) -> str:
    """The unit the scheduler hands to one worker: a file, or one of the groups above."""
    file = nodeid.split("::", 1)[0]
    if file.endswith(SANDBOXED_BATCHES):
        return "sandboxed batches"
    return "check tests sharing a context" if file.endswith(SHARED_CONTEXT) else file


def _notebook_seconds(path: Path) -> float:
    """Seconds the cells of a solutions notebook took when `build` executed it (0 if unknown)."""
    try:
        seconds = json.loads(path.read_text())["metadata"]["course_utils"]["run"]["cell_seconds"]
        return float(sum(s for s in seconds if s))
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


def pytest_collection_modifyitems(config, items):
    """Hand out the longest work first, so that the two workers finish together.

    The sandboxed batches first (the longest unit), then the notebooks nbval runs, longest
    first by the seconds their last build recorded, then the longest test files, then the rest
    in collection order. Each unit keeps its tests in their order.
    """
    first_seen: dict[str, int] = {}
    cost: dict[str, tuple] = {}
    for item in items:
        scope = _scope(item.nodeid)
        if scope in first_seen:
            continue
        first_seen[scope] = len(first_seen)
        name = Path(scope.split("::", 1)[0]).name
        if scope == "sandboxed batches":
            cost[scope] = (0, 0.0)
        elif item.path.suffix == ".ipynb":
            cost[scope] = (1, -_notebook_seconds(item.path))
        elif name in LONGEST:
            cost[scope] = (2, LONGEST.index(name))
        else:
            cost[scope] = (3, 0)
    items.sort(key=lambda item: (*cost[_scope(item.nodeid)], first_seen[_scope(item.nodeid)]))


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's, called only when it runs
def pytest_xdist_make_scheduler(config, log):
    """Distribute whole files (and the groups above) in collection order."""
    from xdist.scheduler import LoadScopeScheduling

    class ByFile(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _scope(nodeid)

    config.option.loadscopereorder = False  # collection order, not the number of tests
    return ByFile(config, log)
