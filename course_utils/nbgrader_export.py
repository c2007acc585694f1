"""The course as an nbgrader course folder, for instructors who grade with nbgrader.

Covers: ``python -m course_utils export-nbgrader OUT/``, which writes
``OUT/nbgrader_config.py`` and one nbgrader assignment per source notebook
(``OUT/source/NN-topic/NN-topic.ipynb``): each exercise cell becomes an
nbgrader "autograded answer" cell (its ``### BEGIN SOLUTION`` region is what
nbgrader clears), followed by one locked "autograder tests" cell worth the
exercise's points, which runs the exercise's public checks and, hidden from
students by nbgrader's ``### BEGIN HIDDEN TESTS`` markers, its hidden checks.
``nbgrader generate_assignment`` and ``nbgrader autograde`` then work on it as
on any nbgrader course. Does not cover: running nbgrader (install it in the
instructors' environment), or the course's own grader (``grading/``), which
runs each notebook in a sandbox; nbgrader runs the student's notebook with the
test cells in the same kernel, so a student who knows Python can forge them.
"""
from __future__ import annotations

import copy
import os
import shutil
import tempfile
from pathlib import Path

from .build import ROOT, new_file_modes, parse_exercises, read_source_notebook, source_notebooks
from .errors import InvalidArgumentError
from .options import path_arg
from .paths import PathPlan
from .release import SHIPPED

__all__ = ["export_nbgrader", "nbgrader_notebook"]

#: nbgrader's cell metadata version (nbgrader 0.6 and later).
SCHEMA_VERSION = 3

_CONFIG = '''\
"""nbgrader configuration written by `python -m course_utils export-nbgrader`."""
c = get_config()  # noqa: F821 (nbgrader's config loader defines it)
# The notebooks import course_utils: run them with the course's Python kernel.
c.ExecutePreprocessor.kernel_name = "python3"
c.ExecutePreprocessor.timeout = 600
'''

_TEST_CELL = '''\
# Exercise {id} ({points}), graded by nbgrader: the public checks, then the hidden ones.
from course_utils.checks import run_checks

_verdict = run_checks("{id}", {variable})
assert _verdict.passed, _verdict.feedback
### BEGIN HIDDEN TESTS
from course_utils.grading import load_hidden_checks

load_hidden_checks()
_verdict = run_checks("{id}", {variable}, include_hidden=True)
assert _verdict.passed, _verdict.feedback
### END HIDDEN TESTS'''


def _grade_id(kind: str, exercise_id: str) -> str:
    return f"{kind}-{exercise_id.replace('.', '-')}"  # nbgrader ids: letters, digits, - and _


def nbgrader_notebook(source_nb, name: str):
    """The nbgrader source version of one course notebook (outputs cleared).

    Raises:
        MarkerError: see :func:`course_utils.build.parse_exercises`.
    """
    import nbformat

    from .answers import answer_spec
    from .checks import load_check_modules

    load_check_modules()
    exercises = {e.cell_index: e for e in parse_exercises(source_nb, name)}
    nb = copy.deepcopy(source_nb)
    cells = []
    for index, cell in enumerate(nb.cells):
        cell.metadata.pop("nbgrader", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
        exercise = exercises.get(index)
        if exercise is None:
            continue
        cell.metadata["nbgrader"] = {"grade": False, "solution": True, "locked": False,
                                     "grade_id": _grade_id("answer", exercise.id),
                                     "schema_version": SCHEMA_VERSION}
        test = nbformat.v4.new_code_cell(
            _TEST_CELL.format(id=exercise.id,
                              points=f"{exercise.points} point{'s' if exercise.points != 1 else ''}",
                              variable=answer_spec(exercise.id).variable),
            id=_grade_id("test", exercise.id))
        test.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True,
                                     "points": exercise.points,
                                     "grade_id": _grade_id("test", exercise.id),
                                     "schema_version": SCHEMA_VERSION}
        cells.append(test)
    nb.cells = cells
    return nb


def export_nbgrader(out, root: Path = ROOT, only: list[str] | None = None) -> list[Path]:
    """Write the course as an nbgrader course folder and return the notebooks written.

    Args:
        out: a folder that does not exist yet, or an empty one.
        root: the course repository (the one holding ``notebooks/``).
        only: only notebooks whose names start with one of these (e.g. ``["00"]``).

    Raises:
        InvalidArgumentError: ``out`` exists and is not an empty folder.
        SourceNotebookError, MarkerError: a source notebook the build would refuse.

    Example:
        >>> export_nbgrader("/tmp/nbgrader-course")  # doctest: +SKIP
    """
    import nbformat

    out, root = Path(out), Path(root)
    if os.path.isfile(out):
        raise InvalidArgumentError(f"{out} already exists and is not an empty folder; give a new "
                                   "folder (nothing is overwritten)")
    plan = PathPlan()
    plan.keep_out_of(root / "notebooks", "the folder of source notebooks this command reads")
    for name in SHIPPED:  # the nbgrader course holds every solution
        if (root / name).is_dir():
            plan.keep_out_of(root / name, "which `release` ships to students (the nbgrader "
                                          "course holds every solution)")
    out = plan.output_folder(out, "nbgrader course folder")
    if out.exists() and any(out.iterdir()):
        raise InvalidArgumentError(f"{out} already exists and is not an empty folder; give a new "
                                   "folder (nothing is overwritten)")
    sources = source_notebooks(Path(root), only)
    converted = [(path, nbgrader_notebook(read_source_notebook(path), path.stem))
                 for path in sources]  # everything is checked before anything is written
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        (staging / "nbgrader_config.py").write_text(_CONFIG, encoding="utf-8")
        written = []
        for path, nb in converted:
            target = staging / "source" / path.stem / path.name
            target.parent.mkdir(parents=True)
            nbformat.write(nb, target)
            written.append(out / target.relative_to(staging))
        os.chmod(staging, new_file_modes()[1])  # mkdtemp made it 0700; the umask decides
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return written


def _run_cli(args) -> int:
    written = export_nbgrader(args.out, root=ROOT, only=args.only)
    print(f"wrote {len(written)} nbgrader assignments to {args.out}/source/; then, in "
          f"{args.out}: nbgrader generate_assignment NN-topic, and nbgrader autograde NN-topic "
          "on the submissions")
    return 0


def add_cli(subparsers) -> None:
    """Register ``export-nbgrader``."""
    parser = subparsers.add_parser(
        "export-nbgrader", help="write the course as an nbgrader course folder (source/ assignments)")
    parser.add_argument("out", type=path_arg("OUT"),
                        help="a new or empty folder for the nbgrader course")
    parser.add_argument("--only", nargs="+", metavar="NN", help="only notebooks starting with NN")
    parser.set_defaults(func=_run_cli)
