"""Tests for course_utils/grading/identity.py and the exports that follow it: is each student and
notebook counted once, are names that fold together reported (never merged, never dropped), does no
CSV cell read as a formula, and does each student's feedback get a folder of their own?"""
import csv
import io
import json

import pytest

from course_utils.grading.feedback import write_feedback
from course_utils.grading.gradebook import canvas_csv, gradescope_results, read_roster
from course_utils.grading.identity import colliding_names, feedback_folder, graded_rows, student_key
from course_utils.grading.results import NotebookGrade, ExerciseGrade, payload, write_results

NB = "00-install-check"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d")


def _row(student, points, notebook=NB, **extra):
    return {"path": f"sub/{student}/{notebook}.ipynb", "student": student, "notebook": notebook,
            "error": None, "seconds": 1.0, "notes": [], "points": points, "max_points": 5,
            "exercises": {"00.1": {"points": points, "max_points": 5, "passed": points == 5,
                                   "feedback": "ok"}}, **extra}


def _duplicate(student, graded_path):
    row = _row(student, 0, error="not graded: the same student's notebook again", duplicate_of=graded_path)
    row["exercises"] = {}
    return row


def _roster(tmp_path, lines):
    path = tmp_path / "roster.csv"
    path.write_text("Student,ID,SIS User ID,SIS Login ID,Section\n" + "".join(l + "\n" for l in lines))
    return read_roster(path)


def _cells(text):
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def test_names_fold_by_case_and_unicode_compatibility():
    """Do the Kelvin sign, letter case and full-width letters fold to one key, and are such names found?"""
    assert student_key("\u212aelvin") == student_key("KELVIN") == student_key("kelvin")
    assert student_key("\uff41nn") == "ann" and student_key("ann") != student_key("anne")
    assert colliding_names(["kelvin", "\u212aelvin", "bob", "Bob", "carol"]) == {
        "kelvin": ["kelvin", "\u212aelvin"], "bob": ["Bob", "bob"]}


def test_canvas_gives_the_classmate_their_grade_and_reports_a_folded_name(tmp_path):
    """Does a folder named with the Kelvin sign leave its classmate 'kelvin' their 5 points, and is it
    listed as left out, not silently merged?"""
    roster = _roster(tmp_path, ["Kay Elvin,1,S1,kelvin,A"])
    for order in (1, -1):
        rows = [_row("kelvin", 5), _row("\u212aelvin", 0)][::order]
        text, left_out = canvas_csv(rows, roster)
        assert list(csv.DictReader(io.StringIO(text)))[0][NB] == "5"
        assert [(f, why.split(" as ")[0]) for f, _, _, why in left_out] == [
            ("\u212aelvin", "the same roster student")]


def test_canvas_writes_nothing_where_no_folder_is_named_exactly(tmp_path):
    """With two folders that fold to one roster login, neither named exactly as it and each with
    another notebook, are the cells left empty and both reported (nothing merged)?"""
    roster = _roster(tmp_path, ["Kay,1,S1,Kelvin,A"])
    rows = [_row("kelvin", 5), _row("KELVIN", 0, notebook="01-execution-providers")]
    text, left_out = canvas_csv(rows, roster)
    assert set(list(csv.DictReader(io.StringIO(text)))[0].values()) == {"Kay", "1", "S1", "Kelvin", "A", ""}
    assert sorted(f for f, *_ in left_out) == ["KELVIN", "kelvin"]


def test_one_name_graded_twice_is_reported_not_summed(tmp_path):
    """Is one name graded in two folders given (two graded rows of one notebook) left out, both listed?"""
    roster = _roster(tmp_path, ["Ann,1,S1,ann,A"])
    rows = [_row("ann", 5), {**_row("ann", 0), "path": "other/ann/00-install-check.ipynb"}]
    text, left_out = canvas_csv(rows, roster)
    assert list(csv.DictReader(io.StringIO(text)))[0][NB] == "" and len(left_out) == 2


def test_duplicates_export_the_graded_copy(tmp_path):
    """Does a duplicate's 0 never replace the graded copy's score, whichever comes first in the file?"""
    roster = _roster(tmp_path, ["Ann,1,S1,ann,A"])
    graded = _row("ann", 5)
    for rows in ([graded, _duplicate("ann", graded["path"])], [_duplicate("ann", graded["path"]), graded]):
        text, left_out = canvas_csv(rows, roster)
        assert list(csv.DictReader(io.StringIO(text)))[0][NB] == "5" and left_out == []
        assert [r["student"] for r in graded_rows(rows).rows] == ["ann"]


def test_a_file_name_never_becomes_a_column_and_no_cell_is_a_formula(tmp_path):
    """Is an unreadable file named like a formula kept out of the header, and is every text cell of
    the Canvas CSV (roster names, --column headers) defused?"""
    roster = _roster(tmp_path, ['"=HYPERLINK(""http://x"",""y"")",1,S1,ann,+A', "@SUM(A1),2,S2,-bob,\uff1dA"])
    unreadable = {**_row("ann", 0, notebook=None), "path": "sub/ann/=HYPERLINK(1).ipynb", "error": "unreadable"}
    text, left_out = canvas_csv([_row("ann", 5), unreadable], roster, {NB: "=Notebook 00"})
    header = next(csv.reader(io.StringIO(text)))
    assert header[5:] == ["'=Notebook 00"]
    assert not [c for c in _cells(text) if c.startswith(FORMULA_STARTS)], text
    assert [why for *_, why in left_out] == ["could not be graded as any course notebook"]


def test_grades_csv_defuses_names_and_feedback(tmp_path):
    """Does grades.csv write a student named like a formula, and feedback that starts with one, as text?"""
    grade = NotebookGrade("sub/=cmd|' /C calc'!A0/00-install-check.ipynb", "=cmd|' /C calc'!A0", NB)
    grade.exercises.append(ExerciseGrade("00.1", 0, 1, False, "+1+1"))
    grade.exercises.append(ExerciseGrade("00.2", 0, 2, False, "  @SUM(1)"))
    out = tmp_path / "grades.csv"
    write_results(payload([grade]), None, out)
    cells = _cells(out.read_text())
    assert not [c for c in cells if c.lstrip().startswith(FORMULA_STARTS)], cells
    assert "'=cmd|' /C calc'!A0" in cells and "'+1+1" in cells


def test_a_gradescope_upload_is_one_student():
    """Does one student's notebook handed in three times count once, and are rows of several students
    (or one notebook graded twice for one student) refused rather than summed?"""
    graded = _row("submission", 5)
    rows = [graded, _duplicate("submission", graded["path"]), _duplicate("submission", graded["path"])]
    results = gradescope_results(rows)
    assert results["score"] == 5 and len(results["tests"]) == 1
    assert results["output"].count("not graded, the same notebook as") == 2
    flat = [_row("00-install-check", 5), _row("00-install-check (1)", 5), _row("00-a", 5)]
    with pytest.raises(ValueError, match="holds 3 students"):
        gradescope_results(flat)
    assert gradescope_results(flat, "00-a")["score"] == 5
    with pytest.raises(ValueError, match="graded 2 times"):
        gradescope_results([_row("ann", 5), {**_row("ann", 0), "path": "other/ann/00-install-check.ipynb"}])
    with pytest.raises(ValueError, match="differ only by letter case"):
        gradescope_results([_row("ann", 5), _row("Ann", 0, notebook="01-execution-providers")], "ANN")
    assert gradescope_results([_row("ann", 5), _row("Ann", 0)], "ann")["score"] == 5  # named exactly


def test_feedback_folders_never_collide(tmp_path):
    """Do 'a b', 'a_b', 'A_B', 'a_b-2' and a name with markup each get a folder of their own, with a
    name already safe kept as it is, and no duplicate a page?"""
    names = ["a b", "a_b", "A_B", "a_b-2", "<b>x</b>", "_a_b"]
    rows = [_row(n, 1) for n in names] + [_duplicate("a_b", "sub/a_b/00-install-check.ipynb")]
    pages = write_feedback(rows, tmp_path)
    folders = [p.parent.name for p in pages]
    assert len(pages) == len(names) and len({f.casefold() for f in folders}) == len(names)
    assert folders[1] == "a_b" and folders[3] == "a_b-2"
    assert all(f.startswith("_") for i, f in enumerate(folders) if i not in (1, 3))
    used = set()
    assert feedback_folder("a_b", used) == "a_b" and feedback_folder("a_b", used) != "a_b"


def test_student_names_stay_distinct_in_the_records():
    """Do an ESC byte and the four characters '\\x1b' give two different students in the records?"""
    one, two = NotebookGrade("p", "eve\x1b"), NotebookGrade("p", "eve\\x1b")
    assert one.student != two.student and "\x1b" not in one.student
    assert json.loads(json.dumps(payload([one, two])))[0]["student"] == one.student


def test_the_grader_notes_folded_names_and_duplicates_on_each_record():
    """Does each of two folders whose names fold together get a note naming the other, and does the
    graded copy of a notebook handed in twice name the copy that was not graded?"""
    from pathlib import Path

    from course_utils.grading.submissions import Submission, mark_collisions, mark_duplicates

    def sub(student, name, mtime=0.0):
        return Submission(Path(f"sub/{student}/{name}"), student, ("sub", student), notebook=NB, mtime=mtime)

    subs = [sub("kelvin", f"{NB}.ipynb"), sub("\u212aelvin", f"{NB}.ipynb"), sub("ann", f"{NB}.ipynb"),
            sub("ann", "00-copy.ipynb", 5.0)]
    mark_duplicates(subs)
    mark_collisions(subs)
    kelvin, kelvin_sign, ann, copy = subs
    assert "'\\u212aelvin'" in kelvin.notes[0] and "'kelvin'" in kelvin_sign.notes[0]
    assert "no gradebook export merges them" in kelvin.notes[0]
    assert copy.duplicate_of == str(ann.path) and "'00-copy.ipynb'" in ann.notes[0]


def test_the_report_counts_each_student_and_notebook_once():
    """Is one name graded in two folders given left out of the report's figures (and listed), while a
    duplicate stays a 'not graded' line and the graded copy counts once?"""
    from course_utils.grading.report import class_statistics

    graded = _row("ann", 5)
    rows = [graded, _duplicate("ann", graded["path"]), _row("bob", 5),
            {**_row("bob", 0), "path": "other/bob/00-install-check.ipynb"}]
    exercises, (notebook,) = class_statistics(rows)
    assert exercises[0].submissions == 1 and notebook.totals == [5]
    assert sorted(student for student, _ in notebook.not_graded) == ["ann", "bob", "bob"]
