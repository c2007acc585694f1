"""Tests for course_utils/grading/report.py: are the class report's figures the grades file's, its
plots right as pictures, and its page safe in a real browser?"""
import base64
import csv
import json
import re
import shutil
from collections import Counter

import pytest

from browser_support import offline_browser, screenshot_on_failure
from conftest import ROOT
from course_utils.cli import main
from course_utils.grading.plots import BAR_COLOR, plot_pass_rates, plot_totals
from course_utils.grading.report import NotebookStats, class_statistics, write_report
from course_utils.grading.verdicts import status_text
from course_utils.grading.sandbox import CellResult
from grades_support import HOSTILE, bar_heights, class_rows, serve_folder


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    rows = class_rows()
    (folder / "grades.json").write_text(json.dumps(rows))
    return folder, write_report(rows, folder / "out", similarity=False), rows


def _expected(rows):
    """The per-exercise figures, recomputed here from the rows, independently of report.py."""
    figures = {}
    for row in rows:
        if row["error"]:
            continue
        for exercise, e in row["exercises"].items():
            f = figures.setdefault(exercise, {"n": 0, "passed": 0, "points": 0, "max": e["max_points"],
                                              "failures": Counter(), "timeouts": 0, "not_attempted": 0})
            f["n"] += 1
            f["passed"] += e["passed"]
            f["points"] += e["points"]
            if not e["passed"]:
                f["failures"][e["feedback"][:300]] += 1
                f["timeouts"] += "longer than" in e["feedback"]
                f["not_attempted"] += e["feedback"].startswith("not attempted")
    return figures


def test_page_figures_equal_those_recomputed_from_the_json(report):
    """Does each exercise row of report.html show the submissions, passes, pass rate, mean points,
    time-outs and not-attempted counts that the JSON gives?"""
    folder, page_path, rows = report
    expected = _expected(rows)
    with offline_browser() as browser, serve_folder(page_path.parent) as (url, asked):
        page = browser.new_page()
        with screenshot_on_failure(page, "class-report"):
            page.goto(f"{url}/report.html")
            table = page.locator("#exercises tbody tr")
            shown = {}
            for i in range(table.count()):
                cells = table.nth(i).locator("td").all_inner_texts()
                shown[cells[1]] = cells
            assert sorted(shown) == sorted(expected)
            for exercise, f in expected.items():
                cells = shown[exercise]
                assert cells[2:5] == [str(f["n"]), str(f["passed"]), f"{100 * f['passed'] / f['n']:.1f}"]
                assert cells[5] == f"{f['points'] / f['n']:.2f} / {f['max']}"
                assert cells[6] == str(f["timeouts"]) and cells[8] == str(f["not_attempted"])
                top = f["failures"].most_common(1)
                if top:
                    assert cells[9].startswith(f"{top[0][1]} × ")
            notebooks = page.locator("#notebooks tbody tr")
            by_name = {}
            for i in range(notebooks.count()):
                cells = notebooks.nth(i).locator("td").all_inner_texts()
                by_name[cells[0]] = cells
            totals = [r["points"] for r in rows if r["notebook"] == "01-execution-providers"]
            assert by_name["01-execution-providers"][1] == str(len(totals))
            assert by_name["01-execution-providers"][4] == f"{sum(totals) / len(totals):.2f}"
            assert "eve" in page.locator("#not-graded").inner_text()
            assert page.evaluate("window.__pwned === undefined")
            assert page.locator("script").count() == 0
            sources = [page.locator("img").nth(i).get_attribute("src") for i in range(page.locator("img").count())]
    assert len(sources) == 2 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert base64.b64decode(sources[0].split(",", 1)[1]) == (page_path.parent / "pass-rates.png").read_bytes()
    assert browser.blocked == [] and asked == ["/report.html"]


def test_csv_holds_the_same_figures(report):
    """Does exercises.csv give the same counts and rates as the JSON, with formula-looking text defused?"""
    _, page_path, rows = report
    expected = _expected(rows)
    table = {r["exercise"]: r for r in csv.DictReader((page_path.parent / "exercises.csv").open(encoding="utf-8"))}
    for exercise, f in expected.items():
        assert int(table[exercise]["submissions"]) == f["n"] and int(table[exercise]["passed"]) == f["passed"]
        assert float(table[exercise]["pass_rate"]) == pytest.approx(f["passed"] / f["n"], abs=1e-4)
    totals = list(csv.DictReader((page_path.parent / "totals.csv").open(encoding="utf-8")))
    counted = Counter(r["points"] for r in rows if r["notebook"] == "00-install-check")
    assert {int(r["total"]): int(r["students"]) for r in totals if r["notebook"] == "00-install-check"} == \
        {t: counted.get(t, 0) for t in range(4)}
    assert "\x1b" not in (page_path.parent / "exercises.csv").read_text(encoding="utf-8")


def test_pass_rate_bars_are_as_tall_as_the_rates():
    """In the picture, are the bars' heights in the ratio of the pass rates (a zero rate draws nothing)?"""
    from course_utils.grading.report import ExerciseStats

    stats = [ExerciseStats("n", f"00.{i}", 1, submissions=4, passed=p) for i, p in enumerate([4, 2, 1, 0, 3])]
    heights = bar_heights(plot_pass_rates(stats), BAR_COLOR)
    assert len(heights) == 4  # the 0 % bar is not drawn
    full = heights[0]
    assert full > 100
    assert [h / full for h in heights] == pytest.approx([1, 0.5, 0.25, 0.75], abs=2 / full)


def test_totals_histogram_counts_students_per_total():
    """In the picture, does each total's bar stand as tall as the number of students with that total?"""
    stats = NotebookStats("00-install-check", max_points=3, totals=[0, 0, 2, 3, 3, 3, 3])
    heights = bar_heights(plot_totals([stats]), BAR_COLOR)
    assert len(heights) == 3  # totals 0, 2 and 3 (nobody scored 1)
    assert [h / heights[-1] for h in heights] == pytest.approx([0.5, 0.25, 1], abs=2 / heights[-1])


def test_statistics_sort_outcomes_by_the_graders_own_words():
    """Are time-outs and errors recognised in the words verdicts.status_text writes (not a copy of them)?"""
    words = {status: status_text(CellResult(status, ename="ValueError", evalue="bad"), 30)
             for status in ("timeout", "died", "error")}
    rows = [{"student": s, "notebook": "nb", "error": None, "points": 0, "max_points": 1,
             "exercises": {"00.1": {"points": 0, "max_points": 1, "passed": False, "feedback": text}}}
            for s, text in words.items()]
    (exercise,), _ = class_statistics(rows)
    assert (exercise.timeouts, exercise.errors, exercise.not_attempted) == (1, 2, 0)


def test_report_subcommand_and_grade_flags(tmp_path, capsys):
    """Do `report GRADES --out DIR --feedback DIR` and `grade ... --feedback DIR --report DIR` write the files,
    and is a shard's part refused with the merge command?"""
    grades = tmp_path / "grades.json"
    grades.write_text(json.dumps(class_rows()))
    assert main(["report", str(grades), "--out", str(tmp_path / "r"), "--feedback", str(tmp_path / "f")]) == 0
    assert {p.name for p in (tmp_path / "r").iterdir()} == {
        "report.html", "pass-rates.png", "totals.png", "exercises.csv", "totals.csv", "similar.csv"}
    assert (tmp_path / "f" / "eve").is_dir()
    part = tmp_path / "part.json"
    part.write_text(json.dumps([{**class_rows()[0], "order": 0}]))
    assert main(["report", str(part), "--out", str(tmp_path / "x")]) == 1
    assert "grade --merge" in capsys.readouterr().err
    submissions = tmp_path / "in" / "zed"
    submissions.mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "files" / "not-a-notebook.ipynb", submissions / "00-install-check.ipynb")
    code = main(["grade", str(tmp_path / "in"), "--json", str(tmp_path / "g.json"), "--csv", str(tmp_path / "g.csv"),
                 "--feedback", str(tmp_path / "gf"), "--report", str(tmp_path / "gr")])
    assert code == 1  # the one notebook could not be graded; feedback and report still say so
    assert "could not be graded" in (tmp_path / "gf" / "zed" / "00-install-check.html").read_text()
    assert re.search(r"1 could not be graded", (tmp_path / "gr" / "report.html").read_text())
    capsys.readouterr()
    assert main(["grade", str(tmp_path / "in"), "--shard", "1/2", "--json", str(tmp_path / "p.json"),
                 "--report", str(tmp_path / "pr")]) == 1
    assert "once the shards are done" in capsys.readouterr().err and not (tmp_path / "pr").exists()


def test_hostile_strings_never_reach_the_page_raw(report):
    """Is no hostile string of the grades file in report.html as markup (only escaped)?"""
    _, page_path, _ = report
    text = page_path.read_text(encoding="utf-8")
    for name in ("script", "img", "attribute"):
        assert HOSTILE[name] not in text, name
    assert "<script" not in text and "\x1b" not in text


def test_submissions_equal_to_the_reference_are_listed_from_the_notes(tmp_path):
    """Does the report list the submissions the grader noted as equal to the reference solutions
    (by the note's start, not a student's words quoting it), and say so when there are none?"""
    from course_utils.grading.similarity import REFERENCE_COPY_NOTE

    rows = class_rows()
    cho = next(r for r in rows if r["student"] == "cho" and r["notebook"] == "01-execution-providers")
    cho["notes"].append(f"{REFERENCE_COPY_NOTE} in 3 of 3 attempted exercises (01.1, 01.2, 01.3)")
    ben = next(r for r in rows if r["student"] == "ben" and r["notebook"] == "01-execution-providers")
    ben["notes"].append(f"code cell 4: the cell raised ValueError: {REFERENCE_COPY_NOTE}")
    page = write_report(rows, tmp_path / "out", similarity=False).read_text(encoding="utf-8")
    table = page.split('id="reference-copies"')[1].split("</table>")[0]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", table)
    assert cells == ["01-execution-providers", "cho",
                     f"{REFERENCE_COPY_NOTE} in 3 of 3 attempted exercises (01.1, 01.2, 01.3)"]
    none = write_report(class_rows(), tmp_path / "none", similarity=False).read_text(encoding="utf-8")
    assert '<p id="reference-copies">None' in none
