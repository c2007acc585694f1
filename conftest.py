"""pytest's setup for every command line in this repository (instructors' copy only).

With nbval, every reference answer of a solutions notebook also goes through the grader's
public and hidden checks (``tests/nbval_answers.py``), whether ``tests/`` is on the command
line or not: ``pytest solutions/01-execution-providers.ipynb --nbval`` checks as much as
``make test`` does for that notebook. ``make check-notebook NB=01`` runs it with that topic's
check tests. The student release has no ``tests/``, ``solutions/`` or this file.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))


def pytest_configure(config):
    """Register the plugin that sends each reference answer through the grader's checks."""
    from nbval_answers import AnswerChecks

    config.pluginmanager.register(AnswerChecks(), "course-answer-checks")
