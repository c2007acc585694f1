"""Tests for course_utils/grading/grader.py: scores, feedback, robustness, and the student's file untouched."""
import csv
import hashlib
import json
import re
import shutil

import pytest

from conftest import ROOT, declared_points
from course_utils.cli import main
from course_utils.grading import grade_notebooks, load_hidden_checks
from course_utils.grading.gradebook import canvas_csv, gradescope_results

FILES = ROOT / "tests" / "files"
# The longest first (graded two at a time, in this order), so that they overlap: measured alone,
# infinite-loop 31 s, the 02 fixture 23 s, kernel-crash 11 s, the rest 4-8 s. The 00 fixtures leave
# out check_install's cells: a fresh kernel after a loop or a crash would replay them for nothing.
FIXTURES = ["infinite-loop.ipynb", "fixed-batch-export-and-always-true-comparison.ipynb",
            "kernel-crash.ipynb", "wrong-gpu-provider-reordered-duplicated.ipynb",
            "unfinished-first-exercise.ipynb", "deleted-exercise-cell.ipynb", "not-a-notebook.ipynb"]
LIMIT = 20  # seconds a cell may run


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def graded():
    """Grade every fixture once (a 20 s cell limit, two at a time) and record the bytes before and after."""
    paths = [FILES / name for name in FIXTURES]
    before = {p.name: _digest(p) for p in paths}
    grades = grade_notebooks(paths, timeout=LIMIT, jobs=2)
    after = {p.name: _digest(p) for p in paths}
    return {g.student + ".ipynb": g for g in grades}, before, after


def _exercise(grade, exercise_id):
    return next(e for e in grade.exercises if e.exercise == exercise_id)


def test_student_files_are_never_modified(graded):
    """Are the submitted files' bytes identical after grading?"""
    _, before, after = graded
    assert before == after


def test_endless_loop_is_stopped_and_the_rest_still_counts(graded):
    """Is an endless loop stopped, reported, and the next exercise still graded?"""
    grade = graded[0]["infinite-loop.ipynb"]
    assert f"longer than {LIMIT} s" in _exercise(grade, "00.1").feedback
    assert _exercise(grade, "00.2").passed and grade.points == declared_points("00")["00.2"]


def test_kernel_crash_keeps_earlier_exercises(graded):
    """Does a crashed kernel keep the points earned before it and say what happened?"""
    grade = graded[0]["kernel-crash.ipynb"]
    assert _exercise(grade, "00.1").passed
    assert "kernel died" in _exercise(grade, "00.2").feedback and grade.error is None


def test_unfinished_exercise_scores_zero_and_others_count(graded):
    """Does an exercise left unfinished score 0 as 'not attempted' while later ones count?"""
    grade = graded[0]["unfinished-first-exercise.ipynb"]
    first = _exercise(grade, "00.1")
    assert (first.points, first.passed) == (0, False) and "not attempted" in first.feedback
    assert _exercise(grade, "00.2").points == declared_points("00")["00.2"]


def test_deleted_exercise_cell_is_not_attempted(graded):
    """Is an exercise whose cell was deleted scored 0 with 'not attempted'?"""
    grade = graded[0]["deleted-exercise-cell.ipynb"]
    assert "not attempted" in _exercise(grade, "00.2").feedback and _exercise(grade, "00.1").passed


def test_wrong_provider_gets_specific_feedback_despite_reordering(graded):
    """Does naming DirectML as an NVIDIA provider get its own hint, with reordered and duplicated cells still graded?"""
    grade = graded[0]["wrong-gpu-provider-reordered-duplicated.ipynb"]
    wrong = _exercise(grade, "01.1")
    assert not wrong.passed and "DirectML" in wrong.feedback and "not NVIDIA" in wrong.feedback
    assert _exercise(grade, "01.2").passed and _exercise(grade, "01.3").passed
    points = declared_points("01")  # 01.2 and 01.3 of the whole notebook; 01.4 is not in the file
    assert (grade.points, grade.max_points) == (points["01.2"] + points["01.3"], sum(points.values()))


def test_typical_export_mistakes_get_their_own_feedback(graded):
    """Do a batch fixed to 1 and a comparison that always passes each get a specific hint, the
    exercises between them full marks, and those the file stops before 'not attempted'?"""
    grade = graded[0]["fixed-batch-export-and-always-true-comparison.ipynb"]
    assert "fixed to 1" in _exercise(grade, "02.1").feedback
    assert "must not match" in _exercise(grade, "02.4").feedback
    assert [e.exercise for e in grade.exercises if e.passed] == ["02.2", "02.3"], grade.table()
    assert grade.points == _exercise(grade, "02.2").max_points + _exercise(grade, "02.3").max_points
    later = [e for e in grade.exercises if e.exercise > "02.4"]
    assert later and all(e.feedback.startswith("not attempted") for e in later), grade.table()


def test_not_a_notebook_is_a_clear_error_and_the_batch_goes_on(graded):
    """Does a non-notebook file get a clear error while the other files are graded?"""
    grades = graded[0]
    assert "not a readable Jupyter notebook" in grades["not-a-notebook.ipynb"].error
    assert all(g.exercises for name, g in grades.items() if name != "not-a-notebook.ipynb")


def test_feedback_never_shows_grader_source(graded):
    """Is no feedback a piece of the checks' source code or a traceback?"""
    for grade in graded[0].values():
        for exercise in grade.exercises:
            for leak in ("def ", "register(", "CheckFailed", "Traceback", "raise "):
                assert leak not in exercise.feedback


def test_folder_gives_json_and_csv_per_student(tmp_path):
    """Does grading a folder of students write JSON and one CSV row per student and exercise?"""
    for student, name in [("alice", "deleted-exercise-cell.ipynb"), ("bob", "not-a-notebook.ipynb")]:
        (tmp_path / "submissions" / student).mkdir(parents=True)
        shutil.copy(FILES / name, tmp_path / "submissions" / student / "00-install-check.ipynb")
    out_json, out_csv = tmp_path / "grades.json", tmp_path / "grades.csv"
    code = main(["grade", str(tmp_path / "submissions"), "--json", str(out_json), "--csv", str(out_csv)])
    assert code == 1  # one file could not be graded
    data = json.loads(out_json.read_text())
    alice = next(d for d in data if d["student"] == "alice")
    points = declared_points("00")
    assert alice["exercises"]["00.1"] == {"points": points["00.1"], "max_points": points["00.1"],
                                          "passed": True, "feedback": "all checks passed",
                                          "status": "passed"}
    assert set(alice["exercises"]["00.2"]) == {"points", "max_points", "passed", "feedback", "status"}
    rows = list(csv.DictReader(out_csv.open()))
    assert [(r["student"], r["exercise"]) for r in rows] == [("alice", e) for e in points] + [("bob", "")]


def test_cli_errors_are_one_line(capsys):
    """Is a missing path reported as one line with exit 1?"""
    assert main(["grade", "no/such/notebook.ipynb"]) == 1
    assert capsys.readouterr().err.startswith("error: no/such/notebook.ipynb does not exist")


def test_points_table_lists_every_exercise(capsys):
    """Does `grade --list` list the exercises with their points and a total?"""
    assert main(["grade", "--list"]) == 0
    out = capsys.readouterr().out
    assert "00.1" in out and "01.3" in out and out.strip().splitlines()[-1].startswith("total")


def test_a_reference_answer_that_fails_its_checks_fails_nbval(tmp_path):
    """Does nbval's run of a solutions notebook, on a command line without tests/ (the repository's
    own conftest.py), fail when a reference answer fails the grader's checks?"""
    import subprocess
    import sys

    import nbformat

    (tmp_path / "solutions").mkdir()
    (tmp_path / "notebooks").mkdir()
    name = "01-execution-providers.ipynb"
    shutil.copy(ROOT / "notebooks" / name, tmp_path / "notebooks" / name)
    nb = nbformat.read(ROOT / "solutions" / name, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("course_utils", {}).get("exercise") == "01.2")
    cell.source += ("\nsession_arguments = lambda *_: {'providers': [], 'provider_options': []}"
                    "  # after check(): the output stays the same")
    nbformat.write(nb, tmp_path / "solutions" / name)
    (tmp_path / "tests").mkdir()  # the plugin and the top-level conftest.py that loads it, as they are
    shutil.copy(ROOT / "tests" / "nbval_answers.py", tmp_path / "tests")
    shutil.copy(ROOT / "conftest.py", tmp_path)
    result = subprocess.run([sys.executable, "-m", "pytest", "solutions", "--nbval", "-q",
                             "-p", "no:cacheprovider"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 1, result.stdout[-2000:]
    assert "1 failed" in result.stdout, result.stdout[-2000:]
    assert "the reference answer of exercise 01.2 fails the grader's checks" in result.stdout


def test_shards_merged_equal_one_run(tmp_path):
    """Do `grade --shard 1/2` and `2/2`, merged, give exactly the JSON and CSV of one run?"""
    for student, source in [("ann", FILES / "hostile" / "frame-reading.ipynb"),
                            ("ben", FILES / "not-a-notebook.ipynb"),
                            ("cho", FILES / "hostile" / "include-hidden-oracle.ipynb")]:
        (tmp_path / "in" / student).mkdir(parents=True)
        shutil.copy(source, tmp_path / "in" / student / "00-install-check.ipynb")
    folder = str(tmp_path / "in")
    main(["grade", folder, "--json", str(tmp_path / "one.json"), "--csv", str(tmp_path / "one.csv")])
    for k in (1, 2):
        main(["grade", folder, "--shard", f"{k}/2", "--json", str(tmp_path / f"part{k}.json")])
    assert main(["grade", "--merge", str(tmp_path / "part2.json"), str(tmp_path / "part1.json"),
                 "--json", str(tmp_path / "merged.json"), "--csv", str(tmp_path / "merged.csv")]) == 1
    assert (tmp_path / "merged.csv").read_text() == (tmp_path / "one.csv").read_text()

    def without_time(path):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in json.loads(path.read_text())]

    assert without_time(tmp_path / "merged.json") == without_time(tmp_path / "one.json")
    parts = [json.loads((tmp_path / f"part{k}.json").read_text()) for k in (1, 2)]
    assert sorted(len(p) for p in parts) == [1, 2]
    with pytest.raises(ValueError, match="missing"):
        from course_utils.grading.results import merge_parts
        merge_parts([tmp_path / "part1.json"])


def test_a_forged_file_answer_never_opens_a_grader_side_file(tmp_path):
    """Is a file answer written into the captured data as a path on the grader's disk refused unread?"""
    from course_utils.answers import ANSWER_FILE
    from course_utils.grading.grader import _Run
    from course_utils.grading.sandbox import CellResult, KernelLimits

    real = FILES / "small-cnn.onnx"  # exists on the grader's side, never inside a sandbox

    class ForgingKernel:  # stands for a kernel whose capture was rewritten by the student
        workdir, iodir, io_path = tmp_path / "work", tmp_path / "io", str(tmp_path / "io")
        inbox_dir, inbox_path = tmp_path / "in", str(tmp_path / "in")

        def alive(self):
            return True

        def run(self, code, limit, silent=False):
            forged = {"value": str(real.resolve())} if "capture" in code else {}
            folder = self.iodir / re.search(r"capture-[0-9a-f]+", code).group(0)
            folder.mkdir(parents=True)
            (folder / ANSWER_FILE).write_text(json.dumps(forged))
            return CellResult("ok")

        def kill(self):
            pass

    load_hidden_checks()
    run = _Run(None, tmp_path / "work", tmp_path / "io", tmp_path, KernelLimits(), True, 61000, 30, 60)
    run.kernel = ForgingKernel()
    try:
        verdict = run.capture("03.2")
    finally:
        run.close()
    assert not verdict.passed and "no file" in verdict.feedback and str(FILES) not in verdict.feedback


def _short_submission(notebook, exercise: str):
    """The notebook's title, ``check``'s import and the cell of ``exercise``: a submission that
    costs the sandbox no more than that exercise."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith(f"# Exercise {exercise} "))
    nb.cells = [nb.cells[0], nbformat.v4.new_code_cell("from course_utils import check"), cell]
    return nb


@pytest.fixture
def browser_ready():
    """Skip (fail in CI) unless Chromium, playwright and onnxruntime-web are all here."""
    from browser_support import browser_ready as ready

    ready()


def test_a_browser_exercise_is_graded_from_what_chromium_did(browser_ready, tmp_path):
    """Through the sandbox, does the reference JavaScript of 06.1 score full marks, headless
    Chromium having run it in the checks' process (whose memory limit lets Chromium live)? (The
    shipped exercise's 0 is tested with the other notebooks in test_alternative_answers.py.)"""
    import nbformat

    (tmp_path / "alice").mkdir()
    nbformat.write(_short_submission(ROOT / "solutions" / "06-browser.ipynb", "06.1"),
                   tmp_path / "alice" / "06-browser.ipynb")
    (alice,) = grade_notebooks([tmp_path / "alice"], timeout=60)
    assert (alice.points, alice.max_points, alice.exercises[0].status) == (3, 3, "passed"), alice.table()


def test_without_a_browser_the_grader_says_needs_a_browser_never_wrong(tmp_path, monkeypatch):
    """Where the checks' process can drive no browser, is the answer "needs a browser to grade" (0
    points for now, never a fail), asked with the checks' browser limits, and so in the JSON, the
    CSV, the feedback, the Canvas import (left out, not 0) and Gradescope's output?"""
    from course_utils.answers import ANSWER_FILE
    from course_utils.grading import isolated
    from course_utils.grading.feedback import write_feedback
    from course_utils.grading.grader import _Run
    from course_utils.grading.results import ExerciseGrade, NotebookGrade, payload, write_results
    from course_utils.grading.sandbox import CellResult, KernelLimits

    class CapturingKernel:  # a kernel whose capture of `predict_js` is a script
        workdir, iodir, io_path = tmp_path / "work", tmp_path / "io", str(tmp_path / "io")
        inbox_dir, inbox_path = tmp_path / "in", str(tmp_path / "in")

        def alive(self):
            return True

        def run(self, code, limit, silent=False):
            folder = self.iodir / re.search(r"capture-[0-9a-f]+", code).group(0)
            folder.mkdir(parents=True)
            (folder / ANSWER_FILE).write_text(json.dumps({"value": "async function predict() {}"}))
            return CellResult("ok")

        def kill(self):
            pass

    asked = {}

    def in_this_process(target, args, *, browser=False, **limits):  # the fork server keeps its env
        asked["browser"] = browser
        return target(None, *args)

    monkeypatch.setattr(isolated, "run_limited", in_this_process)
    monkeypatch.setenv("ONNX_COURSE_CHROMIUM", str(tmp_path / "no-chromium"))
    load_hidden_checks()
    run = _Run(None, tmp_path / "work", tmp_path / "io", tmp_path, KernelLimits(), True, 61000, 30, 60)
    run.kernel = CapturingKernel()
    try:
        verdict = run.capture("06.1")
    finally:
        run.close()
    assert asked == {"browser": True} and verdict.needs_browser and not verdict.passed
    assert verdict.feedback.startswith("needs a browser to grade: ") and "no-chromium" in verdict.feedback
    grade = NotebookGrade("class/alice/06-browser.ipynb", "alice", "06-browser",
                          [ExerciseGrade("06.1", 0, 3, False, verdict.feedback, "needs a browser to grade")])
    assert "06.1           0/3  ungraded" in grade.table()
    (row,) = payload([grade])
    write_results([row], tmp_path / "grades.json", tmp_path / "grades.csv")
    assert json.loads((tmp_path / "grades.json").read_text())[0]["exercises"]["06.1"]["status"] == (
        "needs a browser to grade")
    assert next(csv.DictReader((tmp_path / "grades.csv").open()))["status"] == "needs a browser to grade"
    (page,) = write_feedback([row], tmp_path / "feedback")
    assert "| not graded yet |" in page.with_suffix(".md").read_text()
    roster = [{"Student": "Alice", "ID": "1", "SIS User ID": "", "SIS Login ID": "alice", "Section": ""}]
    text, left_out = canvas_csv([row], roster)
    assert left_out[0][3].startswith("exercise(s) 06.1 needs a browser to grade")
    assert text.splitlines()[1] == "Alice,1,,alice,,"  # the notebook's cell left empty, not 0
    assert "06.1 needs a browser to grade" in gradescope_results([row])["output"]
