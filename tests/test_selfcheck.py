"""Tests for course_utils/selfcheck.py: the student's check before handing in."""
import hashlib
import shutil
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT
from course_utils.build import parse_exercises
from course_utils.cli import main
from course_utils.selfcheck import HIDDEN_WORDS, selfcheck


def test_solved_notebook_gets_full_public_marks_and_stays_unchanged(tmp_path, capsys, monkeypatch):
    """Does `selfcheck` on a solved notebook give every exercise its points, say the hidden checks come
    after submission, print the grader's table, and leave the file's bytes as they were? (Under a
    temporary folder too long for a socket's path: the kernel listens on 127.0.0.1 instead.)"""
    import tempfile

    long_tmp = tmp_path.parent / f"{tmp_path.name}-{'t' * 90}"
    long_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(long_tmp))
    path = tmp_path / "01-execution-providers.ipynb"
    shutil.copy(ROOT / "solutions" / path.name, path)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    assert main(["selfcheck", str(path)]) == 0
    out = capsys.readouterr().out
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # nothing written beside it
    lines = out.splitlines()
    assert lines[1].split() == ["exercise", "points", "result", "feedback"]  # the grader's table
    exercises = parse_exercises(nbformat.read(ROOT / "notebooks" / path.name, as_version=4), path.stem)
    rows = len(exercises)
    assert [line.split()[:3] for line in lines[2:2 + rows]] == [
        [e.id, f"{e.points}/{e.points}", "pass"] for e in exercises]
    total = sum(e.points for e in exercises)
    assert lines[2 + rows].startswith(f"  total {total}/{total} in ") and HIDDEN_WORDS in lines[2 + rows]
    assert list(long_tmp.iterdir()) == []


def test_files_that_are_not_exercises_notebooks_are_one_clear_error(tmp_path, capsys):
    """Are a missing file, a broken file and a notebook without exercises each refused in one line?"""
    broken = tmp_path / "broken.ipynb"
    broken.write_text('{"cells": [')
    for path, words in [(tmp_path / "missing.ipynb", "no notebook at"), (broken, "is not valid JSON"),
                        (ROOT / "tests" / "files" / "not-a-notebook.ipynb", "is not valid JSON")]:
        assert main(["selfcheck", str(path)]) == 1
        assert words in capsys.readouterr().err
    with pytest.raises(ValueError, match="no exercise cell"):
        import nbformat

        empty = tmp_path / "empty.ipynb"
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), empty)
        selfcheck(empty)


def _kernels_of_this_process() -> list[str]:
    children = []
    for task in Path("/proc/self/task").glob("*/children"):
        children += task.read_text().split()
    return [pid for pid in children if b"ipykernel" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def test_an_endless_loop_is_stopped_and_named(tmp_path):
    """Is a cell that loops forever (Ctrl-C ignored) stopped after the timeout, named, the rest marked
    not checked, and its kernel gone?"""
    import nbformat

    path = tmp_path / "00-install-check.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("# Exercise 00.1 (1 points): loop\nimport signal\n"
                                  "signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C ignored too\n"
                                  "while True:\n    pass"),
        nbformat.v4.new_code_cell("# Exercise 00.2 (2 points): never reached\noutputs = None")]), path)
    found = selfcheck(path, timeout=3)
    assert [row[:4] for row in found.rows] == [("00.1", 0, 1, False), ("00.2", 0, 2, False)]
    assert found.rows[0][4] == "the cell ran longer than 3 s and was stopped (an endless loop?)"
    assert found.rows[1][4].startswith("not checked: code cell 1 ran longer than 3 s")
    assert _kernels_of_this_process() == []
