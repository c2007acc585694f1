"""Self-checks that students call after each exercise, and the grader reuses.

Covers: the ``check("02.1", answer)`` call and the registry of check functions:
public ones (``exercise_checks/``, shipped to students) and hidden ones
(``grading/hidden_checks/``, which exist only where the grader runs). A check receives
the answer as data (see ``answers.py``), never the live object, so that the
grader can run the same checks in its own process on what it captured from the
student's kernel. Does not cover: executing notebooks or scoring them (see
``grading/``), nor the checks themselves.

A check function takes the student's answer and either returns (pass) or
raises :class:`CheckFailed` with a hint that helps without giving the answer
away. Any other exception inside a check is reported as "could not check this
answer" with the answer's type, never as a traceback.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

from .answers import CaptureError, prepare
from .errors import MissingDependencyError

__all__ = ["check", "register", "CheckFailed", "Verdict", "run_checks", "drives_browser"]

_REGISTRY: dict[str, list[tuple[Callable[[Any], None], bool]]] = {}
_DRIVES_BROWSER: set[str] = set()  # exercises whose checks run the answer in a browser
_LOADED = False
_HIDDEN_LOADED = False


#: The start of the feedback of an answer whose checks need a browser this machine cannot drive.
NEEDS_BROWSER = "needs a browser to grade"


class CheckFailed(Exception):
    """Raised by a check function; its message is the hint shown to the student."""


def what_it_raised(error: Exception) -> str:
    """How a hint names what a student's function raised: the message where it already says so
    (a probed function's raise, which reaches the grader's checks as its type's name only),
    otherwise "the function raised <type>"."""
    return str(error) if "raised" in str(error) else f"the function raised {type(error).__name__}"


@dataclass
class Verdict:
    """The outcome of one exercise's checks."""

    exercise: str
    passed: bool
    feedback: str
    #: The checks could not run here because no browser can be driven (``feedback`` says why):
    #: the answer is neither right nor wrong yet.
    needs_browser: bool = False


def register(exercise_id: str, *, hidden: bool = False, browser: bool = False):
    """Decorator that registers ``fn(answer)`` as a check for ``exercise_id``.

    Args:
        exercise_id: the exercise number as in the notebook, e.g. ``"02.1"``.
        hidden: if True, only the grader runs this check; such checks live in
            ``course_utils/grading/hidden_checks/``, which students never receive.
        browser: the check runs the answer in a browser (``browser_run``); it raises
            ``BrowserUnavailable`` where none can be driven, and the grader gives the
            check's process limits a browser can live with.
    """

    def decorate(fn: Callable[[Any], None]) -> Callable[[Any], None]:
        _REGISTRY.setdefault(exercise_id, []).append((fn, hidden))
        if browser:
            _DRIVES_BROWSER.add(exercise_id)
        return fn

    return decorate


#: Check modules that failed to import: module name -> "ErrorType: message (line N)".
_BROKEN: dict[str, str] = {}


def load_check_modules() -> None:
    """Import every check module once (each registers its checks and answers on import)."""
    # Every module in exercise_checks/ registers its checks on import. One broken module
    # (a syntax error in an edit) must not take every other notebook's checks down with it.
    global _LOADED
    if _LOADED:
        return
    from . import exercise_checks

    for info in pkgutil.iter_modules(exercise_checks.__path__):
        name = f"{exercise_checks.__name__}.{info.name}"
        try:
            importlib.import_module(name)
        except Exception as error:  # SyntaxError, ImportError, anything at import time
            line = f" (line {error.lineno})" if getattr(error, "lineno", None) else ""
            _BROKEN[info.name] = f"{type(error).__name__}: {getattr(error, 'msg', error)}{line}"
    _LOADED = True


def broken_check_modules() -> dict[str, str]:
    """Check modules that failed to import, with why: {} when all loaded."""
    load_check_modules()
    return dict(_BROKEN)


def mark_hidden_checks_loaded() -> None:
    """Record that the grader registered its hidden checks (``course_utils.grading`` calls it)."""
    global _HIDDEN_LOADED
    _HIDDEN_LOADED = True


def hidden_checks_loaded() -> bool:
    """Whether the grader's hidden checks are registered in this process."""
    return _HIDDEN_LOADED


def drives_browser(exercise_id: str) -> bool:
    """Whether a check of ``exercise_id`` runs the answer in a browser."""
    load_check_modules()
    return exercise_id in _DRIVES_BROWSER


def known_exercises() -> list[str]:
    """Return the sorted exercise ids that have at least one check."""
    load_check_modules()
    return sorted(_REGISTRY)


def run_checks(exercise_id: str, answer: Any, *, include_hidden: bool = False) -> Verdict:
    """Run the checks of one exercise on a live answer and return a :class:`Verdict`.

    The answer is first turned into data as the grader captures it (see
    ``answers.py``). ``include_hidden`` needs ``grading/hidden_checks/`` loaded (instructors'
    copies only); students' copies raise a clear MissingDependencyError (an ImportError).
    """
    load_check_modules()
    if exercise_id not in _REGISTRY:
        raise KeyError(
            f"no checks are registered for exercise {exercise_id!r} "
            f"(known: {', '.join(known_exercises())}); check the exercise number"
        )
    try:
        data = prepare(exercise_id, answer)
    except CaptureError as error:
        return Verdict(exercise_id, False, str(error))
    return run_checks_on_data(exercise_id, data, include_hidden=include_hidden)


def run_checks_on_data(exercise_id: str, answer: Any, *, include_hidden: bool = False) -> Verdict:
    """Run the checks of one exercise on an answer already turned into data."""
    load_check_modules()
    if include_hidden and not _HIDDEN_LOADED:
        raise MissingDependencyError(
            "the hidden checks are not loaded: they live in course_utils.grading (instructors' "
            "copies only); call course_utils.grading.load_hidden_checks() first")
    if exercise_id not in _REGISTRY:
        raise KeyError(f"no checks are registered for exercise {exercise_id!r}")
    for fn, hidden in _REGISTRY[exercise_id]:
        if hidden and not include_hidden:
            continue
        try:
            fn(answer)
        except CheckFailed as failure:
            return Verdict(exercise_id, False, str(failure))
        except Exception as error:  # a check must never show a traceback wall
            if exercise_id in _DRIVES_BROWSER:
                from .browser_run import BrowserUnavailable

                if isinstance(error, BrowserUnavailable):  # not the answer's fault: say so
                    return Verdict(exercise_id, False, f"{NEEDS_BROWSER}: {error.reason}",
                                   needs_browser=True)
            return Verdict(
                exercise_id,
                False,
                f"could not check this answer ({type(answer).__name__}: "
                f"{type(error).__name__}: {error}); re-read what the exercise asks for",
            )
    return Verdict(exercise_id, True, "all checks passed")


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
    try:
        verdict = run_checks(exercise_id, answer)
    except KeyError as error:  # an exercise without checks: a typo, or a broken module
        broken = "; ".join(f"exercise_checks/{m}.py: {why}" for m, why in _BROKEN.items())
        reason = (f"the course's checks could not be loaded ({broken}); your answer was not "
                  "judged: tell your instructor" if broken else error.args[0])
        print(f"[not checked] Exercise {exercise_id}: {reason}")
        return
    if verdict.needs_browser:
        print(f"[not checked] Exercise {exercise_id}: {verdict.feedback}")
    elif verdict.passed:
        print(f"[pass] Exercise {exercise_id}: public checks passed. "
              "The grader runs further checks.")
    else:
        print(f"[try again] Exercise {exercise_id}: {verdict.feedback}")
