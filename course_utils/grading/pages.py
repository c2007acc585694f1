"""Text from the grader's JSON made safe to show, and the offline HTML page it goes into.

Covers: :func:`clean_text` (every string of a grades file is treated as hostile:
control characters, escape sequences, bidirectional overrides and lone surrogates
become visible escapes, and long strings are cut with a note), the escaping for
HTML (:func:`html_text`), Markdown (:func:`markdown_text`) and spreadsheets
(:func:`csv_cell`, which also defuses formulas), :func:`safe_filename` for names
taken from students' folders, :func:`html_page` (one self-contained page whose
Content-Security-Policy forbids every script and every request: styles inline,
pictures as ``data:`` URIs) and :func:`read_grades` / :func:`write_text` (atomic).
Does not cover: what the pages say (``feedback.py``, ``report.py``).
"""
from __future__ import annotations

import html
import re

from ..datafiles import read_json
from ..errors import InvalidArgumentError
from ..paths import shown, write_atomic
from .results import MAX_GRADES_BYTES, MAX_GRADES_DEPTH, check_grades, defuse_formula, escape_invisible

__all__ = ["clean_text", "text_list", "as_number", "html_text", "markdown_text", "csv_cell", "safe_filename",
           "html_page", "read_grades", "write_text", "MAX_TEXT", "CSP"]

#: Characters of one feedback line, note or name shown before it is cut.
MAX_TEXT = 2000
#: No script, no request of any kind; inline styles and data: pictures only.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
       "form-action 'none'")



def clean_text(value, cap: int = MAX_TEXT, *, newlines: bool = True) -> str:
    """``value`` as text a person can read and no terminal or page can act on.

    Args:
        value: anything (a grades file may hold a number where text was expected).
        cap: characters kept; the rest is cut, with a note of how many.
        newlines: False turns line breaks into spaces (one-line cells).

    Example:
        >>> clean_text("ok\\x1b[31m red", cap=8)
        'ok\\\\x1b[31m … (3 more characters cut)'
    """
    text = "" if value is None else value if isinstance(value, str) else str(value)
    more = len(text) - cap
    text = text[:cap] if more > 0 else text
    text = text.replace("\r\n", "\n")
    if not newlines:
        text = text.replace("\n", " ").replace("\t", " ")
    text = escape_invisible(text, keep_lines=True)
    return text + (f"… ({more} more characters cut)" if more > 0 else "")


def text_list(value) -> list[str]:
    """A field that should be a list of strings (``notes``), whatever the file holds there."""
    if value is None or value == "":
        return []
    return [str(v) for v in value if v is not None] if isinstance(value, list) else [str(value)]


def as_number(value, default: float = 0):
    """A number from a grades file's field (an int stays an int); ``default`` for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(str(value))
        except ValueError:
            return default
    if value != value or value in (float("inf"), float("-inf")):
        return default
    return int(value) if float(value).is_integer() else float(value)


def html_text(value, cap: int = MAX_TEXT) -> str:
    """Cleaned text, escaped for HTML element content and quoted attributes."""
    return html.escape(clean_text(value, cap), quote=True)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def markdown_text(value, cap: int = MAX_TEXT) -> str:
    """Cleaned text on one line, with HTML and every Markdown mark escaped (safe in a table cell)."""
    text = clean_text(value, cap, newlines=False)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def csv_cell(value, cap: int = MAX_TEXT):
    """A spreadsheet cell: numbers stay numbers; text is cleaned and cannot start a formula."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return defuse_formula(clean_text(value, cap, newlines=False))


def safe_filename(name, used: set | None = None) -> str:
    """A file name made from a student's folder name: letters, digits, ``._-`` only, unique in ``used``."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", clean_text(name, 80, newlines=False)).lstrip("._") or "student"
    candidate, number = text, 2
    while used is not None and candidate.lower() in used:
        candidate, number = f"{text}-{number}", number + 1
    if used is not None:
        used.add(candidate.lower())
    return candidate


_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 70em; padding: 0 1em;
       color: #1d1d1f; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .6em 0; }
th, td { border: 1px solid #c8c8cc; padding: .25em .6em; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.text { white-space: pre-wrap; overflow-wrap: anywhere; max-width: 48em; }
td.wide { min-width: 16em; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
.pass { color: #176f2c; font-weight: 600; } .fail { color: #a4161a; font-weight: 600; }
.muted { color: #5f5f66; } img { max-width: 100%; }
"""


def html_page(title: str, body: str) -> str:
    """A whole HTML document: ``body`` (already escaped) under a policy that forbids script and requests."""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n"
            "<meta name=\"referrer\" content=\"no-referrer\">\n"
            f"<title>{html_text(title, 200)}</title>\n<style>{_STYLE}</style>\n</head>\n"
            f"<body>\n{body}\n</body>\n</html>\n")


def read_grades(path) -> list[dict]:
    """The rows of a grades JSON file written by ``grade --json`` or ``grade --merge``, checked
    against the shape the pages read (``datafiles.py`` bounds its size and depth)."""
    rows = read_json(path, "grades file", max_bytes=MAX_GRADES_BYTES, max_depth=MAX_GRADES_DEPTH,
                     next_step="give the file of grade --json",
                     missing_hint="write it with `python -m course_utils grade SUBMISSIONS/ "
                                  "--json grades.json`")
    if isinstance(rows, list) and any(isinstance(r, dict) and "order" in r for r in rows):
        raise InvalidArgumentError(f"{shown(path)} is one shard's part; combine the parts first "
                                   "with `python -m course_utils grade --merge PART... --json "
                                   "grades.json`")
    return check_grades(rows, shown(path))


def write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a reader sees the old file or the new one)."""
    write_atomic(path, text.encode("utf-8", errors="replace"), mode=0o644)
