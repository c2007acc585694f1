"""Grading for instructors: score submitted notebooks, in bulk, without trusting them.

Covers: ``grade_notebooks`` and ``python -m course_utils grade`` (sharding and
merging included). Each submission runs in its own sandbox (``sandbox.py``): a
copy of the notebook in a private work folder, a kernel that cannot see the
grader, the course's notebooks, solutions, hidden checks or other submissions.
The kernel only ever returns data: right after an exercise's cell, the grader
reads the exercise's declared answer as data and runs the public and hidden
checks in its own process (``verdicts.py``). When an exercise fails (an error,
a time-out, a failed check) the reference solution is replayed, after the
answer was captured, so that later exercises are graded on their own; a kernel
that is stopped or dies is replaced by a fresh one with every earlier cell
replayed. Does not cover: the checks themselves (``exercise_checks/``,
``hidden_checks/``) or the notebook build (``build.py``).
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
import warnings
from pathlib import Path

from ..build import ROOT, exercise_in, parse_exercises, source_notebooks
from ..errors import CourseError, InvalidArgumentError, MissingFileError
from ..formatting import format_table
from .results import (ExerciseGrade, NotebookGrade, merge_parts, payload, select_shard,
                            write_results)
from .verdicts import NOT_ATTEMPTED, read_verdict, status_text

__all__ = ["grade_notebooks", "points_table"]

log = logging.getLogger(__name__)

#: Submissions larger than this are refused before they are parsed.
MAX_NOTEBOOK_BYTES = 20 * 2**20


def _identify(nb, path: Path, sources: dict[str, Path]) -> str:
    name = nb.metadata.get("course_utils", {}).get("notebook")
    if name in sources:
        return name
    match = [stem for stem in sources if path.name.startswith(stem[:3])]
    if len(match) == 1:
        return match[0]
    raise InvalidArgumentError("cannot tell which course notebook this is: it has no course metadata and "
                     f"its name does not start with one of {sorted(s[:2] for s in sources)}; "
                     "rename it like the exercises notebook it came from")


def _exercise_of(cell) -> str | None:
    return exercise_in(cell.source) or cell.metadata.get("course_utils", {}).get("exercise")


# ---------------------------------------------------------------- grading one submission

class _Run:
    """The grading of one submission: one sandbox at a time, cells replayed after a restart."""

    def __init__(self, grade, workdir, iodir, libdir, limits, sandboxed, uid, timeout, budget):
        from .sandbox import SandboxedKernel

        self.grade, self.timeout, self.budget = grade, timeout, budget
        self.started = time.monotonic()
        self.kernel_args = (workdir, iodir, libdir, limits, sandboxed, uid)
        self.make = SandboxedKernel
        self.kernel = None
        self.replay: list[str] = []  # what rebuilds the state after a restart
        self.capture_dir = Path(tempfile.mkdtemp(prefix="course-answers-"))

    def left(self) -> float:
        return self.budget - (time.monotonic() - self.started)

    def ensure_kernel(self) -> str | None:
        """A live kernel with every earlier cell replayed, or why there is none."""
        if self.kernel is not None and self.kernel.alive():
            return None
        if self.kernel is not None:
            self.kernel.kill()
        self.kernel = self.make(*self.kernel_args)
        self.kernel.start()
        self.kernel.run("%matplotlib inline", 30, silent=True)
        for code in self.replay:
            result = self.kernel.run(code, min(self.timeout, max(1, self.left())), silent=True)
            if result.status not in ("ok", "error"):
                return ("the kernel could not be rebuilt: replaying an earlier cell ended with "
                        f"{result.status}")
        return None

    def run_cell(self, code: str):
        return self.kernel.run(code, min(self.timeout, max(1, self.left())))

    def capture(self, exercise_id: str):
        """Read the exercise's answer from the kernel, as data, and run every check on it."""
        return read_verdict(self.kernel, exercise_id, self.capture_dir)

    def close(self):
        if self.kernel is not None:
            self.kernel.kill()
        shutil.rmtree(self.capture_dir, ignore_errors=True)


def _grade_one(path: Path, sources: dict[str, Path], timeout: int, student: str, *,
               libdir: Path, limits, sandboxed: bool, uid: int, budget: float) -> NotebookGrade:
    import nbformat

    grade = NotebookGrade(str(path), student)
    started = time.perf_counter()
    try:
        size = path.stat().st_size
    except OSError as error:
        grade.error = f"cannot read the file ({error.strerror})"
        return grade
    if size > MAX_NOTEBOOK_BYTES:
        grade.error = (f"the file is {size / 2**20:.0f} MiB, over the {MAX_NOTEBOOK_BYTES // 2**20} MiB "
                       "limit for a notebook; clear the outputs (Edit > Clear Outputs) and submit again")
        return grade
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
    references = {e.id: e.solution for e in exercises}
    verdicts: dict[str, tuple[bool, str]] = {}
    base = Path(tempfile.mkdtemp(prefix="course-grade-"))
    workdir, iodir = base / "work", base / "io"
    workdir.mkdir()
    iodir.mkdir()
    shutil.copyfile(path, workdir / path.name)  # the student's copy, in their private folder
    run = _Run(grade, workdir, iodir, libdir, limits, sandboxed, uid, timeout, budget)
    stopped = None
    try:
        for number, cell in enumerate((c for c in nb.cells if c.cell_type == "code"), start=1):
            if run.left() <= 0:
                stopped = f"the notebook's time budget of {budget:.0f} s ran out before code cell {number}"
                break
            problem = run.ensure_kernel()
            if problem:
                stopped = f"{problem} (before code cell {number})"
                break
            exercise = _exercise_of(cell)
            exercise = exercise if exercise in references else None
            result = run.run_cell(cell.source)
            if exercise is None:
                if result.status in ("timeout", "flood", "died"):
                    grade.notes.append(f"code cell {number}: {status_text(result, run.timeout)}; "
                                       "graded on in a fresh kernel, without this cell")
                    continue
                if result.status == "error":  # later exercises may fail because of it
                    grade.notes.append(f"code cell {number}: {status_text(result, run.timeout)}")
                run.replay.append(cell.source)
                continue
            if result.status == "ok":
                verdict = run.capture(exercise)
                passed, feedback = verdict.passed, verdict.feedback
            elif result.status == "error" and result.ename == "NotImplementedError":
                passed, feedback = False, f"{NOT_ATTEMPTED}: the cell still raises NotImplementedError"
            elif result.status == "timeout":
                passed, feedback = False, f"{status_text(result, run.timeout)} (an endless loop?)"
            else:
                passed, feedback = False, status_text(result, run.timeout)
            verdicts[exercise] = (passed, feedback)  # the last verdict counts
            run.replay.append(references[exercise])
            if not passed and run.kernel.alive():
                # Restore the state later cells expect, after the answer was captured.
                run.kernel.run(references[exercise], min(run.timeout, max(1, run.left())), silent=True)
    except Exception as error:  # the sandbox itself failed: this submission only
        from .sandbox import SandboxError

        if isinstance(error, SandboxError):
            grade.error = str(error)
        else:
            log.exception("grading %s failed", path)
            grade.error = f"the grader failed on this notebook ({type(error).__name__}: {error})"
    finally:
        run.close()
        shutil.rmtree(base, ignore_errors=True)
    if grade.error:
        return grade
    for exercise in exercises:
        passed, feedback = verdicts.get(exercise.id, (False, None))
        if feedback is None:
            feedback = (f"not graded: {stopped}" if stopped else
                        f"{NOT_ATTEMPTED}: no cell for this exercise was found or run")
        grade.exercises.append(ExerciseGrade(exercise.id, exercise.points if passed else 0,
                                             exercise.points, passed, feedback))
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
            raise MissingFileError(f"{path} does not exist; give notebook files or a folder of them")
    return found


def grade_notebooks(paths, json_path=None, csv_path=None, timeout: int = 120,
                    root: Path = ROOT, jobs: int = 1, *, sandbox: bool = True,
                    budget: float = 3600, shard: str | None = None,
                    memory_mb: int = 8192) -> list[NotebookGrade]:
    """Grade notebooks (files, or folders of them) and optionally write JSON and CSV.

    Args:
        paths: notebook files and/or folders (searched recursively; in a folder
            of sub-folders, each sub-folder's name is the student's name).
        json_path: where to write every notebook's exercises as JSON.
        csv_path: where to write one row per student and exercise.
        timeout: seconds each cell may run (enforced from outside the sandbox).
        root: the course folder whose ``notebooks/`` declares the exercises.
        jobs: how many notebooks to grade at the same time (each in its own sandbox).
        sandbox: False runs kernels without bubblewrap: trusted notebooks only.
        budget: seconds one notebook may take in all (restarts and replays included).
        shard: ``"K/N"`` grades only the K-th of N shares (see :func:`merge_parts`).
        memory_mb: address-space limit of each process in the sandbox.

    Returns:
        One :class:`NotebookGrade` per file, in order; files that could not be
        graded carry ``error`` and the batch goes on. The files are written
        (atomically) only after every sandbox has ended.

    Example:
        >>> grades = grade_notebooks(["submissions/"], csv_path="grades.csv")  # doctest: +SKIP
        >>> print(grades[0].table())  # doctest: +SKIP
    """
    from ..checks import broken_check_modules
    from .hidden_checks import load_hidden_checks
    from .sandbox import KernelLimits, copy_library, require_bwrap

    if sandbox:
        require_bwrap()
    broken = broken_check_modules()
    if broken:
        raise CourseError("the course's check modules do not load ("
                           + "; ".join(f"exercise_checks/{m}.py: {why}" for m, why in broken.items())
                           + "); fix them before grading, no verdict would be right")
    load_hidden_checks()
    sources = {p.stem: p for p in source_notebooks(root)}
    selected = select_shard(_submissions(paths), shard)
    limits = KernelLimits(memory_bytes=memory_mb * 2**20)
    libtop = Path(tempfile.mkdtemp(prefix="course-lib-"))
    os.chmod(libtop, 0o755)
    libdir = copy_library(libtop)
    slots, lock = list(range(max(1, jobs))), threading.Lock()
    base_uid = 61000 + (os.getpid() % 250) * 16

    def grade(numbered):
        _, (path, student) = numbered
        with lock:
            slot = slots.pop()
        try:
            log.info("grading %s", path)
            return _grade_one(path, sources, timeout, student, libdir=libdir, limits=limits,
                              sandboxed=sandbox, uid=base_uid + slot, budget=budget)
        finally:
            with lock:
                slots.append(slot)

    try:
        if jobs > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=jobs) as pool:  # the kernels do the work
                grades = list(pool.map(grade, selected))
        else:
            grades = [grade(s) for s in selected]
    finally:
        shutil.rmtree(libtop, ignore_errors=True)
    rows = payload(grades, [i for i, _ in selected] if shard else None)
    write_results(rows, json_path, csv_path)
    return grades


def points_table(root: Path = ROOT) -> str:
    """Every exercise with its points, as declared in ``notebooks/``."""
    import nbformat

    rows = []
    for path in source_notebooks(root):
        rows += [[e.id, e.points, e.task] for e in parse_exercises(nbformat.read(path, as_version=4), path.stem)]
    lines = format_table(["exercise", "points", "task"], rows, align="<><", widths=[9, 6, 0], gap="  ")
    lines.append(f"{'total':<9}  {sum(points for _, points, _ in rows):>6}")
    return "\n".join(lines)


def _run_cli(args) -> int:
    if args.list:
        print(points_table())
        return 0
    if args.merge:
        if not (args.json or args.csv):
            raise InvalidArgumentError("--merge needs --json OUT and/or --csv OUT")
        rows = merge_parts(args.merge, json_path=args.json, csv_path=args.csv)
        print(f"merged {len(args.merge)} parts: {len(rows)} notebooks"
              + (f"; wrote {args.csv}" if args.csv else "") + (f"; wrote {args.json}" if args.json else ""))
        _after_grading(rows, args)
        return 1 if any(r["error"] for r in rows) else 0
    if not args.paths:
        raise InvalidArgumentError("give notebook files or folders to grade (or --list for the points table)")
    if args.shard and (args.feedback or args.report):
        raise InvalidArgumentError("--feedback and --report need every submission: give them to "
                                   "`grade --merge PART... --json grades.json` once the shards are done")
    csv_path = args.csv
    if csv_path is None and any(Path(p).is_dir() for p in args.paths) and not args.shard:
        csv_path = "grades.csv"
    grades = grade_notebooks(args.paths, json_path=args.json, csv_path=csv_path,
                             timeout=args.timeout, jobs=args.jobs, sandbox=not args.no_sandbox,
                             budget=args.budget, shard=args.shard, memory_mb=args.memory_mb)
    for grade in grades:
        print(grade.table())
        print()
    failed = [g for g in grades if g.error]
    print(f"graded {len(grades) - len(failed)} of {len(grades)} notebooks"
          + (f" (share {args.shard})" if args.shard else "")
          + (f"; wrote {csv_path}" if csv_path else "") + (f"; wrote {args.json}" if args.json else ""))
    _after_grading(payload(grades), args)
    return 1 if failed else 0


def _after_grading(rows, args) -> None:
    if args.feedback or args.report:  # from the same rows as the JSON (report.py)
        from .report import after_grading

        print("\n".join(after_grading(rows, args.feedback, args.report)))


def add_cli(subparsers) -> None:
    """Register ``grade``."""
    parser = subparsers.add_parser("grade", help="grade student notebooks, each in a sandbox")
    parser.add_argument("paths", nargs="*", help="notebook files or folders of them")
    parser.add_argument("--json", metavar="OUT", help="write every exercise's result as JSON")
    parser.add_argument("--csv", metavar="OUT", help="write one row per student and exercise "
                        "(default grades.csv when a folder is given)")
    parser.add_argument("--timeout", type=int, default=120, metavar="S", help="seconds per cell (120)")
    parser.add_argument("--budget", type=float, default=3600, metavar="S",
                        help="seconds per notebook in all, restarts included (3600)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="grade N notebooks at a time (1; at most one per CPU core)")
    parser.add_argument("--memory-mb", type=int, default=8192, metavar="MB",
                        help="address-space limit of each process in the sandbox (8192)")
    parser.add_argument("--shard", metavar="K/N", help="grade only the K-th of N shares of the "
                        "submissions (with --json; combine the parts with --merge)")
    parser.add_argument("--merge", nargs="+", metavar="PART",
                        help="combine the JSON parts of --shard runs into --json/--csv")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="run kernels without bubblewrap: ONLY for trusted notebooks (e.g. macOS)")
    parser.add_argument("--list", action="store_true", help="print every exercise and its points")
    parser.add_argument("--feedback", metavar="DIR", help="write each student's feedback pages (HTML, Markdown)")
    parser.add_argument("--report", metavar="DIR", help="write the class report (report.html, plots, CSV)")
    parser.set_defaults(func=_run_cli)
