"""Tests for the notebooks as a student works through them, with answers of their own.

Does every exercises notebook, solved with answers written differently from the references
(other names inside the cell, ``str`` for ``Path``, other valid API calls), run to its end
through the grader's sandbox with full marks and no failing cell? The alternative answers live
in ``tests/alternative_answers/NN.py`` as ``ANSWERS = {"NN.M": "code"}``: the code replaces the
``raise NotImplementedError(...)`` line of the exercise cell, as a student's typing would, and
the rest of the cell (its ``check(...)`` call included) stays as shipped.

Each notebook is graded once, in one batch (two at a time). Its first exercise stays as shipped,
so the same run also shows that an unsolved exercise scores 0 "not attempted" while the cells
after it (which then run on the replayed reference) still work. Plausible *wrong* answers are
tried against the public checks in ``tests/test_checks_<topic>.py``, which is much cheaper.
"""
import ast
import os
import runpy
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT
from course_utils.build import exercise_in, parse_exercises, solution_code
from course_utils.grading import grade_notebooks

ALTERNATIVES = ROOT / "tests" / "alternative_answers"
# ALTERNATIVES_ONLY=03,05 limits the run to some notebooks while one is being written.
_ONLY = [n for n in os.environ.get("ALTERNATIVES_ONLY", "").split(",") if n]
NOTEBOOKS = sorted(p.stem for p in (ROOT / "exercises").glob("*.ipynb")
                   if not _ONLY or p.stem[:2] in _ONLY)
# Notebooks by how long they run (nbval, seconds, this machine: 04 53, 02 30, 05 27, 03 16, 00 11, 01 8).
LONGEST_FIRST = ["04", "02", "05", "03", "00", "01"]
NOT_ATTEMPTED = "not attempted: the cell still raises NotImplementedError"


def load_alternatives(stem: str) -> dict[str, str]:
    """The alternative answers for one notebook: exercise id -> the code a student typed."""
    path = ALTERNATIVES / f"{stem[:2]}.py"
    if not path.is_file():
        return {}
    return dict(runpy.run_path(str(path))["ANSWERS"])


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


def _normalised(code: str) -> str:
    """The code as the AST sees it (no comments, no layout), to tell two answers apart."""
    return ast.dump(ast.parse(code))


def _reference_code(stem: str) -> dict[str, str]:
    """Exercise id -> the reference's solution region, from the source notebook."""
    nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    return {e.id: solution_code(nb.cells[e.cell_index].source) for e in parse_exercises(nb, stem)}


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_every_exercise_has_an_alternative_answer(stem):
    """Does every exercise after the first have an alternative answer that parses as Python?"""
    answers = load_alternatives(stem)
    nb = nbformat.read(ROOT / "exercises" / f"{stem}.ipynb", as_version=4)
    ids = [exercise_id for exercise_id, _ in _exercise_cells(nb)]
    missing = [e for e in ids[1:] if e not in answers]
    assert not missing, f"tests/alternative_answers/{stem[:2]}.py has no answer for {missing}"
    unknown = sorted(set(answers) - set(ids))
    assert not unknown, f"tests/alternative_answers/{stem[:2]}.py answers exercises {stem} lacks: {unknown}"
    for exercise_id, code in answers.items():
        compile(code, f"{stem[:2]}.py:{exercise_id}", "exec")


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_alternative_answers_differ_from_the_references(stem):
    """Is each alternative answer really another way of writing it, not the reference again?"""
    reference = _reference_code(stem)
    for exercise_id, code in load_alternatives(stem).items():
        assert _normalised(code) != _normalised(reference[exercise_id]), (
            f"{exercise_id}: the alternative answer is the reference solution again")


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
