"""With nbval, every reference answer also goes through the grader's checks.

nbval executes each solutions notebook once and compares its outputs. Right
after an exercise's cell has passed, this plugin reads the exercise's answer
from nbval's own kernel exactly as the grader does (``verdicts.read_verdict``:
the answer as data, files copied out, function answers called on the checks'
inputs) and runs the public and hidden checks on it; the cell fails if they
do not pass. So one execution of each solutions notebook serves nbval and the
grader's checks; the grader's sandbox is tested on graded submissions in
``test_grading.py``. At the end, every exercise of every solutions notebook
collected whole must have been checked (a plugin that silently did nothing fails). The
repository's top-level ``conftest.py`` registers the plugin, so that a command line without
``tests/`` (``pytest solutions/01-execution-providers.ipynb --nbval``) checks the answers too.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from queue import Empty

import pytest

from course_utils.build import exercise_in, parse_exercises
from course_utils.grading import load_hidden_checks
from course_utils.grading.sandbox import CellResult
from course_utils.grading.verdicts import read_verdict


class NbvalKernel:
    """nbval's running kernel behind the interface ``verdicts.read_verdict`` uses (trusted code only)."""

    def __init__(self, running_kernel, workdir: Path, iodir: Path):
        self.kernel, self.workdir, self.iodir = running_kernel, workdir, iodir
        self.inbox_dir = iodir / "inbox"  # the kernel runs as this user: one folder will do
        self.inbox_dir.mkdir(parents=True, exist_ok=True)

    @property
    def io_path(self) -> str:
        return str(self.iodir)

    @property
    def inbox_path(self) -> str:
        return str(self.inbox_dir)

    def alive(self) -> bool:
        return self.kernel.is_alive()

    def run(self, code: str, limit: float, silent: bool = False, answer_input=None) -> CellResult:
        # Silent and without history: nbval's next cell sees no trace of it, and it
        # skips the idle message of this request because its id is not the cell's.
        # answer_input answers the cell's input requests (a timer's scripted work asks
        # the grader for each call's cost).
        kc = self.kernel.kc
        msg_id = kc.execute(code, silent=silent, store_history=False,
                            allow_stdin=answer_input is not None, stop_on_error=False)
        deadline = time.monotonic() + limit
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return CellResult("timeout", seconds=limit)
            if answer_input is not None:
                try:
                    request = kc.get_stdin_msg(timeout=0.001)
                    if request["parent_header"].get("msg_id") == msg_id:
                        kc.input(answer_input(request["content"]["prompt"]))
                    continue
                except Empty:
                    pass
            try:
                msg = kc.get_shell_msg(timeout=min(left, 0.01) if answer_input else max(left, 0.01))
            except Empty:
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                break
        content = msg["content"]
        status = "ok" if content.get("status") == "ok" else "error"
        return CellResult(status, str(content.get("ename", "")), str(content.get("evalue", "")))


class AnswerChecks:
    """The plugin: checks each exercise cell's answer in solutions notebooks run by nbval."""

    def __init__(self):
        self.checked: dict[Path, set[str]] = {}
        self.expected: dict[Path, set[str]] = {}
        self.hidden_loaded = False

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item):
        result = yield  # nbval ran the cell and compared its outputs (raises if not)
        cell, kernel = getattr(item, "cell", None), getattr(item.parent, "kernel", None)
        if cell is None or kernel is None or "solutions" not in item.path.parts:
            return result
        exercise = exercise_in(cell.source)
        if exercise is None:
            return result
        if not self.hidden_loaded:
            load_hidden_checks()
            self.hidden_loaded = True
        scratch = Path(tempfile.mkdtemp(prefix="nbval-answers-"))
        try:
            (scratch / "io").mkdir()
            verdict = read_verdict(NbvalKernel(kernel, item.path.parent, scratch / "io"),
                                   exercise, scratch / "answers")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        self.checked.setdefault(item.path, set()).add(exercise)
        if not verdict.passed:
            raise AssertionError(f"the reference answer of exercise {exercise} fails the "
                                 f"grader's checks: {verdict.feedback}")
        return result

    def pytest_collection_finish(self, session):
        """Expect a verdict for every exercise of each solutions notebook collected whole."""
        import nbformat

        collected: dict[Path, int] = {}
        for item in session.items:
            if item.path.suffix == ".ipynb" and "solutions" in item.path.parts:
                collected[item.path] = collected.get(item.path, 0) + 1
        for path, count in collected.items():
            nb = nbformat.read(path, as_version=4)
            source = path.parent.parent / "notebooks" / path.name
            if count == sum(c.cell_type == "code" for c in nb.cells) and source.exists():
                self.expected[path] = {e.id for e in parse_exercises(
                    nbformat.read(source, as_version=4), path.stem)}

    def pytest_sessionfinish(self, session):
        gaps = {path.name: sorted(ids - self.checked.get(path, set()))
                for path, ids in self.expected.items() if ids - self.checked.get(path, set())}
        if gaps and session.exitstatus == 0:
            reporter = session.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(f"exercises whose reference answer was never checked: {gaps}",
                                    red=True)
            session.exitstatus = 1
