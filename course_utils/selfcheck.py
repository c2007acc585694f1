"""Check before you hand in: ``python -m course_utils selfcheck exercises/NN-topic.ipynb``.

Covers: :func:`selfcheck`, for students. It reads the notebook and runs its cells
from top to bottom in a fresh kernel, headless (nbclient), with an empty temporary
folder as the working directory (as the grader does: only the notebook, nothing
an old kernel remembers or an earlier run left beside it); right after each
exercise's cell it runs that exercise's public checks, and prints the score
table the grader prints (``scores.py``). A cell past the time limit stops the
check there (the kernel is killed: a loop that ignores Ctrl-C cannot hang it). Hidden
checks exist only where the grader runs: the table says they are checked after
submission. The student's file is read, never written. Does not cover: grading
(the instructor's ``grade``, which this copy of the course may not have) or the
checks themselves (``exercise_checks/``).
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .checks import NEEDS_BROWSER
from .datafiles import read_notebook
from .exercise_headers import exercise_header
from .errors import CourseError, InvalidArgumentError
from .options import add_number, path_arg
from .paths import input_file, shown
from .scores import format_score_table

__all__ = ["selfcheck", "SelfCheck", "print_verdict", "add_cli"]

#: A notebook larger than this is refused (the grader's limit too).
MAX_NOTEBOOK_BYTES = 20 * 2**20
HIDDEN_WORDS = "checked after submission"
_MARK = "@@course-selfcheck@@"


@dataclass
class SelfCheck:
    """What :func:`selfcheck` found: one row per exercise, notes, the time taken."""

    path: str
    notebook: str
    rows: list[tuple[str, int, int, bool, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def points(self) -> int:
        return sum(r[1] for r in self.rows)

    @property
    def max_points(self) -> int:
        return sum(r[2] for r in self.rows)

    def table(self) -> str:
        """The grader's score table, public checks only."""
        return format_score_table(f"{self.path} ({self.notebook})", self.rows, notes=self.notes,
                                  seconds=self.seconds,
                                  total_note=f"from the public checks; hidden checks: {HIDDEN_WORDS}")


def print_verdict(exercise_id: str) -> None:
    """Run in the student's kernel by :func:`selfcheck`: print the public checks' verdict as one line."""
    from IPython import get_ipython

    from .answers import answer_spec
    from .checks import load_check_modules, run_checks

    try:
        load_check_modules()
        variable = answer_spec(exercise_id).variable
        namespace = get_ipython().user_ns
        if variable not in namespace:
            result = {"passed": False, "feedback": f"not attempted: `{variable}` is not defined after the "
                                                   "exercise's cell"}
        else:
            verdict = run_checks(exercise_id, namespace[variable])
            result = {"passed": verdict.passed, "feedback": verdict.feedback,
                      "needs_browser": verdict.needs_browser}
    except Exception as error:  # an unknown exercise, a broken check module: say so, never a traceback
        result = {"passed": False, "feedback": f"not checked ({type(error).__name__}: {error})"}
    print(_MARK + json.dumps(result))


def _read(path: Path):
    if path.suffix != ".ipynb":
        raise InvalidArgumentError(f"{shown(path)} is not a notebook; give the .ipynb file, "
                                   "e.g. exercises/00-install-check.ipynb")
    input_file(path, "notebook", missing_hint="give the path of your exercises notebook, e.g. "
                                              "exercises/00-install-check.ipynb")
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        raise InvalidArgumentError(f"{path} is {path.stat().st_size / 2**20:.0f} MiB, over the "
                                   f"{MAX_NOTEBOOK_BYTES // 2**20} MiB a notebook may have; clear its "
                                   "outputs (Edit > Clear Outputs of All Cells), save, and try again")
    return read_notebook(path, max_bytes=MAX_NOTEBOOK_BYTES,
                         next_step="open it in JupyterLab and save it again (or start again from "
                                   "a fresh copy of the exercises notebook)")


def _error_of(cell):
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return output.get("ename", "Error"), str(output.get("evalue", ""))
    return None


def _run_probe(client, code: str, index: int):
    """Run ``code`` in the kernel as a cell of its own; the notebook's cells stay as they are."""
    import nbformat

    probe, kept = nbformat.v4.new_code_cell(code), client.nb.cells[index]
    try:
        client.execute_cell(probe, index)
    finally:
        client.nb.cells[index] = kept  # nbclient stores the executed cell at its index
    return probe


def _verdict(client, index: int, exercise_id: str) -> tuple[bool | str, str]:
    probe = _run_probe(client, f"__import__('course_utils.selfcheck', fromlist=['print_verdict'])"
                               f".print_verdict({exercise_id!r})", index)
    for output in probe.outputs:
        for line in str(output.get("text", "")).splitlines():
            if line.startswith(_MARK):
                result = json.loads(line[len(_MARK):])
                if result.get("needs_browser"):  # not judged here: shown as such, never a fail
                    return NEEDS_BROWSER, str(result["feedback"])
                return bool(result["passed"]), str(result["feedback"])
    return False, "not checked: the check did not answer (did the cell stop the kernel?)"


def selfcheck(path, timeout: int = 600) -> SelfCheck:
    """Run a notebook headless in a fresh kernel and its public checks after each exercise.

    Args:
        path: the student's notebook (read, never written; it runs in a temporary folder).
        timeout: seconds one cell may run before it is stopped.

    Returns:
        A :class:`SelfCheck`; ``print(result.table())`` shows the grader's table.

    Example:
        >>> print(selfcheck("exercises/00-install-check.ipynb").table())  # doctest: +SKIP
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    path = Path(path)
    nb = _read(path)
    started = time.perf_counter()
    course = nb.metadata.get("course_utils")  # the build's own entry; a file may hold anything there
    name = course.get("notebook") if isinstance(course, dict) else None
    result = SelfCheck(str(path), name if isinstance(name, str) and name else path.stem)
    exercises = {}
    for index, cell in enumerate(nb.cells):
        header = exercise_header(cell.source) if cell.cell_type == "code" else None
        if header:
            exercises[index] = header
    if not exercises:
        raise InvalidArgumentError(f"{path} has no exercise cell (a code cell starting with "
                                   "'# Exercise NN.M (P points): ...'); is it a course exercises notebook?")
    verdicts: dict[str, tuple[bool, str]] = {}
    with tempfile.TemporaryDirectory(prefix="course-selfcheck-") as folder:
        from jupyter_client import AsyncKernelManager as KernelManager

        # Local sockets in the temporary folder rather than TCP ports: nothing listens on the
        # network. Each is named FOLDER/kernel-N, and a socket's path may be at most 107 bytes:
        # under a longer TMPDIR the kernel listens on 127.0.0.1 instead (ports only this
        # machine can reach).
        sockets = os.path.join(folder, "kernel")
        manager = (KernelManager(kernel_name="python3", transport="ipc", ip=sockets)
                   if os.name == "posix" and len(os.fsencode(f"{sockets}-5")) <= 107
                   else KernelManager(kernel_name="python3", ip="127.0.0.1"))
        client = NotebookClient(nb, km=manager, timeout=timeout, kernel_name="python3", allow_errors=True,
                                interrupt_on_timeout=False, record_timing=False,
                                resources={"metadata": {"path": folder}})
        stopped = None
        with client.setup_kernel(cleanup_kc=True):  # our manager: nbclient would leave the kernel running
            number = 0
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                number += 1
                header = exercises.get(index)
                try:
                    client.execute_cell(cell, index)
                except CellTimeoutError:  # the kernel is stopped with the check (a loop may ignore Ctrl-C)
                    stopped = (f"code cell {number} ran longer than {timeout} s (an endless loop?); "
                               "selfcheck stopped there")
                    if header:
                        verdicts[header[0]] = (False, f"the cell ran longer than {timeout} s and was "
                                                      "stopped (an endless loop?)")
                    break
                except DeadKernelError:
                    stopped = f"the kernel died in code cell {number} (a crash, os._exit or out of memory?)"
                    if header:
                        verdicts[header[0]] = (False, stopped)
                    break
                error = _error_of(cell)
                if header is None:
                    if error:
                        result.notes.append(f"code cell {number}: the cell raised {error[0]}: {error[1][:200]}")
                    continue
                if error and error[0] == "NotImplementedError":
                    verdicts[header[0]] = (False, "not attempted: the cell still raises NotImplementedError")
                elif error:
                    verdicts[header[0]] = (False, f"the cell raised {error[0]}: {error[1][:200]}")
                else:
                    passed, feedback = _verdict(client, index, header[0])
                    if passed is True:
                        feedback = f"public checks passed; hidden checks: {HIDDEN_WORDS}"
                    verdicts[header[0]] = (passed, feedback)  # a duplicated cell: the last one counts
    declared = {exercise_id: points for exercise_id, points, _ in exercises.values()}  # a duplicate once
    for exercise_id, points in sorted(declared.items(), key=lambda item: [int(n) for n in item[0].split(".")]):
        passed, feedback = verdicts.get(exercise_id, (False, f"not checked: {stopped}" if stopped else
                                                      "not attempted: the cell did not run"))
        result.rows.append((exercise_id, points if passed is True else 0, points, passed, feedback))
    result.seconds = time.perf_counter() - started
    return result


def _run_cli(args) -> int:
    try:
        found = selfcheck(args.notebook, timeout=args.timeout)
    except (OSError, RuntimeError) as error:  # no kernel could start: a broken install
        if isinstance(error, CourseError):
            raise
        raise CourseError(f"the notebook could not be run ({type(error).__name__}: {error}); run "
                          "`python -m course_utils doctor` and apply the fix it prints") from None
    print(found.table())
    print(f"\nThis is what the grader's public checks say; it runs further checks after you hand in. "
          f"{args.notebook} was not changed.")
    return 0


def add_cli(subparsers) -> None:
    """Register ``selfcheck``."""
    parser = subparsers.add_parser("selfcheck", help="run your notebook in a fresh kernel and show "
                                   "the grader's table (public checks) before you hand in")
    parser.add_argument("notebook", type=path_arg("NOTEBOOK"),
                        help="your exercises notebook, e.g. exercises/00-install-check.ipynb")
    add_number(parser, "--timeout", low=1, high=86400, default=600, metavar="S",
               help="seconds one cell may run")
    parser.set_defaults(func=_run_cli)
