"""Tests for course_utils/nbgrader_export.py: the course as an nbgrader course folder.

The last test runs the real nbgrader (generate_assignment, autograde) and is
marked slow; it runs only where an ``nbgrader`` program is found: on the PATH,
or named by the ``NBGRADER`` environment variable (e.g. one installed in a
throwaway venv: ``python3 -m venv /tmp/nbg && /tmp/nbg/bin/pip install
nbgrader``, then ``NBGRADER=/tmp/nbg/bin/nbgrader``). The course's own
environment does not pin nbgrader.
"""
import copy
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_utils.build import (BEGIN, END, parse_exercises, read_source_notebook,
                                source_notebooks)
from course_utils.cli import main
from course_utils.nbgrader_export import export_nbgrader, nbgrader_notebook


@pytest.mark.parametrize("path", source_notebooks(), ids=lambda p: p.stem)
def test_every_exercise_gets_an_answer_cell_and_one_locked_test_cell(path):
    """Is each exercise an autograded answer, followed by a locked test cell worth its points?"""
    source = read_source_notebook(path)
    exercises = parse_exercises(source, path.stem)
    nb = nbgrader_notebook(source, path.stem)
    nbformat.validate(nb)
    marked = [(i, c.metadata["nbgrader"]) for i, c in enumerate(nb.cells) if "nbgrader" in c.metadata]
    assert len(marked) == 2 * len(exercises) and len(nb.cells) == len(source.cells) + len(exercises)
    ids = [meta["grade_id"] for _, meta in marked]
    assert len(set(ids)) == len(ids)
    for exercise, ((a, answer), (t, test)) in zip(exercises, zip(marked[::2], marked[1::2])):
        assert answer["solution"] and not answer["grade"] and t == a + 1
        assert BEGIN in nb.cells[a].source and f"Exercise {exercise.id} " in nb.cells[a].source
        assert test["grade"] and test["locked"] and not test["solution"]
        assert test["points"] == exercise.points and test["schema_version"] == 3
        assert f'run_checks("{exercise.id}"' in nb.cells[t].source
        assert "### BEGIN HIDDEN TESTS" in nb.cells[t].source
        compile(nb.cells[t].source, "test cell", "exec")


def test_export_writes_a_course_folder_and_refuses_a_full_one(tmp_path, capsys):
    """Does export-nbgrader write the config and one assignment per notebook, never overwriting?"""
    out = tmp_path / "nbgrader-course"
    assert main(["export-nbgrader", str(out), "--only", "00", "01"]) == 0
    assert "wrote 2 nbgrader assignments" in capsys.readouterr().out
    assert (out / "nbgrader_config.py").is_file()
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.ipynb")) == [
        "source/00-install-check/00-install-check.ipynb",
        "source/01-execution-providers/01-execution-providers.ipynb"]
    assert main(["export-nbgrader", str(out)]) == 1
    assert capsys.readouterr().err.startswith(f"error: {out} already exists")


def _nbgrader() -> str | None:
    return os.environ.get("NBGRADER") or shutil.which("nbgrader")


@pytest.mark.slow
@pytest.mark.skipif(_nbgrader() is None, reason="nbgrader is not installed (set NBGRADER=...)")
def test_real_nbgrader_gives_full_marks_to_solutions_and_none_to_fresh_exercises(tmp_path):
    """With nbgrader's own generate_assignment and autograde, do solutions score every point and
    fresh exercises none?"""
    course, name = tmp_path / "course", "00-install-check"
    export_nbgrader(course, only=["00"])
    # nbgrader runs the notebooks in the kernel named python3: this environment's Python.
    kernel = tmp_path / "jupyter" / "kernels" / "python3"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (course)", "language": "python"}))
    program = Path(_nbgrader())
    env = dict(os.environ, JUPYTER_PATH=str(tmp_path / "jupyter"),
               PATH=f"{program.parent}{os.pathsep}{os.environ['PATH']}")  # nbgrader runs alembic

    def nbgrader(*args):
        result = subprocess.run([str(program), *args], cwd=course, env=env, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]

    nbgrader("generate_assignment", name)
    released = nbformat.read(course / "release" / name / f"{name}.ipynb", as_version=4)
    source = nbformat.read(course / "source" / name / f"{name}.ipynb", as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    solved = copy.deepcopy(released)
    for cell in solved.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:  # the student types the reference solution
            cell.source = "\n".join(line for line in answers[grade_id].splitlines()
                                    if line.strip() not in (BEGIN, END))
    for student, nb in (("solved", solved), ("fresh", released)):
        (course / "submitted" / student / name).mkdir(parents=True)
        nbformat.write(nb, course / "submitted" / student / name / f"{name}.ipynb")
    nbgrader("autograde", name, "--create")
    nbgrader("export")
    with open(course / "grades.csv", newline="") as handle:
        scores = {row["student_id"]: (float(row["score"]), float(row["max_score"]))
                  for row in csv.DictReader(handle)}
    points = sum(e.points for e in parse_exercises(read_source_notebook(
        next(p for p in source_notebooks() if p.stem == name)), name))
    assert scores == {"solved": (points, points), "fresh": (0.0, points)}
