"""The score table of one notebook, as the grader prints it and ``selfcheck`` shows it.

Covers: :func:`format_score_table`, the one text layout of a notebook's exercises,
points, pass/fail and feedback, with its notes and total line. It lives outside
``grading/`` because the student release has ``selfcheck`` (which prints the same
table) and not the grader. Does not cover: computing scores (``grading/``,
``selfcheck.py``) or other tables (``formatting.format_table``).
"""
from __future__ import annotations

from .formatting import format_table

__all__ = ["format_score_table"]


def format_score_table(head: str, rows, *, notes=(), seconds: float | None = None,
                       error: str | None = None, total_note: str = "") -> str:
    """The score table of one notebook.

    Args:
        head: the first line, e.g. ``"alice/00-install-check.ipynb (alice)"``.
        rows: ``(exercise, points, max_points, passed, feedback)`` per exercise; ``passed``
            may instead be a str that says why the exercise is not graded yet (shown as
            ``ungraded``, the feedback says why).
        notes: lines printed as ``note: ...`` under the table.
        seconds: the time taken, printed on the total line (None: left out).
        error: why the notebook could not be graded; the table is then that one line.
        total_note: words appended to the total line.

    Example:
        >>> print(format_score_table("a.ipynb (a)", [("00.1", 1, 1, True, "all checks passed")],
        ...                          seconds=3))
        a.ipynb (a)
          exercise    points  result  feedback
          00.1           1/1  pass    all checks passed
          total 1/1 in 3 s
    """
    if error:
        return f"{head}\n  could not grade: {error}"
    rows = list(rows)
    table = format_table(["exercise", "points", "result", "feedback"],
                         [[exercise, f"{points}/{max_points}", _result(passed), feedback]
                          for exercise, points, max_points, passed, feedback in rows],
                         align="<><<", widths=[9, 7, 6, 0], gap="  ")
    lines = [head, *("  " + line for line in table)]
    lines.extend(f"  note: {note}" for note in notes)
    total = f"  total {sum(r[1] for r in rows)}/{sum(r[2] for r in rows)}"
    if seconds is not None:
        total += f" in {seconds:.0f} s"
    lines.append(total + (f" {total_note}" if total_note else ""))
    return "\n".join(lines)


def _result(passed) -> str:
    if isinstance(passed, str):  # e.g. "needs a browser to grade"
        return "ungraded"
    return "pass" if passed else "FAIL"
