"""Feedback a student can read: one HTML and one Markdown file per student and notebook.

Covers: :func:`write_feedback`, from the rows of a grades file (``grade --json``)
to ``DIR/<student>/<notebook>.html`` and ``.md``: each exercise's points,
pass/fail and the check's words, the notes (cells stopped, timeouts, duplicated
cells), the total and the time taken. Only what the grades file holds is shown:
never a check's source, a hidden check's constants or a reference solution.
Every string is treated as hostile (``pages.py``): the HTML page runs no script
and asks for nothing over the network, the Markdown carries no markup a
renderer would act on. Does not cover: the class report (``report.py``).
"""
from __future__ import annotations

from pathlib import Path

from ..checks import NEEDS_BROWSER
from .identity import feedback_folder
from .pages import html_page, html_text, markdown_text, safe_filename, text_list, write_text

__all__ = ["write_feedback"]

_HIDDEN_NOTE = ("The grader ran further checks than the ones in your notebook; the words above are "
                "all it says about them.")


def _notes(row: dict) -> list[str]:
    notes = text_list(row.get("notes"))
    notes += [f"duplicated cell: {d}" for d in text_list(row.get("duplicates"))]
    return notes


def _title(row: dict) -> str:
    return str(row.get("notebook") or Path(str(row.get("path", "notebook"))).name)


def _exercise_rows(row: dict):
    """(exercise, points, max points, result word, its CSS class, feedback) per exercise."""
    for exercise, e in sorted((row.get("exercises") or {}).items()):
        e = e if isinstance(e, dict) else {}
        if e.get("status") == NEEDS_BROWSER:  # 0 points for now, not a fail
            result, kind = "not graded yet", "muted"
        else:
            result, kind = ("pass", "pass") if e.get("passed") else ("FAIL", "fail")
        yield exercise, e.get("points", 0), e.get("max_points", 0), result, kind, e.get("feedback", "")


def feedback_html(row: dict) -> str:
    """The HTML page of one graded notebook (see the module docstring)."""
    title = _title(row)
    parts = [f"<h1>Feedback: {html_text(title, 200)}</h1>",
             f"<p>Student: <strong>{html_text(row.get('student'), 200)}</strong></p>"]
    if row.get("error"):
        parts.append(f"<p class=\"fail\">This notebook could not be graded: {html_text(row['error'])}</p>")
    else:
        cells = "".join(
            f"<tr><td>{html_text(ex, 40)}</td><td class=\"num\">{html_text(p, 20)}/{html_text(m, 20)}</td>"
            f"<td class=\"{kind}\">{result}</td>"
            f"<td class=\"text wide\">{html_text(fb)}</td></tr>"
            for ex, p, m, result, kind, fb in _exercise_rows(row))
        parts.append("<table><thead><tr><th>exercise</th><th class=\"num\">points</th><th>result</th>"
                     f"<th>feedback</th></tr></thead><tbody>{cells}</tbody></table>")
        parts.append(f"<p><strong>Total: {html_text(row.get('points'), 20)}/"
                     f"{html_text(row.get('max_points'), 20)}</strong> "
                     f"<span class=\"muted\">(graded in {_seconds(row)} s)</span></p>")
    notes = _notes(row)
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li class=\"text\">{html_text(n)}</li>" for n in notes)
                     + "</ul>")
    parts.append(f"<p class=\"muted\">{_HIDDEN_NOTE}</p>")
    return html_page(f"Feedback: {title}", "\n".join(parts))


def _seconds(row: dict) -> str:
    try:
        return f"{float(row.get('seconds') or 0):.0f}"
    except (TypeError, ValueError):
        return "?"


def feedback_markdown(row: dict) -> str:
    """The Markdown text of one graded notebook (every mark escaped)."""
    lines = [f"# Feedback: {markdown_text(_title(row), 200)}", "",
             f"Student: {markdown_text(row.get('student'), 200)}", ""]
    if row.get("error"):
        lines += [f"This notebook could not be graded: {markdown_text(row['error'])}", ""]
    else:
        lines += ["| exercise | points | result | feedback |", "| --- | ---: | --- | --- |"]
        lines += [f"| {markdown_text(ex, 40)} | {markdown_text(p, 20)}/{markdown_text(m, 20)} | "
                  f"{result} | {markdown_text(fb)} |" for ex, p, m, result, _, fb in _exercise_rows(row)]
        lines += ["", f"**Total: {markdown_text(row.get('points'), 20)}/{markdown_text(row.get('max_points'), 20)}** "
                      f"(graded in {_seconds(row)} s)", ""]
    notes = _notes(row)
    if notes:
        lines += ["## Notes", ""] + [f"- {markdown_text(n)}" for n in notes] + [""]
    lines += [_HIDDEN_NOTE, ""]
    return "\n".join(lines)


def write_feedback(rows: list[dict], folder) -> list[Path]:
    """Write ``FOLDER/<student>/<notebook>.html`` and ``.md`` for every row of a grades file.

    A duplicate (a file that gave way to the same student's graded copy, ``duplicate_of``)
    gets no page: the graded copy's notes name it. Each student's folder is theirs alone
    (``identity.feedback_folder``): a name that is not a plain folder name becomes
    ``_<name>_<hash>``, which no other student's can be.

    Args:
        rows: the rows of ``grade --json`` (or ``--merge``).
        folder: where the files go (created).

    Returns:
        The HTML files written, in the rows' order.

    Example:
        >>> from course_utils.grading.pages import read_grades
        >>> write_feedback(read_grades("grades.json"), "feedback/")  # doctest: +SKIP
    """
    folder = Path(folder)
    students: dict[str, str] = {}
    used_students: set = set()
    used_files: dict[str, set] = {}
    written = []
    for row in rows:
        if row.get("duplicate_of"):
            continue
        key = str(row.get("student"))
        if key not in students:
            students[key] = feedback_folder(key, used_students)
        name = safe_filename(Path(_title(row)).stem, used_files.setdefault(students[key], set()))
        page = folder / students[key] / f"{name}.html"
        write_text(page, feedback_html(row))
        write_text(folder / students[key] / f"{name}.md", feedback_markdown(row))
        written.append(page)
    return written
