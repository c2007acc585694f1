"""Gradebook exports from a grades file: a Canvas import CSV and Gradescope's results.json.

Covers: :func:`canvas_csv` and :func:`gradescope_results`, and ``python -m
course_utils gradebook canvas|gradescope``. Both start from the merged JSON of
``grade --json`` (or ``grade --merge``); every string in it is treated as hostile
(``pages.py``).

Canvas (gradebook import). The columns follow Canvas' documented import layout:
``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section``, then one column
per assignment, one row per student; a student is identified by one of the first
three and the file is UTF-8 CSV (Canvas Instructor Guide, "How do I import grades
in the Gradebook?", restated with the required columns at
https://teaching.resources.osu.edu/toolsets/carmencanvas/guides/calculating-final-grades/import-csv-file-carmen-grades;
CSV quoting as in https://developerdocs.instructure.com/services/canvas/sis/file.sis_csv).
The roster is Canvas' own gradebook export (or any CSV with those five columns),
optionally with a ``folder`` column naming each student's submission folder;
without it a folder matches a student's SIS Login ID, SIS User ID or ID (who a
folder is follows ``identity.py``, the grader's own rule). One column per course
notebook holds the notebook's total (``--column NOTEBOOK=HEADER`` names an existing
Canvas assignment, e.g. ``"Notebook 00 (12345)"``); every text cell is defused so
that no spreadsheet reads it as a formula. Roster students without a submission keep
an empty cell (Canvas leaves the grade as it was); submissions whose folder matches
nobody, or that another folder's claims to the same student, are listed, never dropped; so is
a notebook with an exercise that needs a browser to grade (its total would read as a 0 there).

Gradescope (autograder output). ``results.json`` follows the Autograder
Specifications (https://gradescope-autograders.readthedocs.io/en/latest/specs/):
a top-level ``score``, ``execution_time``, ``output``, ``visibility`` and
``stdout_visibility``, and ``tests``, one per exercise, each with ``name``,
``number``, ``score``, ``max_score``, ``status`` (``passed``/``failed``; an exercise that
needs a browser to grade is ``failed`` with 0 points there, its output and the submission's
output say it is not graded yet),
``output`` (the check's words) and ``output_format`` ``"text"`` (shown as plain
text). ``autograder/run_autograder`` beside this module is the script Gradescope
runs for each submission (``autograder/setup.sh`` installs the course); it
grades ``/autograder/submission`` with this grader, in its sandbox, and writes
``/autograder/results/results.json`` with :func:`gradescope_results`.
Does not cover: grading (``grader.py``).
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..checks import NEEDS_BROWSER
from ..datafiles import read_table
from ..errors import InvalidArgumentError
from ..options import path_arg
from ..paths import PathPlan
from .identity import graded_rows, student_key
from .pages import as_number, clean_text, csv_cell, read_grades, text_list, write_text

__all__ = ["canvas_csv", "read_roster", "gradescope_results", "CANVAS_COLUMNS", "add_cli"]

#: The student columns of a Canvas gradebook import, in Canvas' order.
CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
_MATCH_ORDER = ["SIS Login ID", "SIS User ID", "ID"]
_MAX_OUTPUT = 8000  # characters of one test's output


#: A roster larger than this is refused (Canvas' export of a class of thousands stays far below).
MAX_ROSTER_BYTES = 64 * 2**20


def read_roster(path) -> list[dict[str, str]]:
    """The students of a roster CSV (Canvas' gradebook export, or the five columns and ``folder``).

    The file may be UTF-8 (with or without a BOM), UTF-16, or the Windows code page Excel
    writes, separated by commas, semicolons or tabs (``datafiles.read_table``).
    """
    rows = read_table(path, "roster", columns=CANVAS_COLUMNS, max_bytes=MAX_ROSTER_BYTES,
                      next_step="give Canvas' gradebook export (Grades > Export > Export Entire "
                                "Gradebook), or a CSV with its columns and optionally 'folder'",
                      missing_hint="export the gradebook from Canvas (Grades > Export > Export "
                                   "Entire Gradebook) and give that file")
    students = []
    for row in rows:
        name = (row.get("Student") or "").strip()
        if not name or name.lower() in ("points possible", "student, test"):
            continue  # Canvas' export has a 'Points Possible' row and a test student
        students.append({k: (row.get(k) or "").strip() for k in [*CANVAS_COLUMNS, "folder"]})
    return students


def _columns(rows, mapping: dict[str, str]) -> list[tuple[str, str]]:
    # Only course notebooks the grader identified make columns: a file's own name never does.
    notebooks = sorted({str(r["notebook"]) for r in rows if r.get("notebook")})
    unknown = set(mapping) - set(notebooks)
    if unknown:
        raise InvalidArgumentError(f"--column names notebook(s) {sorted(unknown)} that the grades file "
                                   f"does not hold (it holds {notebooks})")
    return [(n, mapping.get(n, n)) for n in notebooks]


def _roster_keys(student: dict) -> list[str]:
    return [student["folder"]] if student.get("folder") else [student[c] for c in _MATCH_ORDER if student[c]]


def _waiting(row: dict) -> list[str]:
    """The exercises of a grades row that are not graded yet (no browser on the grader's machine)."""
    exercises = row.get("exercises") if isinstance(row.get("exercises"), dict) else {}
    return sorted(clean_text(name, 20) for name, e in exercises.items()
                  if isinstance(e, dict) and e.get("status") == NEEDS_BROWSER)


def canvas_csv(rows: list[dict], roster: list[dict[str, str]], columns: dict[str, str] | None = None):
    """The text of a Canvas gradebook import CSV and the submissions it does not hold.

    Who a row belongs to follows ``identity.py``, the grader's own rule: a folder matches the
    roster student whose ``folder`` (else SIS Login ID, SIS User ID or ID) is its name, with
    letter case and Unicode compatibility folded; duplicates give way to the graded copy; where
    two folders reach one roster student, the one named exactly as the roster says is theirs,
    and without such a one none is written. Nothing is merged or dropped silently: every
    submission left out is listed with why.

    Args:
        rows: the rows of a grades file.
        roster: from :func:`read_roster`.
        columns: notebook -> Canvas column header (default: the notebook's name).

    Returns:
        ``(csv_text, left_out)``: ``left_out`` lists ``(folder, notebook, points, why)`` for each
        submission not in the CSV (it matches no roster student, or another folder claims
        the same student and notebook).

    Example:
        >>> text, left_out = canvas_csv(read_grades("grades.json"), read_roster("canvas.csv"))  # doctest: +SKIP
    """
    found = graded_rows(rows)
    headers = _columns(found.rows + [r for _, group in found.collisions for r in group], columns or {})
    by_key: dict[str, set[int]] = {}
    for index, student in enumerate(roster):
        for key in _roster_keys(student):
            by_key.setdefault(student_key(key), set()).add(index)
    left_out = []

    def leave_out(row, why):
        points = as_number(row.get("points")) if not row.get("error") else 0
        left_out.append((str(row.get("student")), str(row.get("notebook") or Path(str(row.get("path", "?"))).name),
                         points, why))

    for notebook, group in found.collisions:
        for row in group:
            leave_out(row, f"graded {len(group)} times for this name (two folders given hold it)")
    claims: dict[int, dict[str, list[dict]]] = {}  # roster student -> folder name -> rows
    for row in found.rows:
        indices = by_key.get(student_key(row.get("student")), set())
        if not indices:
            leave_out(row, "matches no roster student")
        elif len(indices) > 1:
            leave_out(row, f"matches {len(indices)} roster students")
        elif not row.get("notebook"):
            leave_out(row, "could not be graded as any course notebook")
        elif _waiting(row):  # a total without them would read as a 0 for those exercises
            leave_out(row, f"exercise(s) {', '.join(_waiting(row))} {NEEDS_BROWSER}: grade again "
                           "where Chromium runs")
        else:
            claims.setdefault(next(iter(indices)), {}).setdefault(str(row.get("student")), []).append(row)
    scores: dict[int, dict[str, float]] = {}
    for index, by_name in claims.items():
        # Folders whose names fold to one roster student: the one named exactly as the roster
        # says is theirs; without such a one, none is.
        exact = [name for name in by_name if name in _roster_keys(roster[index])]
        chosen = next(iter(by_name)) if len(by_name) == 1 else exact[0] if len(exact) == 1 else None
        for name, owned in by_name.items():
            if name != chosen:
                others = ", ".join(sorted(n for n in by_name if n != name))
                for row in owned:
                    leave_out(row, f"the same roster student as folder(s) {others} (letter case or Unicode)")
                continue
            for row in owned:
                scores.setdefault(index, {})[str(row["notebook"])] = (
                    as_number(row.get("points")) if not row.get("error") else 0)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([*CANVAS_COLUMNS, *(csv_cell(header, 200) for _, header in headers)])
    for index, student in enumerate(roster):
        mine = scores.get(index, {})
        writer.writerow([*(csv_cell(student[c], 200) for c in CANVAS_COLUMNS),
                         *(mine.get(notebook, "") for notebook, _ in headers)])
    return buffer.getvalue(), left_out


def gradescope_results(rows: list[dict], student: str | None = None) -> dict:
    """Gradescope's ``results.json`` for one submission: one test per exercise of its notebooks.

    A Gradescope submission is one student: the rows must hold one student (``identity.py``'s
    rule), or ``student`` picks one; each notebook counts once (a duplicate gives way to the
    graded copy, and is named in the output).

    Args:
        rows: the rows of a grades file for one submission (Gradescope grades one at a time).
        student: keep only this student's rows (a grades file of several students).

    Raises:
        InvalidArgumentError: no row of ``student``, rows of several students and no
            ``student``, several names that fold to ``student``, or one notebook graded
            twice for the student (one name in two folders given).

    Example:
        >>> gradescope_results(read_grades("grades.json"))["tests"][0]["max_score"]  # doctest: +SKIP
        1
    """
    if student is not None:
        exact = [r for r in rows if str(r.get("student")) == student]
        rows = exact or [r for r in rows if student_key(r.get("student")) == student_key(student)]
        if not rows:
            raise InvalidArgumentError(f"the grades file has no notebook of student {clean_text(student, 80)!r}")
    names = sorted({str(r.get("student")) for r in rows})
    if len({student_key(n) for n in names}) > 1:
        raise InvalidArgumentError(f"the grades file holds {len(names)} students; a Gradescope result is "
                                   "one student's: give --student NAME")
    if len(names) > 1:
        raise InvalidArgumentError(f"folders {', '.join(clean_text(n, 80) for n in names)} differ only by "
                                   "letter case or Unicode form; give the one name exactly")
    found = graded_rows(rows)
    if found.collisions:
        notebook, group = found.collisions[0]
        raise InvalidArgumentError(
            f"notebook {clean_text(notebook, 80)} was graded {len(group)} times for one student (folders "
            f"{', '.join(clean_text(r.get('student'), 80) for r in group)}); grade one of them")
    tests, lines, seconds = [], [], 0.0
    for row in found.rows:
        notebook = clean_text(row.get("notebook") or Path(str(row.get("path", "?"))).name, 200)
        seconds += as_number(row.get("seconds"))
        if row.get("error"):
            lines.append(f"{notebook}: could not be graded: {clean_text(row['error'])}")
            continue
        lines.append(f"{notebook}: {as_number(row.get('points'))}/{as_number(row.get('max_points'))}")
        lines += [f"{notebook}: note: {clean_text(n)}" for n in text_list(row.get("notes"))]
        for exercise, e in sorted((row.get("exercises") or {}).items()):
            e = e if isinstance(e, dict) else {}
            passed = bool(e.get("passed"))
            if e.get("status") == NEEDS_BROWSER:  # Gradescope knows passed/failed only: say it twice
                lines.append(f"{notebook}: exercise {clean_text(exercise, 20)} {NEEDS_BROWSER}; its "
                             "points are not counted yet")
            tests.append({"name": f"Exercise {clean_text(exercise, 20)} ({notebook})",
                          "number": clean_text(exercise, 20),
                          "score": float(as_number(e.get("points"))),
                          "max_score": float(as_number(e.get("max_points"))),
                          "status": "passed" if passed else "failed",
                          "output": clean_text(e.get("feedback", ""), _MAX_OUTPUT),
                          "output_format": "text", "visibility": "visible"})
    lines += [f"{clean_text(Path(str(r.get('path', '?'))).name, 200)}: not graded, the same notebook as "
              f"{clean_text(Path(str(r.get('duplicate_of'))).name, 200)}" for r in found.duplicates]
    if not lines:
        lines.append("no notebook was found in the submission: upload the .ipynb file(s) of the exercises")
    return {"score": sum(t["score"] for t in tests), "execution_time": round(seconds),
            "output": "\n".join(lines), "output_format": "text", "visibility": "visible",
            "stdout_visibility": "hidden", "tests": tests}


def _parse_columns(items) -> dict[str, str]:
    mapping = {}
    for item in items or []:
        notebook, sep, header = item.partition("=")
        if not sep or not notebook or not header:
            raise InvalidArgumentError(f"--column {item!r}: give NOTEBOOK=HEADER, "
                                       "e.g. 00-install-check='Notebook 00 (12345)'")
        mapping[notebook] = header
    return mapping


def _run_cli(args) -> int:
    plan = PathPlan()  # every path before the work: --out is neither the grades nor the roster
    plan.input_file(args.grades, "grades file", missing_hint="write it with `python -m "
                    "course_utils grade SUBMISSIONS/ --json grades.json`")
    if args.roster:
        plan.input_file(args.roster, "roster", missing_hint="export the gradebook from Canvas "
                        "(Grades > Export > Export Entire Gradebook) and give that file")
    plan.output_file(args.out, "--out")
    rows = read_grades(args.grades)
    if args.format == "canvas":
        if not args.roster:
            raise InvalidArgumentError("gradebook canvas needs --roster ROSTER.csv (Canvas' gradebook export)")
        text, left_out = canvas_csv(rows, read_roster(args.roster), _parse_columns(args.column))
        write_text(args.out, text)
        print(f"wrote {args.out}: import it in Canvas (Grades > Import)")
        if left_out:
            print(f"{len(left_out)} submission(s) are not in {args.out} (a 'folder' column in the roster "
                  "says which folder is whose):")
            for folder, notebook, points, why in left_out:
                print(f"  {clean_text(folder, 200, newlines=False)}  {clean_text(notebook, 200, newlines=False)}  "
                      f"{points} points: {why}")
            return 1
        return 0
    write_text(args.out, json.dumps(gradescope_results(rows, args.student), indent=2))
    print(f"wrote {args.out}")
    return 0


def add_cli(subparsers) -> None:
    """Register ``gradebook``."""
    parser = subparsers.add_parser("gradebook", help="gradebook export from a grades JSON file: "
                                   "a Canvas import CSV or Gradescope's results.json")
    parser.add_argument("format", choices=["canvas", "gradescope"])
    parser.add_argument("grades", type=path_arg("GRADES"),
                        help="the JSON file of grade --json (or grade --merge)")
    parser.add_argument("--out", type=path_arg("--out"),
                        required=True, metavar="FILE",
                        help="the CSV (canvas) or results.json (gradescope)")
    parser.add_argument("--roster", type=path_arg("--roster"),
                        metavar="CSV", help="canvas: Canvas' gradebook export (or its five "
                        "student columns, optionally with 'folder')")
    parser.add_argument("--column", action="append", metavar="NOTEBOOK=HEADER",
                        help="canvas: the Canvas column of a notebook's total (default: its name)")
    parser.add_argument("--student", metavar="NAME", help="gradescope: this student's notebooks only")
    parser.set_defaults(func=_run_cli)
