"""Single source, two builds: ``notebooks/`` -> ``exercises/`` and ``solutions/``.

Covers: parsing nbgrader's solution markers and the exercise headers, writing
the student build (regions replaced by ``raise NotImplementedError``, outputs
cleared) and the instructor build (markers removed, executed, outputs stored),
and ``--check`` for stale builds. Does not cover: grading (``grading/``).

An exercise cell looks like::

    # Exercise 02.1 (2 points): export resnet18 with a dynamic batch; store the path in `onnx_path`
    ### BEGIN SOLUTION
    onnx_path = ...
    ### END SOLUTION
    check("02.1", onnx_path)
"""
from __future__ import annotations

import copy
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .datafiles import read_notebook
from .exercise_headers import exercise_header, exercise_in, headers_in
from .errors import CourseError, InvalidArgumentError, MissingFileError

__all__ = ["build_notebooks", "parse_exercises", "read_source_notebook", "solution_code", "Exercise",
           "MarkerError", "SourceNotebookError", "NotebookExecutionError"]

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


def execute_notebook(nb, cwd: Path, timeout: int = 600, name: str = "notebook"):
    """Execute ``nb`` in place with a fresh kernel whose working directory is ``cwd``.

    Raises:
        NotebookExecutionError: a cell raised, timed out or killed the kernel; the
            message names the notebook, the cell number and the error.
    """
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient import NotebookClient
    from nbclient.exceptions import CellControlSignal, CellExecutionError, DeadKernelError

    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": str(cwd)}}).execute()
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
    return nb


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
    import json

    import nbformat

    if keep_outputs:
        return nbformat.writes(nb)
    cells = [(c.cell_type, c.source, c.metadata.get("course_utils")) for c in nb.cells]
    return json.dumps([cells, nb.metadata.get("course_utils")])


def _write_atomic(nb, path: Path) -> None:
    import nbformat

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".ipynb")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            nbformat.write(nb, handle)
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
    """Build (or with ``check=True`` compare) exercises/ and solutions/.

    Returns:
        With ``check=True``, the relative paths of stale or missing builds;
        otherwise the paths written.

    Example:
        >>> stale = build_notebooks(check=True)  # doctest: +SKIP
    """
    import nbformat

    results = []
    sources = source_notebooks(root, only)
    read = {}
    for path in sources:  # validate every source before writing anything
        read[path] = read_source_notebook(path)
        _check_exercise_set(root, path, parse_exercises(read[path], path.stem))
    for path in sources:
        source_nb = read[path]
        exercise_nb = make_exercise_notebook(source_nb, path.stem)
        solution_nb = make_solution_notebook(source_nb, path.stem)
        targets = {"exercises": (exercise_nb, True), "solutions": (solution_nb, False)}
        if check:
            for folder, (expected, keep_outputs) in targets.items():
                relative = f"{folder}/{path.name}"
                current = _read_build(root / folder / path.name)
                if current is None or (_comparable(current, keep_outputs)
                                       != _comparable(expected, keep_outputs)):
                    results.append(relative)
                elif folder == "solutions" and _unexecuted(current):
                    results.append(relative)
            continue
        if execute:  # first, so that a failing cell leaves both builds of this notebook as they were
            folder = root / "solutions"
            created = not folder.exists()
            folder.mkdir(parents=True, exist_ok=True)  # the kernel's working directory
            started = time.perf_counter()
            try:
                execute_notebook(solution_nb, folder, name=path.stem)
            except CourseError:
                if created and not any(folder.iterdir()):
                    folder.rmdir()
                raise
            print(f"executed solutions/{path.name} in {time.perf_counter() - started:.1f} s")
        for folder, (expected, _) in targets.items():
            _write_atomic(expected, root / folder / path.name)
            results.append(f"{folder}/{path.name}")
    return results


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
        print("exercises/ and solutions/ are up to date with notebooks/")
        return 0
    print(f"wrote {len(results)} notebooks")
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
