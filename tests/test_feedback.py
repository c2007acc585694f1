"""Tests for course_utils/grading/feedback.py and pages.py: do students' pages show hostile text as text?

The pages are opened in headless Chromium (``browser_support``), served from 127.0.0.1:
no script may run and no request may leave for anything but the page itself.
"""
import re

import pytest

from browser_support import offline_browser, screenshot_on_failure
from course_utils.grading.feedback import feedback_markdown, write_feedback
from course_utils.grading.pages import clean_text, csv_cell, markdown_text, safe_filename
from grades_support import HOSTILE, class_rows, serve_folder


@pytest.fixture(scope="module")
def feedback(tmp_path_factory):
    folder = tmp_path_factory.mktemp("feedback")
    return folder, write_feedback(class_rows(), folder)


@pytest.fixture(scope="module")
def browser():
    with offline_browser() as opened:
        yield opened


def _open(browser, folder, page_path):
    """Load one page from a loopback server; return the page, the requests it made and the dialogs."""
    page = browser.new_page(width=1000, height=800)
    dialogs, refused = [], []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    with serve_folder(folder) as (url, asked):
        page.goto(f"{url}/{page_path.relative_to(folder).as_posix()}")
        page.wait_for_load_state("load")
    return page, asked, dialogs, refused


def test_one_page_and_one_markdown_file_per_student_and_notebook(feedback):
    """Is there an .html and an .md for each of the nine graded notebooks, in a safe folder per student?"""
    folder, pages = feedback
    assert len(pages) == len(class_rows()) == 9
    assert all(p.with_suffix(".md").is_file() and p.parent.parent == folder for p in pages)
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", p.parent.name) for p in pages)
    assert sorted(p.name for p in (folder / "ann").iterdir()) == [
        "00-install-check.html", "00-install-check.md", "01-execution-providers.html", "01-execution-providers.md"]


def test_hostile_feedback_renders_as_text_with_no_script_and_no_request(feedback, browser):
    """Does a page whose feedback holds script, markup, ESC, a surrogate and 1 MB show them as text,
    run nothing, and ask for nothing but itself?"""
    folder, pages = feedback
    hostile = [p for p in pages if p.parent.name in ("dan", "eve")
               or p.stem == "01-execution-providers" and p.parent.name not in ("cho",)]
    assert len(hostile) == 5
    for path in hostile:
        page, asked, dialogs, refused = _open(browser, folder, path)
        with screenshot_on_failure(page, f"feedback-{path.parent.name[:20]}-{path.stem}"):
            assert page.evaluate("window.__pwned === undefined")
            assert page.locator("script, iframe, img, link[rel=stylesheet]").count() == 0
            assert page.locator("style").count() == 1  # the page's own
            assert dialogs == [] and browser.blocked == [] and refused == []
            assert asked == ["/" + path.relative_to(folder).as_posix()]
        page.context.close()


def test_the_student_reads_their_points_and_the_checks_words(feedback, browser):
    """Does the page show each exercise's points, pass/fail, the feedback verbatim (escaped), and the total?"""
    folder, _ = feedback
    page, *_ = _open(browser, folder, folder / "ann" / "01-execution-providers.html")
    rows = [page.locator("tbody tr").nth(i).locator("td").all_inner_texts() for i in range(3)]
    assert [r[:3] for r in rows] == [["01.1", "2/2", "pass"], ["01.2", "0/2", "FAIL"], ["01.3", "2/2", "pass"]]
    assert rows[1][3] == "red \\x1b[31mALERT\\x1b[0m \\x07 bell \\u202e reversed"
    assert "Total: 4/6" in page.inner_text("body") and "12 s" in page.inner_text("body")
    assert HOSTILE["img"] in page.locator("li").inner_text()  # the note, shown as text
    page.context.close()


def test_huge_and_surrogate_strings_are_cut_and_replaced(feedback, browser):
    """Is a 1 MB feedback cut with a note, and a lone surrogate shown as an escape (the page stays small)?"""
    folder, pages = feedback
    path = next(p for p in pages if p.parent.name not in ("ann", "ben", "cho", "dan", "eve"))
    assert path.stat().st_size < 50_000
    page, *_ = _open(browser, folder, path)
    text = page.inner_text("body")
    assert f"({2**20 - 2000} more characters cut)" in text and "lone \\ud800 surrogate" in text
    assert HOSTILE["markdown"] in text  # shown, not rendered
    page.context.close()


def test_markdown_carries_no_markup():
    """Is every Markdown mark and tag escaped, so that no renderer makes a link, a tag or a table cell of it?"""
    row = class_rows()[7]
    text = feedback_markdown(row)
    assert "<" not in text.replace("&lt;", "") and "](" not in text and "javascript\\:" not in text
    for line in text.splitlines():
        if line.startswith("| 01."):
            assert line.count("|") - line.count("\\|") == 5  # exactly the table's own pipes
    assert markdown_text("a_b*c") == "a\\_b\\*c"


def test_clean_text_makes_every_control_character_visible():
    """Are ESC, BEL, bidi overrides and surrogates turned into visible escapes, and long text cut?"""
    assert clean_text("\x1b[2J\x07\u202e\ud800ok") == "\\x1b[2J\\x07\\u202e\\ud800ok"
    assert clean_text("x" * 10, cap=4) == "xxxx… (6 more characters cut)"
    assert clean_text(None) == "" and clean_text(3) == "3"
    assert csv_cell("=1+1") == "'=1+1" and csv_cell(3) == 3 and csv_cell("-x") == "'-x"


def test_folder_names_become_safe_unique_file_names():
    """Do '..', slashes and markup in a student's folder name give a plain, unique name?"""
    used: set = set()
    names = [safe_filename(n, used) for n in ["../../etc", "a/b", "A/B", "<b>x</b>", ""]]
    assert names == ["etc", "a_b", "A_B-2", "b_x_b_", "student"]


def test_the_reference_copy_note_reaches_the_students_page():
    """Does the grader's note that a submission equals the reference solutions appear on its feedback
    page and Markdown, with the points as graded?"""
    from course_utils.grading.feedback import feedback_html
    from course_utils.grading.similarity import REFERENCE_COPY_NOTE

    row = next(r for r in class_rows() if r["student"] == "cho" and r["notebook"] == "01-execution-providers")
    row["notes"] = [f"{REFERENCE_COPY_NOTE} in 3 of 3 attempted exercises (01.1, 01.2, 01.3)"]
    assert f"- {REFERENCE_COPY_NOTE} in 3 of 3 attempted exercises" in feedback_markdown(row)
    page = feedback_html(row)
    assert f"{REFERENCE_COPY_NOTE} in 3 of 3" in page.split("<h2>Notes</h2>")[1]
    assert "<strong>Total: 6/6</strong>" in page
