"""Self-checks that students call after each exercise, and the grader reuses.

Covers: the ``check("02.1", answer)`` call, the registry of check functions
(public ones that students see run, hidden ones only the grader runs), and the
grading log the grader reads. Does not cover: executing notebooks or scoring
them (see ``grading.py``), nor the checks themselves (see ``exercise_checks/``).

A check function takes the student's answer and either returns (pass) or
raises :class:`CheckFailed` with a hint that helps without giving the answer
away. Any other exception inside a check is reported as "could not check this
answer" with the answer's type, never as a traceback.
"""
from __future__ import annotations

import importlib
import json
import os
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["check", "register", "CheckFailed", "Verdict", "run_checks"]

#: Set by the grader: path of a JSON-lines file that receives every verdict.
GRADE_LOG_ENV = "COURSE_UTILS_GRADE_LOG"

_REGISTRY: dict[str, list[tuple[Callable[[Any], None], bool]]] = {}
_LOADED = False
_RECORDING = True
#: The last verdict recorded per exercise in this process (the grader reads it).
_LAST: dict[str, "Verdict"] = {}


class CheckFailed(Exception):
    """Raised by a check function; its message is the hint shown to the student."""


@dataclass
class Verdict:
    """The outcome of one exercise's checks."""

    exercise: str
    passed: bool
    feedback: str
    hidden_run: bool = False


def register(exercise_id: str, *, hidden: bool = False):
    """Decorator that registers ``fn(answer)`` as a check for ``exercise_id``.

    Args:
        exercise_id: the exercise number as in the notebook, e.g. ``"02.1"``.
        hidden: if True, only the grader runs this check; students never see
            it run and its source is never quoted in feedback.
    """

    def decorate(fn: Callable[[Any], None]) -> Callable[[Any], None]:
        _REGISTRY.setdefault(exercise_id, []).append((fn, hidden))
        return fn

    return decorate


def _load_check_modules() -> None:
    # Every module in exercise_checks/ registers its checks on import.
    global _LOADED
    if _LOADED:
        return
    from . import exercise_checks

    for info in pkgutil.iter_modules(exercise_checks.__path__):
        importlib.import_module(f"{exercise_checks.__name__}.{info.name}")
    _LOADED = True


def known_exercises() -> list[str]:
    """Return the sorted exercise ids that have at least one check."""
    _load_check_modules()
    return sorted(_REGISTRY)


def run_checks(exercise_id: str, answer: Any, *, include_hidden: bool = False) -> Verdict:
    """Run the checks of one exercise and return a :class:`Verdict` (prints nothing)."""
    _load_check_modules()
    if exercise_id not in _REGISTRY:
        raise KeyError(
            f"no checks are registered for exercise {exercise_id!r} "
            f"(known: {', '.join(known_exercises())}); check the exercise number"
        )
    for fn, hidden in _REGISTRY[exercise_id]:
        if hidden and not include_hidden:
            continue
        try:
            fn(answer)
        except CheckFailed as failure:
            return Verdict(exercise_id, False, str(failure), include_hidden)
        except Exception as error:  # a check must never show a traceback wall
            return Verdict(
                exercise_id,
                False,
                f"could not check this answer ({type(answer).__name__}: "
                f"{type(error).__name__}: {error}); re-read what the exercise asks for",
                include_hidden,
            )
    return Verdict(exercise_id, True, "all checks passed", include_hidden)


def check(exercise_id: str, answer: Any) -> None:
    """Check a student's answer and print one pass/fail line.

    Args:
        exercise_id: the exercise number, e.g. ``"01.2"``.
        answer: whatever the exercise asks for (a list, a path, a number...).

    Prints one line and returns nothing (so a notebook cell ends cleanly);
    :func:`run_checks` returns the :class:`Verdict` for code that needs it.

    Example:
        >>> from course_utils import check
        >>> check("01.1", ["CPUExecutionProvider", "CUDAExecutionProvider"])  # doctest: +SKIP
        [pass] Exercise 01.1: public checks passed. The grader runs further checks.
    """
    log_path = os.environ.get(GRADE_LOG_ENV)
    verdict = run_checks(exercise_id, answer, include_hidden=bool(log_path))
    if _RECORDING:
        _LAST[exercise_id] = verdict
    if log_path and _RECORDING:
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(json.dumps({"exercise": exercise_id, "passed": verdict.passed,
                                  "feedback": verdict.feedback}) + "\n")
    if verdict.passed:
        print(f"[pass] Exercise {exercise_id}: public checks passed. "
              "The grader runs further checks.")
    else:
        print(f"[try again] Exercise {exercise_id}: {verdict.feedback}")


class recording_paused:
    """Context manager the grader uses while it replays a reference solution."""

    def __enter__(self):
        global _RECORDING
        self._previous, _RECORDING = _RECORDING, False
        return self

    def __exit__(self, *exc):
        global _RECORDING
        _RECORDING = self._previous
        return False
