"""The class report: what a grades file says about the class, as a page, two plots and CSV.

Covers: :func:`class_statistics` (per exercise: submissions, pass rate, mean
points, the three most common failing feedback lines, time-outs, errors, not
attempted; per notebook: the totals and their distribution), :func:`write_report`
(``report.html``, the two plots of ``plots.py``, ``exercises.csv``,
``totals.csv``, ``similar.csv``), the ``report`` subcommand over an existing
grades file, and :func:`after_grading`, which ``grade --feedback/--report``
calls. The similar pairs come from ``similarity.py`` and never change a score;
so do the submissions the grader noted as equal to the reference solutions
(:func:`reference_copies`, read from the grades file's notes).
Does not cover: grading (``grader.py``) or the students' pages (``feedback.py``).
"""
from __future__ import annotations

import base64
import csv
import io
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..errors import InvalidArgumentError
from ..options import add_number, path_arg
from ..paths import PathPlan, write_atomic
from .identity import graded_rows
from .pages import as_number, clean_text, csv_cell, html_page, html_text, read_grades, text_list, write_text
from .plots import plot_pass_rates, plot_totals
from .similarity import METHOD, REFERENCE_COPY_NOTE, THRESHOLD, Similarity, find_similar
from .verdicts import NOT_ATTEMPTED

__all__ = ["class_statistics", "reference_copies", "write_report", "after_grading", "ExerciseStats",
           "NotebookStats", "add_cli"]

# Words of the grader's feedback (verdicts.status_text) that say how a cell ended.
_TIMEOUT = "ran longer than"
_ERRORS = ("the cell raised", "the kernel died", "printed more than", "not graded:",
           "could not read", "the kernel could not be rebuilt")
_COMMON_LINE_CHARS = 300


@dataclass
class ExerciseStats:
    """One exercise across the class."""

    notebook: str
    exercise: str
    max_points: int
    submissions: int = 0
    passed: int = 0
    points: int = 0
    timeouts: int = 0
    errors: int = 0
    not_attempted: int = 0
    failures: Counter = field(default_factory=Counter)

    @property
    def pass_rate(self) -> float:
        return self.passed / self.submissions if self.submissions else 0.0

    @property
    def mean_points(self) -> float:
        return self.points / self.submissions if self.submissions else 0.0

    def common_failures(self, n: int = 3) -> list[tuple[str, int]]:
        """The ``n`` most common failing feedback lines with their counts (ties: alphabetical)."""
        return sorted(self.failures.items(), key=lambda item: (-item[1], item[0]))[:n]


@dataclass
class NotebookStats:
    """One notebook across the class: its totals."""

    notebook: str
    max_points: int = 0
    totals: list[int] = field(default_factory=list)
    not_graded: list[tuple[str, str]] = field(default_factory=list)  # (student, why)

    def distribution(self) -> dict[int, int]:
        """How many students scored each total from 0 to the notebook's points."""
        counts = Counter(self.totals)
        return {total: counts.get(total, 0) for total in range(max([self.max_points, *self.totals]) + 1)}

    def summary(self) -> dict[str, float]:
        if not self.totals:
            return {}
        return {"mean": statistics.fmean(self.totals), "median": statistics.median(self.totals),
                "min": min(self.totals), "max": max(self.totals)}


def _number(value) -> int:
    return int(as_number(value))


def _failure_line(feedback) -> str:
    text = clean_text(feedback, _COMMON_LINE_CHARS, newlines=False)
    return text or "(no feedback)"


def class_statistics(rows: list[dict]) -> tuple[list[ExerciseStats], list[NotebookStats]]:
    """Per exercise and per notebook figures of a grades file's rows.

    A notebook that could not be graded counts in its notebook's ``not_graded``,
    not in the exercises' submissions; so does a notebook graded twice for one name
    (``identity.py``: each student and notebook counts once).

    Example:
        >>> exercises, notebooks = class_statistics(read_grades("grades.json"))  # doctest: +SKIP
        >>> [(e.exercise, round(e.pass_rate, 2)) for e in exercises]  # doctest: +SKIP
    """
    exercises: dict[tuple[str, str], ExerciseStats] = {}
    notebooks: dict[str, NotebookStats] = {}
    found = graded_rows(rows)
    twice = {id(row): len(group) for _, group in found.collisions for row in group}
    for row in rows:
        name = str(row.get("notebook") or Path(str(row.get("path", "?"))).name)
        stats = notebooks.setdefault(name, NotebookStats(name))
        if row.get("error"):
            stats.not_graded.append((str(row.get("student")), str(row["error"])))
            continue
        if id(row) in twice:
            stats.not_graded.append((str(row.get("student")), f"graded {twice[id(row)]} times for this "
                                     "name (two folders given hold it): counted in no figure"))
            continue
        total = 0
        for exercise, e in (row.get("exercises") or {}).items():
            e = e if isinstance(e, dict) else {}
            key = (name, str(exercise))
            item = exercises.setdefault(key, ExerciseStats(name, str(exercise), 0))
            item.max_points = max(item.max_points, _number(e.get("max_points")))
            points = _number(e.get("points"))
            item.submissions += 1
            item.points += points
            total += points
            if e.get("passed"):
                item.passed += 1
                continue
            feedback = str(e.get("feedback", ""))
            item.failures[_failure_line(feedback)] += 1
            if feedback.startswith(NOT_ATTEMPTED):
                item.not_attempted += 1
            elif _TIMEOUT in feedback:
                item.timeouts += 1
            elif any(word in feedback for word in _ERRORS):
                item.errors += 1
        stats.totals.append(total)
        stats.max_points = max(stats.max_points, _number(row.get("max_points")))
    ordered = sorted(exercises.values(), key=lambda e: (e.notebook, e.exercise))
    return ordered, sorted(notebooks.values(), key=lambda n: n.notebook)


# ---------------------------------------------------------------- files

def _csv(header, rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows([[csv_cell(c) for c in row] for row in rows])
    return buffer.getvalue()


def _exercise_rows(exercises):
    for e in exercises:
        common = e.common_failures()
        common += [("", "")] * (3 - len(common))
        yield [e.notebook, e.exercise, e.max_points, e.submissions, e.passed, round(e.pass_rate, 4),
               round(e.mean_points, 4), e.timeouts, e.errors, e.not_attempted,
               *[value for pair in common for value in pair]]


_EXERCISE_HEADER = ["notebook", "exercise", "max_points", "submissions", "passed", "pass_rate", "mean_points",
                    "timeouts", "errors", "not_attempted", "failure_1", "count_1", "failure_2", "count_2",
                    "failure_3", "count_3"]


def _table(header, rows, numeric=(), table_id="", wide=()) -> str:
    num = ' class="num"'
    head = "".join(f"<th{num if i in numeric else ''}>{html_text(h, 80)}</th>" for i, h in enumerate(header))
    kinds = ["num" if i in numeric else "text wide" if i in wide else "text" for i in range(len(header))]
    body = "".join("<tr>" + "".join(f"<td class=\"{kinds[i]}\">{cell}</td>" for i, cell in enumerate(row))
                   + "</tr>" for row in rows)
    return f"<table id=\"{table_id}\"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _image(png: bytes, alt: str) -> str:
    return (f"<img alt=\"{html_text(alt, 200)}\" src=\"data:image/png;base64,"
            f"{base64.b64encode(png).decode('ascii')}\">")


def reference_copies(rows: list[dict]) -> list[tuple[str, str, str]]:
    """(notebook, student, note) of each submission the grader noted as equal to the reference solutions."""
    return [(str(row.get("notebook")), str(row.get("student")), note) for row in rows
            for note in text_list(row.get("notes")) if note.startswith(REFERENCE_COPY_NOTE)]


def report_html(exercises, notebooks, similarity: Similarity | None, pass_png: bytes,
                totals_png: bytes, students: int, copies=()) -> str:
    """The page of the class report (every string escaped, no script, no request)."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    graded = sum(len(n.totals) for n in notebooks)
    failed = sum(len(n.not_graded) for n in notebooks)
    parts = ["<h1>Class report</h1>",
             f"<p>{students} students, {graded + failed} submitted notebooks: {graded} graded, "
             f"{failed} could not be graded. Written {when}.</p>",
             "<h2>At a glance</h2>", "<div class=\"plots\">",
             _image(pass_png, "bar chart: pass rate per exercise"),
             _image(totals_png, "histograms: the students' totals per notebook"), "</div>",
             "<h2>Per exercise</h2>"]
    rows = []
    for e in exercises:
        failures = "<br>".join(f"{count} &times; {html_text(line, _COMMON_LINE_CHARS)}"
                               for line, count in e.common_failures()) or "<span class=\"muted\">none</span>"
        rows.append([html_text(e.notebook, 80), html_text(e.exercise, 20), str(e.submissions), str(e.passed),
                     f"{100 * e.pass_rate:.1f}", f"{e.mean_points:.2f} / {e.max_points}", str(e.timeouts),
                     str(e.errors), str(e.not_attempted), failures])
    parts.append(_table(["notebook", "exercise", "submissions", "passed", "pass rate (%)", "mean points",
                         "time-outs", "errors", "not attempted", "most common failing feedback"],
                        rows, numeric={2, 3, 4, 5, 6, 7, 8}, table_id="exercises", wide={9}))
    parts.append("<h2>Per notebook</h2>")
    rows = []
    for n in notebooks:
        s = n.summary()
        spread = ", ".join(f"{total}: {count}" for total, count in n.distribution().items() if count)
        rows.append([html_text(n.notebook, 80), str(len(n.totals)), str(len(n.not_graded)), str(n.max_points),
                     f"{s['mean']:.2f}" if s else "", f"{s['median']:g}" if s else "",
                     f"{s['min']}&ndash;{s['max']}" if s else "", html_text(spread or "none")])
    parts.append(_table(["notebook", "graded", "not graded", "points", "mean total", "median total",
                         "range", "totals (total: students)"], rows, numeric={1, 2, 3, 4, 5, 6},
                        table_id="notebooks"))
    not_graded = [(n.notebook, student, why) for n in notebooks for student, why in n.not_graded]
    if not_graded:
        parts.append("<h2>Notebooks that could not be graded</h2>")
        parts.append(_table(["notebook", "student", "why"], [[html_text(c) for c in row] for row in not_graded],
                            table_id="not-graded"))
    parts.append("<h2>Submissions equal to the reference solutions, for a person to look at</h2>")
    parts.append(_table(["notebook", "student", "the grader's note"],
                        [[html_text(n, 80), html_text(s, 200), html_text(note)] for n, s, note in copies],
                        table_id="reference-copies", wide={2})
                 if copies else "<p id=\"reference-copies\">None: no submission's exercise cells are "
                                "mostly the reference solutions (scores are never changed for it).</p>")
    parts.append("<h2>Similar submissions, for a person to look at</h2>")
    if similarity is None:
        parts.append("<p class=\"muted\">Not computed (--no-similarity).</p>")
    else:
        parts.append(f"<p class=\"muted\">{html_text(METHOD)} Threshold here: {similarity.threshold:.2f}; "
                     f"{similarity.compared} submissions compared.</p>")
        pairs = [[html_text(p.notebook, 80), html_text(p.students[0], 200), html_text(p.students[1], 200),
                  f"{p.score:.2f}", html_text(", ".join(p.exercises)), html_text(", ".join(p.identical) or "none"),
                  str(p.tokens)] for p in similarity.pairs]
        parts.append(_table(["notebook", "student", "student", "score", "exercises compared",
                             "identical after normalising", "tokens"], pairs, numeric={3, 6}, table_id="similar")
                     if pairs else "<p id=\"similar\">No pair reaches the threshold.</p>")
        if similarity.skipped:
            parts.append("<p>Not compared (the submitted file could not be read):</p><ul>" + "".join(
                f"<li class=\"text\">{html_text(s)} ({html_text(n)}): {html_text(why)}</li>"
                for s, n, why in similarity.skipped) + "</ul>")
    parts.append("<p class=\"muted\">The same figures are in exercises.csv, totals.csv and similar.csv "
                 "beside this page.</p>")
    return html_page("Class report", "\n".join(parts))


def write_report(rows: list[dict], folder, *, similarity: bool = True, base: Path | None = None,
                 threshold: float = THRESHOLD) -> Path:
    """Write the class report of a grades file's rows into ``folder``; return ``report.html``'s path.

    Args:
        rows: the rows of ``grade --json`` (or ``--merge``).
        folder: where ``report.html``, the two PNGs and the three CSVs go (created).
        similarity: False leaves out the comparison of submissions (it reads each one).
        base: the folder relative submission paths start from (default: the current one).
        threshold: the similarity score from which a pair is listed.

    Example:
        >>> write_report(read_grades("grades.json"), "report/")  # doctest: +SKIP
        PosixPath('report/report.html')
    """
    if not rows:
        raise InvalidArgumentError("the grades file holds no notebook; grade some submissions first")
    folder = Path(folder)
    exercises, notebooks = class_statistics(rows)
    found = find_similar(rows, base=base, threshold=threshold) if similarity else None
    pass_png, totals_png = plot_pass_rates(exercises), plot_totals(notebooks)
    write_atomic(folder / "pass-rates.png", pass_png)
    write_atomic(folder / "totals.png", totals_png)
    write_text(folder / "exercises.csv", _csv(_EXERCISE_HEADER, _exercise_rows(exercises)))
    totals = [[n.notebook, total, count] for n in notebooks for total, count in n.distribution().items()]
    write_text(folder / "totals.csv", _csv(["notebook", "total", "students"], totals))
    write_text(folder / "similar.csv", _csv(
        ["notebook", "student_a", "student_b", "score", "exercises", "identical", "tokens"],
        [[p.notebook, *p.students, round(p.score, 4), " ".join(p.exercises), " ".join(p.identical), p.tokens]
         for p in (found.pairs if found else [])]))
    students = len({str(r.get("student")) for r in rows})
    page = folder / "report.html"
    write_text(page, report_html(exercises, notebooks, found, pass_png, totals_png, students,
                                 copies=reference_copies(rows)))
    return page


def after_grading(rows: list[dict], feedback=None, report=None) -> list[str]:
    """What ``grade --feedback DIR --report DIR`` writes once the grades are; returns lines to print."""
    lines = []
    if feedback:
        from .feedback import write_feedback

        lines.append(f"wrote {len(write_feedback(rows, feedback))} feedback pages (and .md) in {feedback}")
    if report:
        lines.append(f"wrote {write_report(rows, report)}")
    return lines


#: The files ``write_report`` writes into its folder.
REPORT_FILES = ["report.html", "pass-rates.png", "totals.png", "exercises.csv", "totals.csv",
                "similar.csv"]


def _run_cli(args) -> int:
    plan = PathPlan()  # every path, before the work: the grades file, the submissions, the outputs
    plan.input_file(args.grades, "grades file", missing_hint="write it with `python -m "
                    "course_utils grade SUBMISSIONS/ --json grades.json`")
    if args.submissions_base:
        plan.input_folder(args.submissions_base, "--submissions-base folder")
    plan.output_folder(args.out, "--out folder", files=REPORT_FILES)
    if args.feedback:
        plan.output_folder(args.feedback, "--feedback folder")
    rows = read_grades(args.grades)
    for line in after_grading(rows, args.feedback, None):
        print(line)
    page = write_report(rows, args.out, similarity=not args.no_similarity,
                        base=Path(args.submissions_base) if args.submissions_base else None,
                        threshold=args.threshold)
    print(f"wrote {page} (with pass-rates.png, totals.png, exercises.csv, totals.csv, similar.csv)")
    return 0


def add_cli(subparsers) -> None:
    """Register ``report``."""
    parser = subparsers.add_parser("report", help="class report (and feedback pages) from a grades JSON file")
    parser.add_argument("grades", type=path_arg("GRADES"),
                        help="the JSON file of grade --json (or grade --merge)")
    parser.add_argument("--out", type=path_arg("--out"),
                        required=True, metavar="DIR", help="where report.html and its files go")
    parser.add_argument("--feedback", type=path_arg("--feedback"),
                        metavar="DIR", help="also write each student's feedback pages here")
    add_number(parser, "--threshold", kind=float, low=0, high=1, default=THRESHOLD, metavar="S",
               help="similarity score from which a pair is listed")
    parser.add_argument("--submissions-base", type=path_arg("--submissions-base"), metavar="DIR",
                        help="folder the grades file's relative submission paths start from (the current one)")
    parser.add_argument("--no-similarity", action="store_true", help="do not compare the submissions")
    parser.set_defaults(func=_run_cli)
