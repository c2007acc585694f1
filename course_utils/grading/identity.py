"""Who a submission belongs to: one rule for the grader and for every export.

Covers: the key two students' names are compared by (:func:`student_key`: Unicode
compatibility and case folding), the names of a class that fold together
(:func:`colliding_names`), the rows of a grades file that count, one per student and
notebook (:func:`graded_rows`), and the folder a student's feedback goes to
(:func:`feedback_folder`). Does not cover: reading submissions (``submissions.py``) or
writing the exports (``gradebook.py``, ``feedback.py``).

The rule, used by the grader (``submissions.py``) and by the Canvas, Gradescope and
feedback exports alike:

- A student is the name of their sub-folder (a file given by name, or lying loose in a
  folder given, is its stem's), exactly as written; records hold it escaped and never cut
  (``results.student_text``), so two names never read the same.
- Two different names that fold to one key (``Ann`` and ``ann``; ``\\u212aelvin``, with the
  Kelvin sign, and ``kelvin``) are a *collision*: both are graded, each record says so, and
  no export merges them or drops one silently; each export reports them.
- A duplicate (the same student's notebook handed in again, ``duplicate_of`` in the
  record) gives way to the graded copy: only the graded copy is exported.
- Two graded rows of one student and notebook (the same name in two folders given) are a
  collision too: reported, neither exported.
- A file that the grader could not tell to be any course notebook is reported on its own.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field

__all__ = ["student_key", "colliding_names", "graded_rows", "GradedRows", "feedback_folder"]


def student_key(name) -> str:
    """The key two names are compared by: NFKC and case folding (``"\\u212aelvin"`` gives ``"kelvin"``)."""
    text = unicodedata.normalize("NFKC", "" if name is None else str(name))
    return unicodedata.normalize("NFKC", text.casefold())


def colliding_names(names) -> dict[str, list[str]]:
    """Key -> the different names that fold to it, for every key two or more names share."""
    groups: dict[str, set[str]] = {}
    for name in names:
        groups.setdefault(student_key(name), set()).add(str(name))
    return {key: sorted(found) for key, found in groups.items() if len(found) > 1}


@dataclass
class GradedRows:
    """The rows of a grades file that count: one per student and notebook.

    ``rows``: the graded copy of each (student, notebook), in the file's order, and each file
    that could not be told to be any course notebook; ``collisions``: (notebook, rows) of each
    student and notebook graded twice (one name in two folders given), none of them counted;
    ``duplicates``: rows of files that gave way to a graded copy; ``folded``: key -> the
    different names that fold to it (:func:`colliding_names`), which no export merges.
    """

    rows: list[dict] = field(default_factory=list)
    collisions: list[tuple[str, list[dict]]] = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)
    folded: dict[str, list[str]] = field(default_factory=dict)


def graded_rows(rows: list[dict]) -> GradedRows:
    """Sort a grades file's rows by the rule of the module docstring.

    Example:
        >>> found = graded_rows([{"student": "ann", "notebook": "00-install-check"},
        ...                      {"student": "Ann", "notebook": "00-install-check"}])
        >>> len(found.rows), found.folded
        (2, {'ann': ['Ann', 'ann']})
    """
    found = GradedRows()
    groups: dict[tuple, list[dict]] = {}
    for index, row in enumerate(rows):
        if row.get("duplicate_of"):
            found.duplicates.append(row)
            continue
        notebook = str(row["notebook"]) if row.get("notebook") else None
        # A file that is no course notebook cannot collide: each one is reported on its own.
        key = (str(row.get("student")), notebook) if notebook else (index,)
        groups.setdefault(key, []).append(row)
    for key, group in groups.items():  # (dicts keep the file's order)
        if len(group) == 1:
            found.rows.append(group[0])
        else:
            found.collisions.append((key[1], group))
    found.folded = colliding_names(str(r.get("student")) for r in rows)
    return found


_SAFE_FOLDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")


def feedback_folder(name, used: set) -> str:
    """The folder name of one student's feedback, never the same as another student's.

    A name that is already a safe folder name (letters, digits, ``._-``, starting with a
    letter or digit, at most 80 characters) is used as it is. Any other name (spaces,
    accents, markup, a name that differs from one already used only by letter case, which a
    case-insensitive disk would merge) becomes ``_<safe part>_<10 hex digits of its hash>``:
    it starts with ``_``, which no name used as it is does, so ``"a b"`` can never land in
    the folder of a student named ``a_b``. ``used`` holds the folded names given so far.
    """
    text = "" if name is None else str(name)
    if _SAFE_FOLDER.fullmatch(text) and text.casefold() not in used:
        used.add(text.casefold())
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", text[:40]).strip("._-") or "student"
    candidate, number = f"_{stem}_{digest[:10]}", 2
    while candidate.casefold() in used:
        candidate, number = f"_{stem}_{digest[:10]}-{number}", number + 1
    used.add(candidate.casefold())
    return candidate
