"""Tests for the notebooks as a student works through them, with answers of their own.

Does every exercises notebook, solved with answers written differently from the references
(other names inside the cell, ``str`` for ``Path``, other valid API calls), run to its end
through the grader's sandbox with full marks and no failing cell? The alternative answers are
declared beside the hidden checks, in ``Cases(..., alternative=...)`` of
``course_utils/grading/hidden_checks/<topic>.py``: the code replaces the
``raise NotImplementedError(...)`` line of the exercise cell, as a student's typing would, and
the rest of the cell (its ``check(...)`` call included) stays as shipped. That each one exists,
parses and differs from the reference is tested with its topic (``tests/test_checks_<topic>.py``).

Each notebook is graded once, in one batch (two at a time). Its first exercise stays as shipped,
so the same run also shows that an unsolved exercise scores 0 "not attempted" while the cells
after it (which then run on the replayed reference) still work. Plausible *wrong* answers are
tried against the checks in ``tests/test_checks_<topic>.py``, which is much cheaper.
"""
import os

import nbformat
import pytest

from conftest import ROOT
from course_utils.build import exercise_in
from course_utils.grading import grade_notebooks
from course_utils.grading.cases import all_cases

# ALTERNATIVES_ONLY=03,05 limits the run to some notebooks (make check-notebook NB=03 ALT=1 does).
_ONLY = [n for n in os.environ.get("ALTERNATIVES_ONLY", "").split(",") if n]
NOTEBOOKS = sorted(p.stem for p in (ROOT / "exercises").glob("*.ipynb")
                   if not _ONLY or p.stem[:2] in _ONLY)
# Notebooks by how long they run (nbval, seconds, this machine: 04 53, 02 30, 05 27, 03 16, 00 11, 01 8).
LONGEST_FIRST = ["04", "02", "05", "03", "00", "01"]
NOT_ATTEMPTED = "not attempted: the cell still raises NotImplementedError"


def load_alternatives(stem: str) -> dict[str, str]:
    """The alternative answers for one notebook: exercise id -> the code a student typed."""
    return {exercise: cases.alternative for exercise, cases in all_cases().items()
            if cases.notebook == stem[:2] and cases.alternative}


def _exercise_cells(nb) -> list[tuple[str, object]]:
    """(exercise id, cell) of each exercise cell, in notebook order."""
    return [(exercise_in(c.source), c) for c in nb.cells
            if c.cell_type == "code" and exercise_in(c.source)]


def _fill(cell, exercise_id: str, code: str) -> None:
    """Replace the exercise's ``raise NotImplementedError`` line by ``code``, at its indent."""
    lines = cell.source.splitlines()
    marker = f'raise NotImplementedError("Exercise {exercise_id}:'
    index = next((i for i, line in enumerate(lines) if line.strip().startswith(marker)), None)
    if index is None:
        raise AssertionError(f"exercise {exercise_id}: no '{marker}...' line in its cell")
    indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
    typed = [indent + line if line.strip() else line for line in code.strip("\n").splitlines()]
    cell.source = "\n".join(lines[:index] + typed + lines[index + 1:])


@pytest.fixture(scope="module")
def graded_alternatives(tmp_path_factory):
    """Grade each exercises notebook once, solved with the alternative answers, in the sandbox."""
    folder = tmp_path_factory.mktemp("alternative-answers")
    solved = {}
    for stem in NOTEBOOKS:
        nb = nbformat.read(ROOT / "exercises" / f"{stem}.ipynb", as_version=4)
        answers = load_alternatives(stem)
        cells = _exercise_cells(nb)
        solved[stem] = []
        for exercise_id, cell in cells[1:]:  # the first exercise stays as shipped
            if exercise_id in answers:
                _fill(cell, exercise_id, answers[exercise_id])
                solved[stem].append(exercise_id)
        nbformat.write(nb, folder / f"{stem}.ipynb")
    # The longest first (two at a time), so that no long one runs alone at the end.
    order = sorted(NOTEBOOKS, key=lambda stem: (LONGEST_FIRST + [stem[:2]]).index(stem[:2]))
    return grade_notebooks([folder / f"{stem}.ipynb" for stem in order], timeout=300, jobs=2), solved


def test_alternative_answers_carry_each_notebook_to_its_end(graded_alternatives):
    """Do students' own correct answers score full marks through the sandbox, with no later
    cell failing on what they defined, and the unsolved first exercise 0 'not attempted'?"""
    grades, solved = graded_alternatives
    assert sorted(g.notebook for g in grades) == sorted(solved)
    for grade in grades:
        assert grade.error is None and not grade.notes, grade.table()
        first, *rest = grade.exercises
        assert not first.passed and first.feedback == NOT_ATTEMPTED, grade.table()
        assert [e.exercise for e in rest if e.passed] == solved[grade.notebook], grade.table()
        assert all(e.points == e.max_points > 0 for e in rest if e.passed), grade.table()
