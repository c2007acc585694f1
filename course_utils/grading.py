"""Grading for instructors: score submitted notebooks, in bulk, safely.

Covers: ``grade_notebooks`` and ``python -m course_utils grade``. Each
submission is copied into a temporary folder and executed there (the
student's file is never written); every code cell runs under a time limit;
every ``check()`` also runs the hidden checks and logs its verdict; when an
exercise cell fails (an error, a time-out, or a failed check) the reference
solution is replayed silently so that later exercises are still graded on
their own. Does not cover: the checks themselves (``exercise_checks/``) or the
notebook build (``build.py``), whose exercise headers declare the points.

Grading runs student code with your permissions: use a container or a
separate account for untrusted submissions.
"""
from __future__ import annotations

import csv
import json
import logging
import re
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .build import ROOT, _HEADER, parse_exercises, source_notebooks
from .checks import GRADE_LOG_ENV

__all__ = ["grade_notebooks", "NotebookGrade", "ExerciseGrade"]

log = logging.getLogger(__name__)

NOT_ATTEMPTED = "not attempted"


@dataclass
class ExerciseGrade:
    """One exercise of one submission."""

    exercise: str
    points: int
    max_points: int
    passed: bool
    feedback: str


@dataclass
class NotebookGrade:
    """One submission: its exercises, or the reason it could not be graded."""

    path: str
    student: str
    notebook: str | None = None
    exercises: list[ExerciseGrade] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def points(self) -> int:
        return sum(e.points for e in self.exercises)

    @property
    def max_points(self) -> int:
        return sum(e.max_points for e in self.exercises)

    def table(self) -> str:
        """The score table an instructor reads."""
        head = f"{self.path} ({self.student})"
        if self.error:
            return f"{head}\n  could not grade: {self.error}"
        rows = [head, f"  {'exercise':<9} {'points':>7}  result  feedback"]
        for e in self.exercises:
            rows.append(f"  {e.exercise:<9} {e.points:>3}/{e.max_points:<3}  "
                        f"{'pass' if e.passed else 'FAIL':<6}  {e.feedback}")
        rows.append(f"  total {self.points}/{self.max_points} in {self.seconds:.0f} s")
        return "\n".join(rows)


# ---------------------------------------------------------------- kernel side

def _run_graded_cell(exercise_id, code, reference, limit):
    """Run one student cell inside the grading kernel (called by the injected cells)."""
    import signal

    from IPython import get_ipython
    from IPython.utils.capture import capture_output

    from . import checks

    shell = get_ipython()

    def on_alarm(signum, frame):
        raise TimeoutError(f"the cell ran longer than {limit} s and was stopped")

    checks._LAST.pop(exercise_id, None)
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(limit)
    try:
        result = shell.run_cell(code, store_history=False)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    if exercise_id is None:
        return
    error = result.error_before_exec or result.error_in_exec
    verdict = checks._LAST.get(exercise_id)
    if verdict is None:  # the check never ran: say why
        if isinstance(error, NotImplementedError):
            feedback = f"{NOT_ATTEMPTED}: the cell still raises NotImplementedError"
        elif isinstance(error, TimeoutError):
            feedback = f"{error} (an endless loop?)"
        elif error is not None:
            feedback = f"the cell raised {type(error).__name__}: {str(error)[:200]}"
        else:
            feedback = f"{NOT_ATTEMPTED}: the cell did not call check(\"{exercise_id}\", ...)"
        with open(checks.os.environ[checks.GRADE_LOG_ENV], "a", encoding="utf-8") as out:
            out.write(json.dumps({"exercise": exercise_id, "passed": False, "feedback": feedback}) + "\n")
    if error is not None or verdict is None or not verdict.passed:
        # Restore the state later cells expect, silently and without scoring it.
        with checks.recording_paused(), capture_output():
            shell.run_cell(reference, store_history=False)


# ---------------------------------------------------------------- grader side

def _identify(nb, path: Path, sources: dict[str, Path]) -> str:
    name = nb.metadata.get("course_utils", {}).get("notebook")
    if name in sources:
        return name
    match = [stem for stem in sources if path.name.startswith(stem[:3])]
    if len(match) == 1:
        return match[0]
    raise ValueError("cannot tell which course notebook this is: it has no course metadata and "
                     f"its name does not start with one of {sorted(s[:2] for s in sources)}; "
                     "rename it like the exercises notebook it came from")


def _exercise_of(cell) -> str | None:
    for line in cell.source.splitlines():
        match = _HEADER.match(line)
        if match:
            return match.group(1)
    return cell.metadata.get("course_utils", {}).get("exercise")


def _graded_copy(nb, exercises, log_path: Path, limit: int):
    """The notebook the grader executes: every code cell wrapped, outputs dropped."""
    import nbformat

    references = {e.id: e.solution for e in exercises}
    graded = nbformat.v4.new_notebook(metadata=nb.metadata)
    graded.cells.append(nbformat.v4.new_code_cell(
        f"import os\nos.environ[{GRADE_LOG_ENV!r}] = {str(log_path)!r}\n"
        "from course_utils.grading import _run_graded_cell as __grader_cell"))
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        exercise = _exercise_of(cell)
        reference = references.get(exercise)
        exercise = exercise if reference is not None else None
        graded.cells.append(nbformat.v4.new_code_cell(
            f"__grader_cell({exercise!r}, {cell.source!r}, {reference!r}, {int(limit)})"))
    return graded


def _grade_one(path: Path, sources: dict[str, Path], timeout: int, student: str) -> NotebookGrade:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    grade = NotebookGrade(str(path), student)
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():  # duplicated cells carry duplicate ids: harmless here
            warnings.simplefilter("ignore")
            nb = nbformat.read(path, as_version=4)  # read only: the student's file is never written
            nbformat.validate(nb)
    except Exception as error:  # JSON errors, validation errors, unreadable bytes
        grade.error = (f"not a readable Jupyter notebook ({type(error).__name__}: "
                       f"{str(error).splitlines()[0][:160] if str(error) else 'empty'}); "
                       "ask for the .ipynb file that JupyterLab saved")
        return grade
    try:
        grade.notebook = _identify(nb, path, sources)
    except ValueError as error:
        grade.error = str(error)
        return grade
    exercises = parse_exercises(nbformat.read(sources[grade.notebook], as_version=4), grade.notebook)
    workdir = Path(tempfile.mkdtemp(prefix="course-grade-"))
    log_path = workdir / "verdicts.jsonl"
    log_path.touch()
    crashed = None
    try:
        graded = _graded_copy(nb, exercises, log_path, timeout)
        current = {"index": 0}
        client = NotebookClient(
            graded, timeout=timeout + 30, kernel_name="python3", allow_errors=True,
            interrupt_on_timeout=True, record_timing=False,
            error_on_timeout={"ename": "TimeoutError", "evalue": "cell timed out", "traceback": []},
            on_cell_start=lambda cell, cell_index: current.update(index=cell_index),
            resources={"metadata": {"path": str(workdir)}})
        try:
            client.execute()
        except DeadKernelError:
            crashed = current["index"]  # cell 0 is the grader's own setup cell
        verdicts = {}
        for line in log_path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            verdicts[row["exercise"]] = row  # the last verdict counts
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for exercise in exercises:
        row = verdicts.get(exercise.id)
        if row is None:
            feedback = (f"not graded: the kernel died in code cell {crashed} of the submission "
                        "(a crash or os._exit?) before this exercise ran" if crashed is not None else
                        f"{NOT_ATTEMPTED}: no cell for this exercise was found or run")
            row = {"passed": False, "feedback": feedback}
        passed = bool(row["passed"])
        grade.exercises.append(ExerciseGrade(exercise.id, exercise.points if passed else 0,
                                             exercise.points, passed, row["feedback"]))
    grade.seconds = time.perf_counter() - started
    return grade


def _submissions(paths) -> list[tuple[Path, str]]:
    found = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for nb_path in sorted(path.rglob("*.ipynb")):
                if ".ipynb_checkpoints" in nb_path.parts:
                    continue
                relative = nb_path.relative_to(path)
                found.append((nb_path, relative.parts[0] if len(relative.parts) > 1 else nb_path.stem))
        elif path.exists():
            found.append((path, path.stem))
        else:
            raise FileNotFoundError(f"{path} does not exist; give notebook files or a folder of them")
    return found


def grade_notebooks(paths, json_path=None, csv_path=None, timeout: int = 120,
                    root: Path = ROOT, jobs: int = 1) -> list[NotebookGrade]:
    """Grade notebooks (files, or folders of them) and optionally write JSON and CSV.

    Args:
        paths: notebook files and/or folders (searched recursively; in a folder
            of sub-folders, each sub-folder's name is the student's name).
        json_path: where to write every notebook's exercises as JSON.
        csv_path: where to write one row per student and exercise.
        timeout: seconds each cell may run.
        root: the course folder whose ``notebooks/`` declares the exercises.
        jobs: how many notebooks to grade at the same time (each in its own kernel).

    Returns:
        One :class:`NotebookGrade` per file, in order; files that could not be
        graded carry ``error`` and the batch goes on.

    Example:
        >>> grades = grade_notebooks(["submissions/"], csv_path="grades.csv")  # doctest: +SKIP
        >>> print(grades[0].table())  # doctest: +SKIP
    """
    sources = {p.stem: p for p in source_notebooks(root)}

    def grade(submission):
        path, student = submission
        log.info("grading %s", path)
        return _grade_one(path, sources, timeout, student)

    submissions = _submissions(paths)
    if jobs > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=jobs) as pool:  # the kernels do the work
            grades = list(pool.map(grade, submissions))
    else:
        grades = [grade(s) for s in submissions]
    if json_path:
        payload = [{**{k: v for k, v in asdict(g).items() if k != "exercises"},
                    "points": g.points, "max_points": g.max_points,
                    "exercises": {e.exercise: {k: v for k, v in asdict(e).items() if k != "exercise"}
                                  for e in g.exercises}} for g in grades]
        Path(json_path).write_text(json.dumps(payload, indent=2), encoding="utf-8")
    if csv_path:
        with open(csv_path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["student", "notebook", "exercise", "points", "max_points", "passed", "feedback"])
            for g in grades:
                if g.error:
                    writer.writerow([g.student, g.notebook or Path(g.path).name, "", 0, "", False, g.error])
                for e in g.exercises:
                    writer.writerow([g.student, g.notebook, e.exercise, e.points, e.max_points, e.passed, e.feedback])
    return grades


def points_table(root: Path = ROOT) -> str:
    """Every exercise with its points, as declared in ``notebooks/``."""
    import nbformat

    lines = [f"{'exercise':<9} {'points':>6}  task"]
    total = 0
    for path in source_notebooks(root):
        for e in parse_exercises(nbformat.read(path, as_version=4), path.stem):
            lines.append(f"{e.id:<9} {e.points:>6}  {e.task}")
            total += e.points
    lines.append(f"{'total':<9} {total:>6}")
    return "\n".join(lines)


def _run_cli(args) -> int:
    if args.list:
        print(points_table())
        return 0
    if not args.paths:
        raise ValueError("give notebook files or folders to grade (or --list for the points table)")
    csv_path = args.csv
    if csv_path is None and any(Path(p).is_dir() for p in args.paths):
        csv_path = "grades.csv"
    grades = grade_notebooks(args.paths, json_path=args.json, csv_path=csv_path,
                             timeout=args.timeout, jobs=args.jobs)
    for grade in grades:
        print(grade.table())
        print()
    failed = [g for g in grades if g.error]
    print(f"graded {len(grades) - len(failed)} of {len(grades)} notebooks"
          + (f"; wrote {csv_path}" if csv_path else "") + (f"; wrote {args.json}" if args.json else ""))
    return 1 if failed else 0


def add_cli(subparsers) -> None:
    """Register ``grade``."""
    parser = subparsers.add_parser("grade", help="grade student notebooks (runs their code!)")
    parser.add_argument("paths", nargs="*", help="notebook files or folders of them")
    parser.add_argument("--json", metavar="OUT", help="write every exercise's result as JSON")
    parser.add_argument("--csv", metavar="OUT", help="write one row per student and exercise "
                        "(default grades.csv when a folder is given)")
    parser.add_argument("--timeout", type=int, default=120, metavar="S", help="seconds per cell (120)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="grade N notebooks at a time (1; at most one per CPU core)")
    parser.add_argument("--list", action="store_true", help="print every exercise and its points")
    parser.set_defaults(func=_run_cli)
