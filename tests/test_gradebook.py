"""Tests for course_utils/grading/gradebook.py: do the exports parse with the formats' documented
columns and keys (Canvas gradebook import; Gradescope's autograder results.json)?"""
import csv
import io
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT
from course_utils.cli import main
from course_utils.grading.gradebook import CANVAS_COLUMNS, canvas_csv, gradescope_results, read_roster
from grades_support import HOSTILE, class_rows

# Canvas' gradebook export: its header, the 'Points Possible' row and a test student.
ROSTER = (
    "Student,ID,SIS User ID,SIS Login ID,Section,Notebook 00 (4411)\r\n"
    "    Points Possible,,,,,3\r\n"
    '"Andersen, Ann",101,S-101,ann,Section A,\r\n'
    '"Brown, Ben",102,S-102,bbrown,Section A,\r\n'
    '"Cho, Chris",103,S-103,chris,Section B,\r\n'
    '"Dane, Dan",104,S-104,dan,Section B,\r\n'
    '"Student, Test",105,,test,Section A,\r\n')


@pytest.fixture
def roster(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text(ROSTER, encoding="utf-8", newline="")
    return path


def test_canvas_csv_has_canvas_columns_and_lists_the_unmatched(roster):
    """Does the CSV start with Canvas' five student columns, give each matched student their totals,
    leave unsubmitted cells empty, and list (not drop) folders that match nobody?"""
    text, unmatched = canvas_csv(class_rows(), read_roster(roster), {"00-install-check": "Notebook 00 (4411)"})
    rows = list(csv.reader(io.StringIO(text)))
    # Columns are the course notebooks the grader identified: eve's unreadable file makes none.
    assert rows[0] == [*CANVAS_COLUMNS, "Notebook 00 (4411)", "01-execution-providers"]
    table = {r[3]: r for r in rows[1:]}
    assert sorted(table) == ["ann", "bbrown", "chris", "dan"]  # the 'Points Possible' row and test student dropped
    assert table["ann"][:5] == ["Andersen, Ann", "101", "S-101", "ann", "Section A"]
    assert table["ann"][5:] == ["3", "4"] and table["dan"][5:] == ["0", ""]
    assert table["bbrown"][5:] == ["", ""]  # folder 'ben' matches no login: nothing guessed
    assert sorted((f, n) for f, n, _, _ in unmatched) == sorted(
        [("ben", "00-install-check"), ("ben", "01-execution-providers"), ("cho", "00-install-check"),
         ("cho", "01-execution-providers"), (HOSTILE["attribute"], "01-execution-providers"),
         ("eve", "02-export-and-verify.ipynb")])
    assert {why for *_, why in unmatched} == {"matches no roster student"}


def test_a_folder_column_maps_folders_to_students(tmp_path):
    """With a 'folder' column, is each folder matched to its row whatever the Canvas ids are?"""
    path = tmp_path / "roster.csv"
    path.write_text("Student,ID,SIS User ID,SIS Login ID,Section,folder\n"
                    "Ben Brown,102,S-102,bbrown,A,ben\nChris Cho,103,S-103,chris,B,CHO\n")
    text, unmatched = canvas_csv(class_rows(), read_roster(path))
    table = {r["SIS Login ID"]: r for r in csv.DictReader(io.StringIO(text))}
    assert table["bbrown"]["00-install-check"] == "0" and table["chris"]["01-execution-providers"] == "6"
    assert {f for f, _, _, _ in unmatched} == {"ann", "dan", "eve", HOSTILE["attribute"]}


def test_roster_without_canvas_columns_is_refused(tmp_path):
    """Is a roster that lacks Canvas' columns refused, naming them?"""
    path = tmp_path / "roster.csv"
    path.write_text("name,email\nann,a@x\n")
    with pytest.raises(ValueError, match="lacks the column"):
        read_roster(path)


def test_canvas_cli_writes_the_file_and_prints_the_unmatched(roster, tmp_path, capsys):
    """Does `gradebook canvas` write the CSV and print every unmatched folder, exiting 1?"""
    grades = tmp_path / "grades.json"
    grades.write_text(json.dumps(class_rows()))
    out = tmp_path / "canvas.csv"
    assert main(["gradebook", "canvas", str(grades), "--roster", str(roster), "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "  ben  00-install-check  0 points: matches no roster student" in printed
    assert out.read_text().startswith("Student,ID,SIS User ID,SIS Login ID,Section,")


def test_gradescope_results_follow_the_specification():
    """Does results.json have the documented keys: score, execution_time, output, and one test per
    exercise with name, number, score, max_score, status and output (the check's words, cleaned)?"""
    rows = [r for r in class_rows() if r["student"] == "ann"]
    results = json.loads(json.dumps(gradescope_results(rows)))
    assert {"score", "execution_time", "output", "tests", "visibility", "stdout_visibility"} <= set(results)
    assert [t["number"] for t in results["tests"]] == ["00.1", "00.2", "01.1", "01.2", "01.3"]
    for test in results["tests"]:
        assert {"name", "number", "score", "max_score", "status", "output"} <= set(test)
        assert test["status"] == ("passed" if test["score"] == test["max_score"] else "failed")
        assert isinstance(test["score"], float) and isinstance(test["max_score"], float)
    assert results["score"] == sum(t["score"] for t in results["tests"]) == 7
    failed = next(t for t in results["tests"] if t["number"] == "01.2")
    assert failed["output"] == "red \\x1b[31mALERT\\x1b[0m \\x07 bell \\u202e reversed"
    assert "note: " in results["output"] and "\x1b" not in json.dumps(results)
    assert gradescope_results(class_rows(), "eve")["tests"] == []
    with pytest.raises(ValueError, match="no notebook of student"):
        gradescope_results(class_rows(), "nobody")


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_run_autograder_writes_results_json(tmp_path):
    """Does the documented run_autograder script, run as Gradescope would (submission/ in, results/ out),
    grade the whole upload as one student (loose and nested files alike) and write a results.json
    that says what happened to each file?"""
    script = ROOT / "course_utils" / "grading" / "autograder" / "run_autograder"
    assert os.access(script, os.X_OK) and script.read_text().startswith("#!/usr/bin/env bash")
    (tmp_path / "submission" / "nested").mkdir(parents=True)
    for name in ("00-install-check.ipynb", "00-install-check (1).ipynb", "nested/00-again.ipynb"):
        shutil.copy(ROOT / "tests" / "files" / "not-a-notebook.ipynb", tmp_path / "submission" / name)
    run = subprocess.run([str(script)], capture_output=True, text=True, timeout=240,
                         env={**os.environ, "AUTOGRADER_ROOT": str(tmp_path), "AUTOGRADER_SOURCE": str(ROOT),
                              "COURSE_PYTHON": sys.executable})
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    assert results["score"] == 0 and results["tests"] == []  # (three students' rows are refused)
    assert results["output"].count("could not be graded: not a readable Jupyter notebook") == 3
