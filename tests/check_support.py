"""What the grader does with an answer, for the tests of the exercise checks (test_checks_*.py).

The grader never hands a live object to a check: it captures the answer in the student's
kernel as data (``answers.encode``, with the exercise's extractor), sends it as JSON plus
``.npy`` arrays, copies an answer file out of the work folder and decodes it
(``verdicts.read_answer``, the grader's own code), and calls ``checks.run_checks_on_data(..., include_hidden=True)``. A
function answer reaches the checks as a callable whose every call crosses the same
boundary: arguments and result are encoded and decoded, and a raise arrives as an
exception that carries only its type's name. :func:`grade` does the same in-process, so
each test sees what the grader's checks would see.
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from course_utils import answers, checks
from course_utils.grading import load_hidden_checks
from course_utils.grading.verdicts import read_answer


class FunctionRaised(Exception):
    """The answer function raised (as in the grader, only the type's name crosses)."""


def _roundtrip(tree, arrays):
    """The tree as JSON and the arrays as .npy bytes, read back: what crosses the boundary."""
    tree = json.loads(json.dumps(tree))
    stored = {}
    for name, array in arrays.items():
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        stored[name] = buffer.getvalue()
    return tree, lambda name: np.load(io.BytesIO(stored[name]), allow_pickle=False)


def _probe(fn):
    """A callable that calls ``fn`` as the grader's probe does: data in, data out."""
    def call(*args, **kwargs):
        tree, arrays = answers.encode(answers.AnswerSpec("probe", "args"), (list(args), dict(kwargs)))
        tree, load = _roundtrip(tree, arrays)
        args, kwargs = answers.decode(tree, load, lambda node: None)
        try:
            result = fn(*args, **kwargs)
        except Exception as error:
            raise FunctionRaised(f"the function raised {type(error).__name__}") from None
        tree, arrays = answers.encode(answers.AnswerSpec("probe", "result"), result)
        tree, load = _roundtrip(tree, arrays)
        return answers.decode(tree, load, lambda node: None)
    call.__name__ = "function"
    return call


def as_graded(exercise: str, value, workdir: Path, dest: Path):
    """The value the grader's checks receive for ``value``, captured in ``workdir``.

    Encoded as ``answers.capture`` encodes it in the kernel, written as it writes it,
    and read back by the grader's own ``verdicts.read_answer`` (files copied out of
    ``workdir``, bounded reads); a function answer is called as the probe calls it.
    """
    checks.load_check_modules()
    spec = answers.answer_spec(exercise)
    cwd = os.getcwd()
    os.chdir(workdir)  # a relative path in an answer is relative to the notebook's folder
    try:
        tree, arrays = answers.encode(spec, value, workdir=workdir)
    finally:
        os.chdir(cwd)
    folder = dest / "capture"
    answers.write_answer(folder, {"value": tree}, arrays)
    return read_answer(exercise, folder, Path(workdir), dest / "answer", lambda name: _probe(value))


@dataclass
class Graded:
    """The grader's verdict, the student's (public-only) verdict, and which check said no."""

    verdict: checks.Verdict
    public: checks.Verdict
    failed_check: str | None  # "module:function" of the first check that failed, or None


def _first_failing_check(exercise: str, data) -> str | None:
    load_hidden_checks()
    for fn, _hidden in checks._REGISTRY[exercise]:
        try:
            fn(data)
        except Exception:
            return f"{fn.__module__.rsplit('.', 1)[-1]}:{fn.__name__}"
    return None


def grade(exercise: str, value, workdir: Path, dest: Path) -> Graded:
    """Grade one answer as the grader does (data, copied files, probed functions)."""
    load_hidden_checks()  # the grader's include_hidden=True needs them registered
    data = as_graded(exercise, value, workdir, dest)
    return Graded(checks.run_checks_on_data(exercise, data, include_hidden=True),
                  checks.run_checks_on_data(exercise, data),
                  _first_failing_check(exercise, data))


def registered_checks(topic: str, *, hidden: bool) -> set[str]:
    """'module:function' of every public (or hidden) check that ``topic``'s module registers."""
    load_hidden_checks()
    package = "grading.hidden_checks" if hidden else "exercise_checks"
    return {f"{topic}:{fn.__name__}" for fns in checks._REGISTRY.values() for fn, is_hidden in fns
            if is_hidden == hidden and fn.__module__ == f"course_utils.{package}.{topic}"}


def assert_right(graded: Graded) -> None:
    """A right answer passes every check, public and hidden."""
    assert graded.verdict.passed, graded.verdict.feedback
    assert graded.public.passed and graded.failed_check is None


def assert_fails_hidden(graded: Graded, check: str, feedback: str) -> None:
    """The answer passes the public checks and fails exactly ``check`` with ``feedback``."""
    assert graded.public.passed, f"the public checks already refuse it: {graded.public.feedback}"
    assert not graded.verdict.passed
    assert graded.failed_check == check, (graded.failed_check, graded.verdict.feedback)
    assert graded.verdict.feedback.startswith(feedback), graded.verdict.feedback


def assert_fails_public(graded: Graded, check: str, feedback: str, answer_words=()) -> None:
    """The student's own check() refuses it with ``check``'s hint, which names none of
    ``answer_words`` (the words of the right answer)."""
    assert not graded.public.passed
    assert graded.failed_check == check, (graded.failed_check, graded.public.feedback)
    assert feedback in graded.public.feedback, graded.public.feedback
    assert graded.verdict.feedback == graded.public.feedback  # the grader says the same
    for word in answer_words:
        assert word not in graded.public.feedback, f"the hint gives away {word!r}"
