"""Grading results: each submission's record and score table, JSON and CSV, shares, merges.

Covers: ``NotebookGrade`` and ``ExerciseGrade`` (what grading one submission gives,
and the table an instructor reads), which submissions ``grade --shard K/N`` takes, the rows of the JSON and CSV
files, writing them atomically, and ``grade --merge`` combining the JSON parts of
shard runs into exactly what one run writes. Does not cover: grading itself
(``grader.py``).
"""
from __future__ import annotations

import csv
import io
import json
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..checks import NEEDS_BROWSER
from ..datafiles import read_json
from ..errors import InvalidArgumentError
from ..paths import shown, write_atomic
from ..scores import format_score_table

__all__ = ["NotebookGrade", "ExerciseGrade", "PASSED", "FAILED", "NEEDS_BROWSER", "STATUSES", "select_shard", "payload", "write_results", "merge_parts",
           "safe_text", "student_text", "escape_invisible", "defuse_formula", "check_grades",
           "FEEDBACK_CHARS", "MAX_GRADES_BYTES"]

#: The longest feedback one exercise carries (characters, after escaping).
FEEDBACK_CHARS = 400
_LINE_CHARS = 600  # an error, a note, a path or a student's name


def safe_text(text, limit: int = _LINE_CHARS) -> str:
    """``text`` as one printable line: control, format and surrogate characters escaped, length capped.

    Whatever a record holds passes through here, so a terminal, a CSV reader or a
    page only ever receives printable characters (no ESC sequences, no bidi
    overrides, no line breaks that forge a row) and never more than ``limit``
    characters of any one field.
    """
    text = "" if text is None else str(text)
    if len(text) > 4 * limit:
        text = text[:4 * limit]
    clean = escape_invisible(text)
    return clean if len(clean) <= limit else clean[:limit - 1] + "\u2026"


def student_text(name) -> str:
    """A student's (folder) name as the records hold it: escaped like :func:`safe_text`, with
    backslashes doubled and not cut short (4096 characters at most), so two names never read the same.

    A name comes from one path component (at most 255 bytes on Linux), so it stays short; two
    folders whose names would escape alike (an ESC byte and the four characters ``\\x1b``)
    stay two students for the exports (``identity.py``).
    """
    text = "" if name is None else str(name)
    return escape_invisible(text[:4096].replace("\\", "\\\\"))


#: What a spreadsheet reads as the start of a formula (OWASP's list, with the full-width forms).
_FORMULA_STARTS = tuple("=+-@\uff1d\uff0b\uff0d\uff20")


def defuse_formula(text: str) -> str:
    """``text`` as a CSV cell no spreadsheet runs: a leading quote where it would start a formula.

    A cell is a formula when its first character, or its first after spaces, tabs or line
    breaks, is one of ``= + - @`` (or their full-width forms), or when it starts with a tab
    or a carriage return; such a cell gets a leading ``'``, which spreadsheets show as text.
    """
    text = str(text)
    if text[:1] in ("\t", "\r", "\n") or text.lstrip(" \t\r\n").startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def escape_invisible(text: str, keep_lines: bool = False) -> str:
    """Control, format, private and surrogate characters as visible escapes (``\\x1b``, ``\\u202e``).

    ``keep_lines`` leaves newlines and tabs as they are (for pages that show several lines).
    """
    out = []
    for char in text:
        code = ord(char)
        if keep_lines and char in "\n\t":
            out.append(char)
        elif code < 0x20 or 0x7F <= code < 0xA0:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code < 0xE000 or unicodedata.category(char) in ("Cf", "Co", "Cn", "Zl", "Zp"):
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


#: An exercise's ``status``: its checks passed, failed, or could not run on the grader's machine.
PASSED, FAILED = "passed", "failed"
STATUSES = (PASSED, FAILED, NEEDS_BROWSER)


@dataclass
class ExerciseGrade:
    """One exercise of one submission (its feedback made safe to print on creation).

    ``status`` is ``"passed"``, ``"failed"`` or ``"needs a browser to grade"`` (its checks run
    the answer in a browser and the grader could drive none: 0 points *for now*, never a
    fail; grade it again where Chromium runs); by default it follows ``passed``.
    """

    exercise: str
    points: int
    max_points: int
    passed: bool
    feedback: str
    status: str = ""

    def __post_init__(self):
        if not self.status:
            self.status = PASSED if self.passed else FAILED
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    def __setattr__(self, name, value):
        if name in ("exercise", "feedback") and value is not None:
            value = safe_text(value, FEEDBACK_CHARS if name == "feedback" else 40)
        object.__setattr__(self, name, value)

    @property
    def result(self) -> str | bool:
        """What the score table's result column shows: pass/fail, or why it is not graded."""
        return NEEDS_BROWSER if self.status == NEEDS_BROWSER else self.passed


class _Notes(list):
    """Notes of a record: each one escaped and capped as it is added."""

    def append(self, note):
        super().append(safe_text(note))

    def extend(self, notes):
        super().extend(safe_text(n) for n in notes)


@dataclass
class NotebookGrade:
    """One submission: its exercises, or the reason it could not be graded.

    Every text field (path, student, notebook, error, notes) is escaped and capped
    when it is set (:func:`safe_text`), so each writer of the results inherits it.
    ``duplicate_of`` names the submission graded instead of this one (the same
    student's same course notebook handed in twice).
    """

    path: str
    student: str
    notebook: str | None = None
    exercises: list[ExerciseGrade] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    duplicate_of: str | None = None

    def __setattr__(self, name, value):
        if name == "student" and value is not None:
            value = student_text(value)
        elif name in ("path", "notebook", "error", "duplicate_of") and value is not None:
            value = safe_text(value)
        elif name == "notes":
            value = _Notes(safe_text(n) for n in value)
        object.__setattr__(self, name, value)

    @property
    def points(self) -> int:
        return sum(e.points for e in self.exercises)

    @property
    def max_points(self) -> int:
        return sum(e.max_points for e in self.exercises)

    def table(self) -> str:
        """The score table an instructor reads."""
        return format_score_table(f"{self.path} ({self.student})",
                                  [(e.exercise, e.points, e.max_points, e.result, e.feedback)
                                   for e in self.exercises],
                                  notes=self.notes, seconds=self.seconds, error=self.error)


def select_shard(submissions, shard: str | None):
    """Number every submission, then keep the share ``K/N`` (every N-th, from the K-th)."""
    numbered = list(enumerate(submissions))
    if not shard:
        return numbered
    try:
        k, n = (int(v) for v in shard.split("/"))
        if not 1 <= k <= n:
            raise ValueError
    except ValueError:
        raise InvalidArgumentError(f"--shard {shard!r}: give K/N with 1 <= K <= N, e.g. 1/4") from None
    return [(i, s) for i, s in numbered if i % n == k - 1]


def payload(grades, order=None) -> list[dict]:
    rows = []
    for index, g in enumerate(grades):
        row = {**{k: v for k, v in asdict(g).items() if k != "exercises"},
               "points": g.points, "max_points": g.max_points,
               "exercises": {e.exercise: {k: v for k, v in asdict(e).items() if k != "exercise"}
                             for e in g.exercises}}
        if order is not None:
            row["order"] = order[index]
        rows.append(row)
    return rows


def _atomic_write(path, text: str) -> None:
    write_atomic(path, text, mode=0o600)  # grades: readable by their owner only


def _csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student", "notebook", "exercise", "points", "max_points", "passed", "feedback",
                     "status"])

    def row(*cells):  # every text cell defused: a student's name or file name may read as a formula
        writer.writerow([defuse_formula(c) if isinstance(c, str) else c for c in cells])

    for g in rows:
        if g["error"]:
            row(g["student"], g["notebook"] or Path(g["path"]).name, "", 0, "", False, g["error"],
                "not graded")
        for exercise, e in g["exercises"].items():
            row(g["student"], g["notebook"], exercise, e["points"], e["max_points"], e["passed"],
                e["feedback"], e.get("status") or (PASSED if e["passed"] else FAILED))
    return buffer.getvalue()


def write_results(rows: list[dict], json_path, csv_path) -> None:
    if json_path:
        _atomic_write(json_path, json.dumps(rows, indent=2))
    if csv_path:
        _atomic_write(csv_path, _csv_text(rows))


#: A grades file larger than this is refused (a class of thousands stays far below).
MAX_GRADES_BYTES = 256 * 2**20
#: How deeply a grades file nests: rows, a row, its exercises, one exercise, a list in it.
MAX_GRADES_DEPTH = 16

# The fields of a grades file's rows and exercises the pages read, and the types they need
# (each may also be missing or null).
_ROW_FIELDS = {"path": str, "notebook": str, "error": str, "notes": list, "duplicates": list,
               "points": float, "max_points": float, "seconds": float}
_EXERCISE_FIELDS = {"points": float, "max_points": float, "passed": bool, "feedback": str, "status": str}
_TYPE_WORDS = {str: "text", list: "a list of texts", float: "a number", bool: "true or false"}


def _wrong_type(value, kind) -> bool:
    if value is None:
        return False
    if kind is float:
        return (isinstance(value, bool) or not isinstance(value, (int, float))
                or value != value or value in (float("inf"), float("-inf")))
    if kind is list:
        return not isinstance(value, list) or not all(isinstance(v, str) for v in value)
    return not isinstance(value, kind)


def _problems(row: dict, part: bool) -> list[str]:
    """What is off in one row of a grades file, first problem first."""
    if "student" not in row or not isinstance(row.get("exercises"), dict):
        return ["it lacks 'student' or its 'exercises' object"]
    problems = []
    if part and (isinstance(row.get("order"), bool) or not isinstance(row.get("order"), int)):
        problems.append("its 'order' is not a whole number (the submission's place)")
    problems += [f"'{name}' is {type(row[name]).__name__}, expected {_TYPE_WORDS[kind]}"
                 for name, kind in _ROW_FIELDS.items() if _wrong_type(row.get(name), kind)]
    for exercise, entry in row["exercises"].items():
        name = safe_text(exercise, 20)
        if not isinstance(entry, dict):
            problems.append(f"exercise {name!r} is {type(entry).__name__}, expected an object")
            continue
        problems += [f"exercise {name!r}: '{field}' is {type(entry[field]).__name__}, expected "
                     f"{_TYPE_WORDS[kind]}" for field, kind in _EXERCISE_FIELDS.items()
                     if _wrong_type(entry.get(field), kind)]
    return problems


def check_grades(rows, where: str, *, part: bool = False) -> list:
    """Refuse a grades file whose rows do not have the shape the pages read, naming the first
    field that is off (a field may be missing or null; one that is there has its type).

    Raises:
        InvalidArgumentError: the first row or field that is not what ``grade --json`` writes.
    """
    written_by = "grade --shard K/N --json" if part else "grade --json (or grade --merge)"
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InvalidArgumentError(f"{where} is not a grades file: expected the list of notebooks "
                                   f"that {written_by} writes, each a JSON object")
    for index, row in enumerate(rows, start=1):
        problems = _problems(row, part)
        if problems:
            who = f"row {index}" + (f" (student {safe_text(row['student'], 40)!r})"
                                    if isinstance(row.get("student"), str) else "")
            raise InvalidArgumentError(f"{where}, {who}: {problems[0]}; this is not what "
                                       f"{written_by} writes: give that file (or mend the field)")
    return rows


def merge_parts(parts, json_path=None, csv_path=None) -> list[dict]:
    """Combine the JSON files of ``grade --shard K/N`` runs into what one run writes."""
    rows = []
    for part in parts:
        data = read_json(part, "part of grade --shard", max_bytes=MAX_GRADES_BYTES,
                         max_depth=MAX_GRADES_DEPTH,
                         next_step="give the JSON files that grade --shard K/N --json wrote")
        rows.extend(check_grades(data, shown(part), part=True))  # an 'order' in every row too
    rows.sort(key=lambda r: r["order"])
    orders = [r["order"] for r in rows]
    if len(set(orders)) != len(orders):
        raise InvalidArgumentError("the parts overlap: give each shard's JSON once")
    if orders != list(range(len(orders))):
        missing = sorted(set(range(max(orders) + 1)) - set(orders)) if orders else []
        raise InvalidArgumentError(f"a shard is missing: submissions {missing[:5]} are in no part")
    for row in rows:
        del row["order"]
    write_results(rows, json_path, csv_path)
    return rows
