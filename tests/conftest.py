"""Shared pytest setup.

``tests/files/`` holds fixture notebooks that are wrong on purpose; they must
not be collected by nbval.
"""
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
# would halve each one's share and put their cell time limits at risk. They come first in the
# collection and take the longest, so they start first; the other worker takes the rest.
SANDBOXED_BATCHES = ("test_alternative_answers.py", "test_grading.py", "test_grading_hostile.py")


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's, called only when it runs
def pytest_xdist_make_scheduler(config, log):
    """Distribute whole files, the sandboxed batches as one unit, in collection order."""
    from xdist.scheduler import LoadScopeScheduling

    class ByFile(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = nodeid.split("::", 1)[0]
            return "sandboxed batches" if file.endswith(SANDBOXED_BATCHES) else file

    config.option.loadscopereorder = False  # collection order, not the number of tests
    return ByFile(config, log)
