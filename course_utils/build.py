"""Single source, two builds: ``notebooks/`` -> ``exercises/`` and ``solutions/``.

Covers: parsing nbgrader's solution markers and the exercise headers, writing
the student build (regions replaced by ``raise NotImplementedError``, outputs
cleared) and the instructor build (markers removed, executed, outputs stored,
with each cell's run time and the machine recorded in its metadata), the derived
parts of the sources and the README (each notebook's time line, from
``sittings.py``; the README's tables, from ``readme_tables.py``), and ``--check``
for stale builds. Files are written with the modes the umask gives. Does not
cover: grading (``grading/``).

An exercise cell looks like::

    # Exercise 02.1 (2 points): export resnet18 with a dynamic batch; store the path in `onnx_path`
    ### BEGIN SOLUTION
    onnx_path = ...
    ### END SOLUTION
    check("02.1", onnx_path)
"""
from __future__ import annotations

import copy
import json
import os
import re
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .datafiles import read_notebook
from .exercise_headers import exercise_header, exercise_in, headers_in
from .errors import CourseError, InvalidArgumentError, MissingFileError
from .readme_tables import NotebookEntry, fill_regions, notebook_table, points_table, what_you_do
from .sittings import MAX_SITTING_MINUTES, check_sittings, set_time_lines, sitting_times

__all__ = ["build_notebooks", "parse_exercises", "read_source_notebook", "solution_code", "Exercise",
           "recorded_run", "build_machines", "new_file_modes", "MarkerError", "SourceNotebookError",
           "NotebookExecutionError"]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
_MARKDOWN_PLACEHOLDER = "YOUR ANSWER HERE"
#: Added to the first cell of every student notebook: Run All stops at the first
#: unsolved exercise, and the cells below it (setup for later steps) stay unrun.
RUN_ALL_NOTE = ("> **Run All stops at the first exercise you have not solved** (its `NotImplementedError` "
                "is expected): solve it, then click its cell and choose *Run → Run Selected Cell and "
                "All Below* to go on.")
ROOT = Path(__file__).resolve().parent.parent


class MarkerError(CourseError, ValueError):
    """A solution region or exercise header that the build cannot use."""


class SourceNotebookError(CourseError, ValueError):
    """A file in ``notebooks/`` that is not a course notebook (not JSON, not nbformat 4...)."""


class NotebookExecutionError(CourseError, RuntimeError):
    """A cell of a source notebook failed while its solutions were executed: the author's to fix."""


#: Larger source notebooks are refused unread (the course's are under 1 MB; outputs are cleared).
MAX_NOTEBOOK_BYTES = 32 * 2**20


@dataclass(frozen=True)
class Exercise:
    """One exercise as declared in a source notebook."""

    id: str
    points: int
    task: str
    cell_index: int
    solution: str  # the whole cell source with markers removed (the reference)


def _split_regions(source: str, where: str):
    """Yield ('text'|'solution', lines) chunks; refuse unclosed or nested markers."""
    chunks, current, inside, begin_line = [], [], False, 0
    for number, line in enumerate(source.splitlines(), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise MarkerError(f"{where}: nested '{BEGIN}' on line {number} (the region "
                                  f"opened on line {begin_line} is not closed); close it first")
            chunks.append(("text", current))
            current, inside, begin_line = [line], True, number
        elif marker == END:
            if not inside:
                raise MarkerError(f"{where}: '{END}' on line {number} without a "
                                  f"'{BEGIN}' before it; add the opening marker")
            current.append(line)
            chunks.append(("solution", current))
            current, inside = [], False
        else:
            current.append(line)
    if inside:
        raise MarkerError(f"{where}: '{BEGIN}' on line {begin_line} is never closed; "
                          f"add '{END}' after the solution")
    chunks.append(("text", current))
    return [(kind, lines) for kind, lines in chunks if lines or kind == "solution"]


def solution_code(source: str, where: str = "cell") -> str:
    """The lines inside a cell's solution markers (the reference answer itself), markers left out."""
    return "\n".join(line for kind, lines in _split_regions(source, where) if kind == "solution"
                     for line in lines[1:-1])


def _strip_markers(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if line.strip() not in (BEGIN, END))


def parse_exercises(notebook, name: str = "notebook") -> list[Exercise]:
    """Return the exercises of a source notebook, validating every marker.

    Raises:
        MarkerError: unclosed or nested markers, a code region without an
            ``# Exercise NN.M (P points): ...`` header, or a duplicate id; the
            message names the notebook and the cell.
    """
    exercises, seen = [], {}
    number = name[:2]
    for index, cell in enumerate(notebook.cells):
        where = f"{name}, cell {index + 1}"
        chunks = _split_regions(cell.source, where)
        regions = [lines for kind, lines in chunks if kind == "solution"]
        if not regions or cell.cell_type != "code":
            continue
        headers = headers_in(cell.source)
        if len(headers) != 1:
            found = "no" if not headers else f"{len(headers)}"
            raise MarkerError(f"{where}: a solution region needs exactly one header line "
                              f"'# Exercise NN.M (P points): what to do' ({found} found)")
        exercise_id, points, task = headers[0]
        if number.isdigit() and not exercise_id.startswith(number + "."):
            raise MarkerError(f"{where}: exercise {exercise_id} does not belong to notebook "
                              f"{number}; number it {number}.M")
        if exercise_id in seen:
            raise MarkerError(f"{where}: exercise {exercise_id} is declared again "
                              f"(first in cell {seen[exercise_id] + 1}); give it a new number")
        seen[exercise_id] = index
        exercises.append(Exercise(exercise_id, int(points), task, index,
                                  _strip_markers(cell.source)))
    return exercises


def _exercise_cell_source(source: str, where: str) -> str:
    header = next(iter(headers_in(source)), None)
    out = []
    for kind, lines in _split_regions(source, where):
        if kind == "text":
            out.extend(lines)
            continue
        indent = lines[0][: len(lines[0]) - len(lines[0].lstrip())]
        if header is None:  # markdown answer
            out.append(indent + _MARKDOWN_PLACEHOLDER)
        else:
            exercise_id, _, task = header
            message = f"Exercise {exercise_id}: {task}".replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'{indent}raise NotImplementedError("{message}")')
    return "\n".join(out)


#: nbval's cell markers (``# NBVAL_IGNORE_OUTPUT``...): for the solutions' test run only,
#: noise in a student's cell, so the exercise build drops those lines.
_NBVAL_MARKER = re.compile(r"^\s*#\s*NBVAL_[A-Z_]+\s*$")


def _drop_nbval_markers(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if not _NBVAL_MARKER.match(line))


def make_exercise_notebook(source_nb, name: str):
    """Return the student build of a source notebook (outputs cleared, nbval markers dropped)."""
    nb = copy.deepcopy(source_nb)
    ids = {e.cell_index: e for e in parse_exercises(source_nb, name)}
    for index, cell in enumerate(nb.cells):
        cell.source = _exercise_cell_source(cell.source, f"{name}, cell {index + 1}")
        if cell.cell_type == "code":
            cell.source = _drop_nbval_markers(cell.source)
        _mark_cell(cell, ids.get(index))
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    _add_run_all_note(nb, has_answer=bool(source_nb.cells) and BEGIN in source_nb.cells[0].source)
    _mark_notebook(nb, name)
    return nb


def _add_run_all_note(nb, has_answer: bool) -> None:
    # Appended to the title cell rather than put in a cell of its own, so that
    # cell numbers stay the same in notebooks/, exercises/ and solutions/.
    first = nb.cells[0] if nb.cells else None
    if first is not None and first.cell_type == "markdown" and not has_answer:
        first.source = first.source.rstrip("\n") + "\n\n" + RUN_ALL_NOTE
    else:  # no title cell to carry it
        import nbformat

        nb.cells.insert(0, nbformat.v4.new_markdown_cell(RUN_ALL_NOTE, id="run-all-note"))


def make_solution_notebook(source_nb, name: str):
    """Return the instructor build of a source notebook, not yet executed."""
    nb = copy.deepcopy(source_nb)
    ids = {e.cell_index: e for e in parse_exercises(source_nb, name)}
    for index, cell in enumerate(nb.cells):
        cell.source = _strip_markers(cell.source)
        _mark_cell(cell, ids.get(index))
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    _mark_notebook(nb, name)
    return nb


def _mark_cell(cell, exercise: Exercise | None) -> None:
    cell.metadata.pop("course_utils", None)
    if exercise is not None:
        cell.metadata["course_utils"] = {"exercise": exercise.id, "points": exercise.points}


def _mark_notebook(nb, name: str) -> None:
    nb.metadata["course_utils"] = {"notebook": name}


def execute_notebook(nb, cwd: Path, timeout: int = 600, name: str = "notebook", record: bool = False):
    """Execute ``nb`` in place with a fresh kernel whose working directory is ``cwd``.

    Args:
        record: store the run in ``nb.metadata["course_utils"]["run"]``: the machine
            (``hardware.machine_record``) and each cell's run time in seconds
            (``cell_seconds``, None for markdown cells), which the time rule reads.

    Raises:
        NotebookExecutionError: a cell raised, timed out or killed the kernel; the
            message names the notebook, the cell number and the error.
    """
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient import NotebookClient
    from nbclient.exceptions import CellControlSignal, CellExecutionError, DeadKernelError

    seconds: list = [None] * len(nb.cells)
    started: dict = {}

    def on_start(cell, cell_index):
        started[cell_index] = time.perf_counter()

    def on_executed(cell, cell_index, execute_reply):
        seconds[cell_index] = round(time.perf_counter() - started.pop(cell_index), 2)

    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": str(cwd)}}, on_cell_start=on_start,
                       on_cell_executed=on_executed).execute()
    except NoSuchKernel:
        raise NotebookExecutionError(
            f"{name}: no 'python3' Jupyter kernel to execute it with; install one in this "
            "environment (python -m pip install ipykernel, or make setup)") from None
    except (CellExecutionError, CellControlSignal, DeadKernelError, TimeoutError) as error:
        if isinstance(error, CellExecutionError):
            lines = (error.evalue or "").strip().splitlines()
            what = f"{error.ename}: {lines[0][:300]}" if lines else error.ename
        elif isinstance(error, DeadKernelError):
            what = "the kernel died (out of memory, or a crash in native code)"
        else:
            what = f"it ran past the {timeout} s cell timeout"
        raise NotebookExecutionError(
            f"{name}, cell {_failed_cell(nb)}: {what}. The notebook's own code failed while "
            f"its solutions were executed (nothing was written for {name}): fix that cell in "
            f"notebooks/{name}.ipynb and build again") from None
    if record:
        from .hardware import machine_record

        nb.metadata.setdefault("course_utils", {})["run"] = {"machine": machine_record(),
                                                            "cell_seconds": seconds}
    return nb


def recorded_run(nb) -> dict | None:
    """The run an executed ``solutions/`` notebook records (``machine``, ``cell_seconds``), or None."""
    run = (nb.metadata.get("course_utils") or {}).get("run") if nb is not None else None
    if not isinstance(run, dict) or not isinstance(run.get("cell_seconds"), list):
        return None
    return run


def _failed_cell(nb) -> str:
    """The 1-based number of the cell that holds an error output, or of the last one run."""
    last = None
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if any(output.get("output_type") == "error" for output in cell.get("outputs", [])):
            return str(index + 1)
        if cell.get("execution_count") is not None:
            last = index
    return str(last + 2) if last is not None else "?"  # the one after the last that finished


def read_source_notebook(path: Path):
    """Read and validate one source notebook (a regular file, nbformat 4, a Python kernel).

    Raises:
        SourceNotebookError: the file is a folder, too large, not JSON, not a valid
            nbformat 4 notebook or not for a Python kernel; the message names it.
    """
    where = f"notebooks/{path.name}"
    if not path.is_file():
        raise SourceNotebookError(f"{where} is not a regular file (a folder, a pipe, a broken "
                                  "link?); move it out of notebooks/, whose NN-*.ipynb entries "
                                  "must all be course notebooks")
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        raise SourceNotebookError(f"{where} has {path.stat().st_size:,} bytes, more than a "
                                  "source notebook should (outputs are not kept in notebooks/); "
                                  "clear its outputs and save it again")
    try:
        nb = read_notebook(path, "source notebook", max_bytes=MAX_NOTEBOOK_BYTES, where=where,
                           next_step="restore it from git (git checkout -- notebooks/) or save "
                                     "it again from JupyterLab")
    except CourseError as error:  # the same words, as the build's own kind of error
        raise SourceNotebookError(str(error)) from None
    kernelspec = nb.metadata.get("kernelspec")
    language = kernelspec.get("language") if isinstance(kernelspec, dict) else None
    if language != "python":
        raise SourceNotebookError(f"{where} is not a Python notebook (kernelspec language "
                                  f"{language!r}); open it in JupyterLab with the Python 3 "
                                  "kernel and save it")
    if not nb.cells:
        raise SourceNotebookError(f"{where} has no cells; restore it from git")
    if "course_utils" in nb.metadata:  # written by _mark_notebook: a build, not a source
        raise SourceNotebookError(f"{where} is a built notebook (it carries the build's "
                                  "course_utils metadata), a copy of exercises/ or solutions/, "
                                  "not a source with its solution regions; restore it from git")
    return nb


def _check_exercise_set(root: Path, path: Path, exercises: list[Exercise]) -> None:
    """Refuse a source that lost or changed exercises its current build has, unless declared."""
    import nbformat

    target = root / "exercises" / path.name
    if not target.is_file():
        return  # a new notebook: nothing to compare with
    try:
        built = [c.metadata["course_utils"]["exercise"]
                 for c in nbformat.read(target, as_version=4).cells
                 if "exercise" in c.metadata.get("course_utils", {})]
    except (OSError, ValueError, KeyError, TypeError, AttributeError, nbformat.ValidationError):
        return  # an unreadable build is replaced anyway
    found = [e.id for e in exercises]
    if sorted(found) == sorted(built):
        return
    from .checks import known_exercises

    declared = [e for e in known_exercises() if e.startswith(path.name[:2] + ".")]
    if sorted(found) == declared:
        return  # the check modules already declare the new set: an intended change
    raise SourceNotebookError(
        f"notebooks/{path.name} declares exercises {found or 'none'}, but its current build "
        f"exercises/{path.name} has {built} and the check modules declare {declared or 'none'}; "
        "is this the right file? Restore it from git, or, if the change is meant, declare the "
        "new exercises' answers and checks in course_utils/exercise_checks/ first")


def _comparable(nb, keep_outputs: bool) -> str:
    """What must match between a committed build and a fresh one.

    Exercises are compared whole. Executed solutions are compared on what the
    build decides (cells, sources, course metadata); the kernel adds its own
    metadata and outputs on execution.
    """
    import nbformat

    if keep_outputs:
        return nbformat.writes(nb)
    cells = [(c.cell_type, c.source, c.metadata.get("course_utils")) for c in nb.cells]
    decided = {k: v for k, v in (nb.metadata.get("course_utils") or {}).items() if k != "run"}
    return json.dumps([cells, decided])


def new_file_modes() -> tuple[int, int]:
    """The modes this process's umask gives new files and folders: (0o666 & ~umask, 0o777 & ~umask).

    Example:
        >>> file_mode, folder_mode = new_file_modes()  # 0o644, 0o755 with the usual umask 022
    """
    mask = None
    try:  # Linux says it without changing it (os.umask would, for a moment, in every thread)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                mask = int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        mask = None
    if mask is None:
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask, 0o777 & ~mask


def _write_atomic(content, path: Path, mode: int | None = None) -> None:
    """Write a notebook (or text) to ``path`` atomically, with ``mode`` (default: the umask's)."""
    import nbformat

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix)
    try:
        os.fchmod(fd, new_file_modes()[0] if mode is None else mode)  # mkstemp makes it 0600
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if isinstance(content, str):
                handle.write(content)
            else:
                nbformat.write(content, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def source_notebooks(root: Path = ROOT, only: list[str] | None = None) -> list[Path]:
    """The source notebooks, sorted, optionally only those whose names start with ``only``."""
    if not (root / "notebooks").is_dir():
        raise MissingFileError(f"{root} has no notebooks/ folder; run this in the course "
                               "repository (a student release has no source notebooks)")
    paths = sorted((root / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.name.startswith(o) for o in only)]
        if not paths:
            raise InvalidArgumentError(f"no notebook in notebooks/ starts with {only}; "
                             "give a number such as 02")
    return paths


def build_notebooks(root: Path = ROOT, only: list[str] | None = None, check: bool = False,
                    execute: bool = True) -> list[str]:
    """Build (or with ``check=True`` compare) exercises/ and solutions/, the time lines, the README.

    Executing the solutions records each cell's run time and the machine in the
    solutions notebook's metadata; from them and the student notebook, each
    notebook's time (``sittings.py``) is written into its source's time lines and
    into the README's tables (``readme_tables.py``), which are rewritten from
    every notebook on each build.

    Returns:
        With ``check=True``, the relative paths of stale or missing files (builds,
        sources whose time line is stale, ``README.md``); otherwise the paths written.

    Raises:
        SittingTooLongError: a part of a notebook takes more than a sitting (90 minutes)
            and the notebook is not in ``sittings.NOT_YET_CUT``.

    Example:
        >>> stale = build_notebooks(check=True)  # doctest: +SKIP
    """
    results = []
    sources = source_notebooks(root, only)
    every = source_notebooks(root)
    readme_path = root / "README.md"
    readme = readme_path.read_text(encoding="utf-8") if readme_path.is_file() else None
    read, seconds = {}, {}
    for path in every:  # validate every source before writing anything
        if path in sources or readme is not None:
            read[path] = read_source_notebook(path)
            exercises = parse_exercises(read[path], path.stem)
            seconds[path] = _recorded_seconds(root / "solutions" / path.name)
        if path in sources:
            _check_exercise_set(root, path, exercises)
            check_sittings(_times(read[path], path.stem, seconds[path]), path.stem)
    entries = {}
    if readme is not None:  # the README's sources, checked before anything runs
        entries = {p.stem: NotebookEntry(p.stem, what_you_do(read[p], p.stem),
                                         _times(read[p], p.stem, seconds[p]),
                                         parse_exercises(read[p], p.stem)) for p in every}
        fill_regions(readme, {"notebook-table": "", "points-table": ""})
    for path in sources:
        source_nb, name = read[path], path.stem
        solution_nb = make_solution_notebook(source_nb, name)
        if execute and not check:  # first, so that a failing cell leaves both builds as they were
            _execute_solutions(solution_nb, root, path)
            seconds[path] = recorded_run(solution_nb)["cell_seconds"]
        times = _times(source_nb, name, seconds[path])
        _say_long(check_sittings(times, name), name, quiet=check)
        updated = copy.deepcopy(source_nb)
        source_changed = set_time_lines(updated, times, name)
        exercise_nb = make_exercise_notebook(updated, name)
        if readme is not None:
            entries[name].times = times
        if check:
            expected = {"exercises": (exercise_nb, True),
                        "solutions": (make_solution_notebook(updated, name), False)}
            results += [f"notebooks/{path.name}"] if source_changed else []
            results += _stale_builds(root, path, expected)
            continue
        set_time_lines(solution_nb, times, name)
        if source_changed:
            _write_atomic(updated, path, mode=stat.S_IMODE(path.stat().st_mode))
            results.append(f"notebooks/{path.name}")
        for folder, nb in (("exercises", exercise_nb), ("solutions", solution_nb)):
            _write_atomic(nb, root / folder / path.name)
            results.append(f"{folder}/{path.name}")
    if readme is not None:
        ordered = [entries[p.stem] for p in every]
        derived = fill_regions(readme, {"notebook-table": notebook_table(ordered),
                                        "points-table": points_table(ordered)})
        if derived != readme:
            if not check:
                _write_atomic(derived, readme_path, mode=stat.S_IMODE(readme_path.stat().st_mode))
            results.append("README.md")
    return results


def _times(source_nb, name: str, cell_seconds):
    return sitting_times(source_nb, make_exercise_notebook(source_nb, name),
                         parse_exercises(source_nb, name), cell_seconds, name)


def _recorded_seconds(path: Path):
    run = recorded_run(_read_build(path))
    return run["cell_seconds"] if run else None


def _execute_solutions(solution_nb, root: Path, path: Path) -> None:
    folder = root / "solutions"
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)  # the kernel's working directory
    started = time.perf_counter()
    try:
        execute_notebook(solution_nb, folder, name=path.stem, record=True)
    except CourseError:
        if created and not any(folder.iterdir()):
            folder.rmdir()
        raise
    print(f"executed solutions/{path.name} in {time.perf_counter() - started:.1f} s")


def _say_long(long, name: str, quiet: bool) -> None:
    if long and not quiet:
        print(f"{name} takes more than one sitting of {MAX_SITTING_MINUTES} minutes ("
              + ", ".join(f"part {t.part.number}: about {t.stated}" for t in long)
              + "); sittings.NOT_YET_CUT lets it pass until it is cut into parts")


def _stale_builds(root: Path, path: Path, expected: dict) -> list[str]:
    stale = []
    for folder, (nb, keep_outputs) in expected.items():
        current = _read_build(root / folder / path.name)
        if current is None or _comparable(current, keep_outputs) != _comparable(nb, keep_outputs):
            stale.append(f"{folder}/{path.name}")
        elif folder == "solutions" and (_unexecuted(current) or recorded_run(current) is None):
            stale.append(f"{folder}/{path.name}")
    return stale


def build_machines(root: Path = ROOT) -> dict[str, list[str]]:
    """Which machine executed each notebook in ``solutions/``: its description -> notebook names.

    A notebook without a recorded run is listed under ``"no recorded run"``. One key
    means one machine built them all, as a release needs (the stored outputs then
    speak of one CPU).
    """
    from .hardware import format_machine

    machines: dict[str, list[str]] = {}
    for path in sorted((root / "solutions").glob("[0-9][0-9]-*.ipynb")):
        run = recorded_run(_read_build(path))
        machine = run.get("machine") if run else None
        key = format_machine(machine) if isinstance(machine, dict) else "no recorded run"
        machines.setdefault(key, []).append(path.stem)
    return machines


def _read_build(target: Path):
    """A committed build, or None when it is missing or unreadable (then it is stale)."""
    import nbformat

    try:
        return nbformat.read(target, as_version=4) if target.is_file() else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, nbformat.ValidationError):
        return None


def _unexecuted(nb) -> bool:
    return any(c.cell_type == "code" and c.source.strip() and c.execution_count is None
               for c in nb.cells)


def _run_cli(args) -> int:
    results = build_notebooks(ROOT, only=args.only, check=args.check, execute=not args.no_execute)
    if args.check:
        if results:
            print("stale builds (run `python -m course_utils build`): " + ", ".join(results))
            return 1
        print("exercises/, solutions/, the time lines and the README are up to date with notebooks/")
        return 0
    print(f"wrote {len(results)} files")
    machines = build_machines(ROOT)
    if len(machines) > 1:
        print(f"note: solutions/ now holds notebooks executed on {len(machines)} machines ("
              + "; ".join(f"{', '.join(names)}: {key.splitlines()[0]}" for key, names in machines.items())
              + "); before a release, rebuild all of them in one run: python -m course_utils build")
    notebooks = sorted({Path(r).name[:2] for r in results if r.endswith(".ipynb")})
    if notebooks:
        print("check each one completely (ALT=1 adds its alternative answers, graded in the sandbox): "
              + "; ".join(f"make check-notebook NB={number}" for number in notebooks))
    return 0


def add_cli(subparsers) -> None:
    """Register ``build``."""
    parser = subparsers.add_parser("build", help="generate exercises/ and solutions/ from notebooks/")
    parser.add_argument("--only", nargs="+", metavar="NN", help="only notebooks starting with NN")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 and name the stale files instead of writing")
    parser.add_argument("--no-execute", action="store_true",
                        help="write solutions without executing them (for quick drafts)")
    parser.set_defaults(func=_run_cli)
