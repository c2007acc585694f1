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

Which file is which submission: regular files only (a symbolic link, FIFO or
device is reported, never opened through); the course notebook is the one the
file's name starts with (``00-``) and the one its metadata names, and a file whose
two disagree is reported, not graded. A student (a sub-folder of a folder given)
who hands in one course notebook more than once is graded once: the file named
exactly as the course notebook wins, else the newest (by modification time, then
by path); the others are reported as duplicates of it. Each file given by name is
its own student's (its stem), as before.
"""
from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..build import ROOT, exercise_in, parse_exercises, source_notebooks
from ..errors import CourseError, InvalidArgumentError, MissingFileError
from ..formatting import format_table
from .results import (ExerciseGrade, NotebookGrade, merge_parts, payload, safe_text, select_shard,
                      write_results)
from .verdicts import NOT_ATTEMPTED, excerpt, read_verdict, status_text

__all__ = ["grade_notebooks", "points_table"]

log = logging.getLogger(__name__)

#: Submissions larger than this are refused before they are parsed.
MAX_NOTEBOOK_BYTES = 20 * 2**20
#: A notebook is parsed in a child process with at most this much memory and time.
PARSE_MEMORY_BYTES = 1024 * 2**20
PARSE_SECONDS = 60
_KEEP_PARSED_BYTES = 2**20  # code of a submission kept between identifying and grading it


# ---------------------------------------------------------------- reading a submission

@dataclass
class _Submission:
    path: Path
    student: str
    owner: tuple = ()  # whose work it is, for duplicates: (folder given, student) or the file itself
    error: str | None = None
    notebook: str | None = None
    mtime: float = 0.0
    duplicate_of: str | None = None
    code: list[str] | None = field(default=None, repr=False)


def _read_submission(path: Path) -> tuple[bytes, float]:
    """The file's bytes (a regular file, opened without following a link) and its mtime."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ValueError("it is a symbolic link, not a notebook file; hand in the .ipynb "
                             "file itself") from None
        raise ValueError(f"cannot read the file ({error.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("it is not a regular file (a folder, FIFO or device); hand in the "
                             ".ipynb file itself")
        if info.st_size > MAX_NOTEBOOK_BYTES:
            raise ValueError(f"the file is {info.st_size / 2**20:.0f} MiB, over the "
                             f"{MAX_NOTEBOOK_BYTES // 2**20} MiB limit for a notebook; clear the outputs "
                             "(Edit > Clear Outputs) and submit again")
        chunks, total = [], 0
        while total <= MAX_NOTEBOOK_BYTES:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > MAX_NOTEBOOK_BYTES:
            raise ValueError(f"the file is over the {MAX_NOTEBOOK_BYTES // 2**20} MiB limit for a notebook")
        return b"".join(chunks), info.st_mtime
    finally:
        os.close(fd)


def _parse_in_child(conn, data: bytes):
    """In a limited child: the notebook's claimed course notebook and its code cells' sources."""
    import warnings

    import nbformat

    try:
        with warnings.catch_warnings():  # duplicated cells carry duplicate ids: harmless here
            warnings.simplefilter("ignore")
            nb = nbformat.reads(data.decode("utf-8"), as_version=4)
            nbformat.validate(nb)
    except MemoryError:
        raise
    except Exception as error:  # JSON errors, validation errors, unreadable bytes
        first = str(error).splitlines()[0] if str(error) else "empty"
        return ("unreadable", f"{type(error).__name__}: {excerpt(first)}")
    meta = nb.metadata.get("course_utils", {})
    claim = meta.get("notebook") if isinstance(meta, dict) else None
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    if not all(isinstance(c, str) for c in code):
        return ("unreadable", "a code cell's source is not text")
    return ("ok", claim if isinstance(claim, str) and len(claim) < 200 else None, code)


def _parse(data: bytes, seconds: float = PARSE_SECONDS) -> tuple[str | None, list[str]]:
    from .isolated import ChildFailed, run_limited

    try:
        result = run_limited(_parse_in_child, (data,), seconds=min(PARSE_SECONDS, seconds),
                             memory_bytes=PARSE_MEMORY_BYTES)
    except ChildFailed as why:
        raise ValueError(f"not a readable Jupyter notebook (parsing it {why}); ask for the .ipynb "
                         "file that JupyterLab saved") from None
    if result[0] != "ok":
        raise ValueError(f"not a readable Jupyter notebook ({result[1]}); ask for the .ipynb file "
                         "that JupyterLab saved")
    return result[1], result[2]


def _identify(claim: str | None, path: Path, sources: dict[str, Path]) -> str:
    by_name = [stem for stem in sources if path.name.startswith(stem[:3])]
    by_name = by_name[0] if len(by_name) == 1 else None
    by_content = claim if claim in sources else None
    if by_name and by_content and by_name != by_content:
        raise ValueError(f"its content is course notebook {by_content} (its metadata) but its name "
                         f"says {by_name}; rename the file or hand in the right notebook")
    if by_content or by_name:
        return by_content or by_name
    raise ValueError("cannot tell which course notebook this is: it has no course metadata and "
                     f"its name does not start with one of {sorted(s[:2] for s in sources)}; "
                     "rename it like the exercises notebook it came from")


def _prepare(sub: _Submission, sources: dict[str, Path]) -> None:
    """Read, parse (in a limited child) and identify one submission; errors go on the record."""
    try:
        data, sub.mtime = _read_submission(sub.path)
        claim, code = _parse(data)
        sub.notebook = _identify(claim, sub.path, sources)
    except ValueError as error:
        sub.error = str(error)
        return
    if sum(len(c) for c in code) <= _KEEP_PARSED_BYTES:
        sub.code = code


def _mark_duplicates(subs: list[_Submission]) -> None:
    """One graded file per student and course notebook; the others point to it."""
    groups: dict[tuple[str, str], list[_Submission]] = {}
    for sub in subs:
        if sub.error is None:
            groups.setdefault((sub.owner, sub.notebook), []).append(sub)
    for (_, notebook), group in groups.items():
        if len(group) < 2:
            continue
        # The file named exactly as the course notebook, else the newest, else the first by path.
        winner = min(group, key=lambda s: (s.path.name != f"{notebook}.ipynb", -s.mtime, str(s.path)))
        for sub in group:
            if sub is not winner:
                sub.duplicate_of = str(winner.path)
                sub.code = None
                sub.error = (f"not graded: the same student's notebook {notebook} again; "
                             f"{winner.path.name} is graded instead (the file named exactly as the "
                             "course notebook wins, else the newest)")


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
        self.capture_dir = Path(tempfile.mkdtemp(prefix="course-answers-"))

    def left(self) -> float:
        return self.budget - (time.monotonic() - self.started)

    def limit(self) -> float:
        return max(1.0, min(self.timeout, self.left()))

    def ensure_kernel(self) -> str | None:
        """A live kernel with every earlier cell replayed, or why there is none."""
        if self.kernel is not None and self.kernel.alive():
            return None
        if self.kernel is not None:
            self.kernel.kill()
        self.kernel = self.make(*self.kernel_args)
        self.kernel.start(limit=max(1.0, self.left()))
        self.kernel.run("%matplotlib inline", min(30.0, self.limit()), silent=True)
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

    def close(self):
        if self.kernel is not None:
            self.kernel.kill()
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


def _grade_one(sub: _Submission, sources: dict[str, Path], timeout: int, *,
               libdir: Path, limits, sandboxed: bool, uid: int, budget: float,
               cgroups=None, mount: bool = False) -> NotebookGrade:
    from .limits import unmount_work_folder
    from .sandbox import write_new_file

    grade = NotebookGrade(str(sub.path), sub.student, sub.notebook)
    grade.duplicate_of = sub.duplicate_of
    if sub.error:
        grade.error = sub.error
        return grade
    started = time.perf_counter()
    try:
        data, _ = _read_submission(sub.path)
        code_cells = sub.code if sub.code is not None else _parse(data)[1]
    except ValueError as error:
        grade.error = str(error)
        return grade
    sub.code = None
    import nbformat

    exercises = parse_exercises(nbformat.read(sources[grade.notebook], as_version=4), grade.notebook)
    references = {e.id: e.solution for e in exercises}
    verdicts: dict[str, tuple[bool, str]] = {}
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
                    grade.notes.append(f"code cell {number}: {status_text(result, run.limit())}; "
                                       "graded on in a fresh kernel, without this cell")
                    continue
                if result.status == "error":  # later exercises may fail because of it
                    grade.notes.append(f"code cell {number}: {status_text(result, run.limit())}")
                run.replay.append((source, False))
                continue
            graded_at[exercise] = number
            if result.status == "ok":
                verdict = run.capture(exercise)
                passed, feedback = verdict.passed, verdict.feedback
            elif result.status == "error" and result.ename == "NotImplementedError":
                passed, feedback = False, f"{NOT_ATTEMPTED}: the cell still raises NotImplementedError"
            elif result.status == "timeout":
                passed, feedback = False, f"{status_text(result, run.limit())} (an endless loop?)"
            else:
                passed, feedback = False, status_text(result, run.limit())
            verdicts[exercise] = (passed, feedback)
            if passed:
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
        passed, feedback = verdicts.get(exercise.id, (False, None))
        if feedback is None:
            feedback = (f"not graded: {stopped}" if stopped else
                        f"{NOT_ATTEMPTED}: no cell for this exercise was found or run")
        grade.exercises.append(ExerciseGrade(exercise.id, exercise.points if passed else 0,
                                             exercise.points, passed, feedback))
    grade.seconds = time.perf_counter() - started
    return grade


def _submissions(paths) -> list[_Submission]:
    found = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and not path.is_symlink():
            for folder, dirs, files in os.walk(path, followlinks=False):
                dirs[:] = sorted(d for d in dirs if d != ".ipynb_checkpoints")
                for name in sorted(files):
                    if not name.endswith(".ipynb"):
                        continue
                    nb_path = Path(folder) / name
                    relative = nb_path.relative_to(path)
                    student = relative.parts[0] if len(relative.parts) > 1 else nb_path.stem
                    found.append(_Submission(nb_path, student, (str(path), student)))
        elif os.path.lexists(path):
            found.append(_Submission(path, path.stem, ("file", os.path.abspath(path))))
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
    from . import isolated
    from .limits import claim_uid, find_cgroups

    isolated.start_server()  # before any thread: each child is a fork of a clean server
    sources = {p.stem: p for p in source_notebooks(root)}
    jobs = max(1, jobs)
    subs = _submissions(paths)
    _map(_prepare_all(sources), subs, jobs)
    _mark_duplicates(subs)
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


def _prepare_all(sources):
    return lambda sub: _prepare(sub, sources)


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
        return 1 if any(r["error"] for r in rows) else 0
    if not args.paths:
        raise InvalidArgumentError("give notebook files or folders to grade (or --list for the points table)")
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
    return 1 if failed else 0


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
                        help="memory of each sandbox as a whole (with cgroups) and of each "
                        "process in it (8192)")
    parser.add_argument("--shard", metavar="K/N", help="grade only the K-th of N shares of the "
                        "submissions (with --json; combine the parts with --merge)")
    parser.add_argument("--merge", nargs="+", metavar="PART",
                        help="combine the JSON parts of --shard runs into --json/--csv")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="run kernels without bubblewrap: ONLY for trusted notebooks (e.g. macOS)")
    parser.add_argument("--list", action="store_true", help="print every exercise and its points")
    parser.set_defaults(func=_run_cli)
