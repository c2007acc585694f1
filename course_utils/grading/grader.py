"""Grading for instructors: score submitted notebooks, in bulk, without trusting them.

Covers: ``grade_notebooks`` and ``python -m course_utils grade`` (sharding and
merging included). Each submission runs in its own sandbox (``sandbox.py``): a
copy of the notebook in a private, size-capped work folder, a kernel that cannot
see the grader, the course's notebooks, solutions, hidden checks or other
submissions, with cgroup limits for the sandbox as a whole where the machine has
them (``limits.py``). The kernel only ever returns data: right after an
exercise's cell, the grader reads the exercise's declared answer as data and runs
the public and hidden checks on it in a limited child process (``verdicts.py``,
``isolated.py``). When an exercise fails (an error, a time-out, a failed check)
the reference solution is replayed, after the answer was captured, so that later
exercises are graded on their own; a kernel that is stopped or dies is replaced
by a fresh one with every earlier cell replayed. Everything done for a notebook
(kernel starts, cells, replays, captures, checks) takes its time from ``budget``.
Does not cover: the checks themselves (``exercise_checks/``, ``hidden_checks/``)
or the notebook build (``build.py``).

Which cell is which exercise comes from the course: the exercises are those of
the source notebook (``notebooks/``), and in a submission the first code cell
whose source carries an exercise's header line is that exercise (cell metadata
never makes a cell an exercise). A later cell with the header of an exercise
already graded runs as a plain cell and never changes its verdict (the notes say
so); no answer is ever read once that exercise's reference has run in the kernel.

Which file is which submission, and duplicates: ``submissions.py``.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from ..build import ROOT, exercise_in, parse_exercises, source_notebooks
from ..errors import CourseError, InvalidArgumentError, MissingFileError
from ..formatting import format_table
from ..options import add_number, path_arg
from .results import (ExerciseGrade, NotebookGrade, merge_parts, payload, safe_text, select_shard,
                      write_results)
from .similarity import reference_copy_note
from .submissions import (CodeBudget, Submission, find_submissions, fold_hard_links, mark_collisions,
                          mark_duplicates, parse_notebook, prepare_submission, read_submission)
from .verdicts import NEEDS_BROWSER, NOT_ATTEMPTED, excerpt, read_verdict, status_text

__all__ = ["grade_notebooks", "points_table"]

log = logging.getLogger(__name__)



# ---------------------------------------------------------------- grading one submission

class _Run:
    """The grading of one submission: one sandbox at a time, cells replayed after a restart."""

    def __init__(self, grade, workdir, rundir, libdir, limits, sandboxed, uid, timeout, budget,
                 cgroups=None):
        from .sandbox import SandboxedKernel

        self.grade, self.timeout, self.budget = grade, timeout, budget
        self.started = time.monotonic()
        self.kernel_args = (workdir, rundir, libdir, limits, sandboxed, uid, cgroups)
        self.make = SandboxedKernel
        self.kernel = None
        self.replay: list[tuple[str, bool]] = []  # (code, is a reference): rebuilds the state
        self.tainted = False  # a reference has run in this kernel
        self.memory_capped = False
        self.capture_dir = Path(tempfile.mkdtemp(prefix="course-answers-"))

    def left(self) -> float:
        return self.budget - (time.monotonic() - self.started)

    def limit(self) -> float:
        return max(1.0, min(self.timeout, self.left()))

    def ensure_kernel(self) -> str | None:
        """A live kernel with every earlier cell replayed, or why there is none."""
        if self.kernel is not None and self.kernel.alive():
            return None
        self._retire()
        self.kernel = self.make(*self.kernel_args)
        self.kernel.start(limit=max(1.0, self.left()))
        self.tainted = any(is_reference for _, is_reference in self.replay)
        for code, _ in self.replay:
            result = self.kernel.run(code, self.limit(), silent=True)
            if result.status not in ("ok", "error"):
                return ("the kernel could not be rebuilt: replaying an earlier cell ended with "
                        f"{result.status}")
        return None

    def run_cell(self, code: str):
        return self.kernel.run(code, self.limit())

    def run_reference(self, code: str) -> None:
        self.replay.append((code, True))
        if self.kernel.alive():
            self.tainted = True
            self.kernel.run(code, self.limit(), silent=True)

    def capture(self, exercise_id: str):
        """Read the exercise's answer from the kernel, as data, and run every check on it."""
        return read_verdict(self.kernel, exercise_id, self.capture_dir, limit=self.limit(),
                            quote=not self.tainted)

    def _retire(self) -> None:
        if self.kernel is not None:
            self.kernel.kill()
            self.memory_capped = self.memory_capped or getattr(self.kernel, "hit_memory_cap", False)

    def close(self):
        self._retire()
        if self.memory_capped and self.grade is not None:
            self.grade.notes.append(f"the sandbox's processes together reached its memory cap of "
                                    f"{self.kernel_args[3].memory_bytes // 2**20} MiB")
        shutil.rmtree(self.capture_dir, ignore_errors=True)


def _work_folder(base: Path, limits, sandboxed: bool, uid: int, mount: bool) -> tuple[Path, bool]:
    """The submission's work folder, owned by the sandbox's uid.

    Where it can be, ``base`` becomes a size-capped tmpfs first, so the work folder
    and the kernel's io folders (everything the sandbox can write) share one cap.
    """
    from .limits import mount_work_folder

    mounted = mount and mount_work_folder(base, limits.work_bytes)
    workdir = base / "work"
    workdir.mkdir(mode=0o700)
    if sandboxed and os.geteuid() == 0:
        fd = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            os.fchown(fd, uid, uid)
            os.fchmod(fd, 0o755)
        finally:
            os.close(fd)
    return workdir, mounted


def _grade_one(sub: Submission, sources: dict[str, Path], timeout: int, *,
               libdir: Path, limits, sandboxed: bool, uid: int, budget: float,
               cgroups=None, mount: bool = False) -> NotebookGrade:
    from .limits import unmount_work_folder
    from .sandbox import write_new_file

    grade = NotebookGrade(str(sub.path), sub.student, sub.notebook)
    grade.duplicate_of = sub.duplicate_of
    grade.notes.extend(sub.notes)
    if sub.error:
        grade.error = sub.error
        return grade
    started = time.perf_counter()
    try:
        data, _ = read_submission(sub.path)
        code_cells = sub.code if sub.code is not None else parse_notebook(data)[1]
    except ValueError as error:
        grade.error = str(error)
        return grade
    sub.code = None
    import nbformat

    source_nb = nbformat.read(sources[grade.notebook], as_version=4)
    exercises = parse_exercises(source_nb, grade.notebook)
    references = {e.id: e.solution for e in exercises}
    verdicts: dict[str, tuple[bool, str, str | None]] = {}
    graded_at: dict[str, int] = {}
    base = Path(tempfile.mkdtemp(prefix="course-grade-"))
    mounted = False
    run = None
    stopped = None
    try:
        workdir, mounted = _work_folder(base, limits, sandboxed, uid, mount)
        write_new_file(workdir / sub.path.name, data)  # the student's copy, in their private folder
        del data
        rundir = base / "run"
        rundir.mkdir(mode=0o700)
        run = _Run(grade, workdir, rundir, libdir, limits, sandboxed, uid, timeout, budget, cgroups)
        for number, source in enumerate(code_cells, start=1):
            if run.left() <= 0:
                stopped = f"the notebook's time budget of {budget:.0f} s ran out before code cell {number}"
                break
            problem = run.ensure_kernel()
            if problem:
                stopped = f"{problem} (before code cell {number})"
                break
            exercise = exercise_in(source)
            exercise = exercise if exercise in references else None
            if exercise in graded_at:
                grade.notes.append(f"code cell {number} carries the header of exercise {exercise} again: "
                                   f"it ran as a plain cell; the exercise is graded from code cell "
                                   f"{graded_at[exercise]} only")
                exercise = None
            result = run.run_cell(source)
            if exercise is None:
                if result.status in ("timeout", "flood", "died"):
                    grade.notes.append(f"code cell {number}: {status_text(result, run.limit(), not run.tainted)}; "
                                       "graded on in a fresh kernel, without this cell")
                    continue
                if result.status == "error":  # later exercises may fail because of it
                    grade.notes.append(f"code cell {number}: {status_text(result, run.limit(), not run.tainted)}")
                run.replay.append((source, False))
                continue
            graded_at[exercise] = number
            status = None
            if result.status == "ok":
                verdict = run.capture(exercise)
                passed, feedback = verdict.passed, verdict.feedback
                status = NEEDS_BROWSER if verdict.needs_browser else None
            elif result.status == "error" and result.ename == "NotImplementedError":
                passed, feedback = False, f"{NOT_ATTEMPTED}: the cell still raises NotImplementedError"
            elif result.status == "timeout":
                passed, feedback = False, f"{status_text(result, run.limit(), not run.tainted)} (an endless loop?)"
            else:
                passed, feedback = False, status_text(result, run.limit(), not run.tainted)
            verdicts[exercise] = (passed, feedback, status)
            if passed or status == NEEDS_BROWSER:  # not the answer's fault: the kernel keeps it
                run.replay.append((references[exercise], True))
            else:
                # Restore the state later cells expect, after the answer was captured.
                run.run_reference(references[exercise])
    except Exception as error:  # the sandbox itself failed: this submission only
        from .sandbox import SandboxError

        if isinstance(error, SandboxError):
            grade.error = str(error)
        else:
            log.error("grading %s failed: %s", safe_text(sub.path), safe_text(repr(error), 300))
            log.debug("the grader's traceback", exc_info=True)
            grade.error = f"the grader failed on this notebook ({type(error).__name__}: {excerpt(str(error))})"
    finally:
        if run is not None:
            run.close()
        if mounted:
            unmount_work_folder(base)
        shutil.rmtree(base, ignore_errors=True)
    if grade.error:
        return grade
    for exercise in exercises:
        passed, feedback, status = verdicts.get(exercise.id, (False, None, None))
        if feedback is None:
            feedback = (f"not graded: {stopped}" if stopped else
                        f"{NOT_ATTEMPTED}: no cell for this exercise was found or run")
        grade.exercises.append(ExerciseGrade(exercise.id, exercise.points if passed else 0,
                                             exercise.points, passed, feedback, status or ""))
    waiting = [e.exercise for e in grade.exercises if e.status == NEEDS_BROWSER]
    if waiting:
        grade.notes.append(f"exercise(s) {', '.join(waiting)} {NEEDS_BROWSER}: no browser could be "
                           "driven on the grading machine; their points are not counted yet: grade "
                           "again where Chromium runs (make setup installs what it needs)")
    copied = reference_copy_note(code_cells, source_nb, grade.notebook)  # never changes the score
    if copied:
        grade.notes.append(copied)
    grade.seconds = time.perf_counter() - started
    return grade


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
        memory_mb: memory of the whole sandbox (a cgroup, where there is one) and the
            address-space limit of each process in it.

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
    from .isolated import start_server
    from .limits import claim_uid, find_cgroups

    start_server()  # before any thread: each child is a fork of a clean server
    sources = {p.stem: p for p in source_notebooks(root)}
    jobs = max(1, jobs)
    subs = fold_hard_links(find_submissions(paths), sources)
    kept = CodeBudget()
    _map(lambda sub: prepare_submission(sub, sources, kept), subs, jobs)
    mark_duplicates(subs)
    mark_collisions(subs)
    selected = select_shard(subs, shard)
    limits = KernelLimits(memory_bytes=memory_mb * 2**20, cpus=max(1, (os.cpu_count() or 1) // jobs))
    as_root = sandbox and os.geteuid() == 0
    cgroups = None
    if sandbox:
        cgroups, line = find_cgroups(f"course-grade-{os.getpid()}", jobs)
        (log.info if cgroups else log.warning)("%s", line)
        if as_root and not _can_mount():
            log.warning("work folders: no tmpfs could be mounted; a notebook may fill the disk")
    uid_locks = []
    slots, lock = [], threading.Lock()
    try:
        for slot in range(jobs):
            if as_root:
                uid, fd = claim_uid(os.getpid() * jobs + slot)
                uid_locks.append(fd)
                slots.append(uid)
            else:
                slots.append(61000 + slot)
    except OSError as error:
        for fd in uid_locks:
            os.close(fd)
        raise CourseError(f"no sandbox uid could be claimed ({error}); is another grader "
                          "using all of them?") from None
    libtop = Path(tempfile.mkdtemp(prefix="course-lib-"))
    os.chmod(libtop, 0o755)
    libdir = copy_library(libtop)

    def grade(numbered):
        _, sub = numbered
        with lock:
            uid = slots.pop()
        try:
            log.info("grading %s", safe_text(sub.path))
            return _grade_one(sub, sources, timeout, libdir=libdir, limits=limits, sandboxed=sandbox,
                              uid=uid, budget=budget, cgroups=cgroups, mount=as_root)
        finally:
            with lock:
                slots.append(uid)

    try:
        grades = _map(grade, selected, jobs)
    finally:
        shutil.rmtree(libtop, ignore_errors=True)
        if cgroups is not None:
            cgroups.remove()
        for fd in uid_locks:
            os.close(fd)
    rows = payload(grades, [i for i, _ in selected] if shard else None)
    write_results(rows, json_path, csv_path)
    return grades


def _map(fn, items, jobs: int) -> list:
    if jobs > 1 and len(items) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=jobs) as pool:  # the kernels and children do the work
            return list(pool.map(fn, items))
    return [fn(item) for item in items]


_MOUNT_OK: list[bool] = []


def _can_mount() -> bool:
    """Whether a tmpfs can be mounted here (tried once)."""
    if not _MOUNT_OK:
        from .limits import mount_work_folder, unmount_work_folder

        probe = Path(tempfile.mkdtemp(prefix="course-mount-"))
        ok = mount_work_folder(probe, 2**20)
        if ok:
            unmount_work_folder(probe)
        probe.rmdir()
        _MOUNT_OK.append(ok)
    return _MOUNT_OK[0]


def points_table(root: Path = ROOT) -> str:
    """Every exercise with its points, as declared in ``notebooks/``."""
    import nbformat

    rows = []
    for path in source_notebooks(root):
        rows += [[e.id, e.points, e.task] for e in parse_exercises(nbformat.read(path, as_version=4), path.stem)]
    lines = format_table(["exercise", "points", "task"], rows, align="<><", widths=[9, 6, 0], gap="  ")
    lines.append(f"{'total':<9}  {sum(points for _, points, _ in rows):>6}")
    return "\n".join(lines)


def _check_paths(args, csv_path) -> None:
    """Every path of the command, before any grading: the submissions and parts it reads, and
    outputs that are none of them and lie outside the submissions folders."""
    from ..paths import PathPlan, check_name

    plan = PathPlan()
    for part in args.merge or []:
        plan.input_file(part, "--merge part", missing_hint="give the JSON files that "
                        "grade --shard K/N --json wrote")
    for raw in args.paths:
        path = check_name(raw, "read")
        if os.path.isdir(path) and not os.path.islink(path):
            plan.input_folder(path, "submissions folder")
        elif os.path.lexists(path):  # a link, a pipe...: the grader reports it, never opens it
            plan.add_input(path, "submission")
        else:
            raise MissingFileError(f"{raw} does not exist; give notebook files or a folder of them")
    if args.json:
        plan.output_file(args.json, "--json")
    if csv_path:
        plan.output_file(csv_path, "--csv" if args.csv else "the default --csv grades.csv")
    if args.feedback:
        plan.output_folder(args.feedback, "--feedback folder")
    if args.report:
        from .report import REPORT_FILES

        plan.output_folder(args.report, "--report folder", files=REPORT_FILES)


def _run_cli(args) -> int:
    if args.list:
        print(points_table())
        return 0
    if args.merge:
        if not (args.json or args.csv):
            raise InvalidArgumentError("--merge needs --json OUT and/or --csv OUT")
        _check_paths(args, args.csv)
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
    if csv_path is None and any(os.path.isdir(p) for p in args.paths) and not args.shard:
        csv_path = "grades.csv"
    _check_paths(args, csv_path)
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


#: The most notebooks graded at once: more only makes the sandboxes wait for cores.
_MAX_JOBS = 4 * (os.cpu_count() or 1)


def _shard(text: str) -> str:
    """``--shard``'s argparse type: K/N with 1 <= K <= N <= 10000 (see results.select_shard)."""
    from ..options import OptionError

    k, sep, n = str(text).partition("/")
    try:
        good = sep and 1 <= int(k) <= int(n) <= 10000
    except ValueError:
        good = False
    if not good:
        raise OptionError(f"--shard must be K/N with 1 <= K <= N <= 10000, e.g. 1/4, got "
                          f"{str(text)[:40]!r}")
    return f"{int(k)}/{int(n)}"


def add_cli(subparsers) -> None:
    """Register ``grade``."""
    parser = subparsers.add_parser("grade", help="grade student notebooks, each in a sandbox")
    parser.add_argument("paths", type=path_arg("PATHS"),
                        nargs="*", help="notebook files or folders of them")
    parser.add_argument("--json", type=path_arg("--json"),
                        metavar="OUT", help="write every exercise's result as JSON")
    parser.add_argument("--csv", type=path_arg("--csv"),
                        metavar="OUT", help="write one row per student and exercise "
                        "(default grades.csv when a folder is given)")
    add_number(parser, "--timeout", low=1, high=86400, default=120, metavar="S",
               help="seconds one cell may run")
    add_number(parser, "--budget", kind=float, low=1, high=7 * 86400, default=3600, metavar="S",
               help="seconds per notebook in all, restarts included")
    add_number(parser, "--jobs", low=1, high=_MAX_JOBS, default=1, metavar="N",
               note="4 per logical CPU of this machine",
               help="grade N notebooks at a time (best: at most one per CPU core)")
    add_number(parser, "--memory-mb", low=1024, high=2**20, default=8192, metavar="MB",
               help="memory of each sandbox as a whole (with cgroups) and of each process in it "
                    "(a kernel with torch needs some GiB)")
    parser.add_argument("--shard", metavar="K/N", type=_shard,
                        help="grade only the K-th of N shares of the submissions (with --json; "
                             "combine the parts with --merge); 1 <= K <= N <= 10000")
    parser.add_argument("--merge", type=path_arg("--merge"), nargs="+", metavar="PART",
                        help="combine the JSON parts of --shard runs into --json/--csv")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="run kernels without bubblewrap: ONLY for trusted notebooks (e.g. macOS)")
    parser.add_argument("--list", action="store_true", help="print every exercise and its points")
    parser.add_argument("--feedback", type=path_arg("--feedback"),
                        metavar="DIR", help="write each student's feedback pages (HTML, Markdown)")
    parser.add_argument("--report", type=path_arg("--report"),
                        metavar="DIR", help="write the class report (report.html, plots, CSV)")
    parser.set_defaults(func=_run_cli)
