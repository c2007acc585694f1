"""The grader: everything students never get, in one folder.

Covers: scoring submitted notebooks without trusting them (``grader.py``), the
sandbox each submission's kernel runs in (``sandbox.py``), the reading of answers
as data and the verdicts (``verdicts.py``), the records, tables and files of the
results (``results.py``), the hidden checks (``hidden_checks/``), and what comes
after grading: students' feedback pages (``feedback.py``), the class report
(``report.py``, ``plots.py``) with its similar pairs (``similarity.py``), gradebook exports
(``gradebook.py``, ``autograder/``), all from the grades file and safe for any
string in it (``pages.py``). The student
release leaves out this whole package, and no module outside it imports from it
(``tests/test_imports.py``). Does not cover: the public checks and the answer
declarations students run themselves (``checks.py``, ``answers.py``,
``exercise_checks/``).
"""
from __future__ import annotations

from .grader import grade_notebooks, points_table
from .hidden_checks import load_hidden_checks


def add_cli(subparsers) -> None:
    """Register ``grade``, ``report`` and ``gradebook`` (the instructor's commands)."""
    from . import gradebook, grader, report

    grader.add_cli(subparsers)
    report.add_cli(subparsers)
    gradebook.add_cli(subparsers)

__all__ = ["add_cli", "grade_notebooks", "load_hidden_checks", "points_table"]
