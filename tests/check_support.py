"""What the grader does with an answer, for the tests of the exercise checks (test_checks_*.py).

The grader never hands a live object to a check: it captures the answer in the student's
kernel as data (``answers.encode``, with the exercise's extractor), sends it as JSON plus
``.npy`` arrays, copies an answer file out of the work folder and decodes it
(``verdicts.read_answer``, the grader's own code), and calls ``checks.run_checks_on_data(..., include_hidden=True)``. A
function answer reaches the checks as a callable whose every call crosses the same
boundary: arguments and result are encoded and decoded, and a raise arrives as an
exception that carries only its type's name. :func:`grade` does the same in-process, so
each test sees what the grader's checks would see.

It also turns each topic's declared test data (``CASES`` in
``course_utils/grading/hidden_checks/<topic>.py``, see ``grading/cases.py``) into tests: a
module ``tests/test_checks_<topic>.py`` sets ``TOPIC = "<topic>"`` and imports the ``test_*``
functions and ``pytest_generate_tests`` below, which parametrizes them with that topic's
right answers, wrong answers and alternatives (test ids such as ``01.4-keeps-duplicates``).
Answers are built from one :class:`~course_utils.grading.cases.Context` per process
(:func:`context`), so each exported model or trained CNN is made once per test session and worker.
"""
from __future__ import annotations

import ast
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import nbformat
import numpy as np
import pytest

from conftest import ROOT
from course_utils import answers, checks
from course_utils.build import parse_exercises, solution_code
from course_utils.grading import load_hidden_checks
from course_utils.grading.cases import Context, Right, Wrong, resolve, topic_cases
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
    load_hidden_checks()  # the grader runs them too
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
    assert not graded.public.passed, "the wrong answer passes every public check"
    assert graded.failed_check == check, (graded.failed_check, graded.public.feedback)
    assert feedback in graded.public.feedback, graded.public.feedback
    assert graded.verdict.feedback == graded.public.feedback  # the grader says the same
    for word in answer_words:
        assert word not in graded.public.feedback, f"the hint gives away {word!r}"


# ------------------------------------------------------------------ tests from a topic's CASES

_CONTEXT: list[Context] = []


def context() -> Context:
    """The one context of this process: its work folder and every answer's ingredients, built once."""
    if not _CONTEXT:
        _CONTEXT.append(Context())
    return _CONTEXT[0]


def grade_in_context(exercise: str, answer, tmp_path: Path) -> Graded:
    """Grade an answer (or what it builds from the context) in the context's work folder."""
    return grade(exercise, resolve(answer, context()), context().folder, tmp_path / "grader")


def _check_kinds(topic: str) -> dict[str, bool]:
    """'module:function' -> hidden? for every check of ``topic``'s public and hidden modules."""
    return {**{name: False for name in registered_checks(topic, hidden=False)},
            **{name: True for name in registered_checks(topic, hidden=True)}}


def notebook_exercises(number: str) -> list:
    """The exercises of notebook ``number`` (``"01"``), in order, from its source in notebooks/."""
    (path,) = (ROOT / "notebooks").glob(f"{number}-*.ipynb")
    return parse_exercises(nbformat.read(path, as_version=4), path.stem)


def reference_regions(number: str) -> dict[str, str]:
    """Exercise id -> the reference's solution region, from notebook ``number``'s source."""
    (path,) = (ROOT / "notebooks").glob(f"{number}-*.ipynb")
    nb = nbformat.read(path, as_version=4)
    return {e.id: solution_code(nb.cells[e.cell_index].source) for e in parse_exercises(nb, path.stem)}


def topic_exercises(topic: str) -> list[str]:
    """The ids of the exercises ``exercise_checks/<topic>.py`` registers checks for, sorted."""
    checks.load_check_modules()
    module = f"course_utils.exercise_checks.{topic}"
    return sorted(e for e, fns in checks._REGISTRY.items() if any(fn.__module__ == module for fn, _ in fns))


def _notebooks(topic: str) -> list[str]:
    return sorted({e.split(".")[0] for e in topic_exercises(topic)})


def _params(topic: str, kind: str) -> list:
    cases = topic_cases(topic)
    if kind == "right":
        return [pytest.param(c.exercise, r, id=f"{c.exercise}-{r.id}") for c in cases for r in c.right]
    if kind == "alternative":
        declared = {c.exercise: c.alternative for c in cases}
        return [pytest.param(e.id, declared.get(e.id), id=e.id) for number in _notebooks(topic)
                for index, e in enumerate(notebook_exercises(number)) if index or declared.get(e.id)]
    hidden, kinds = kind == "hidden", _check_kinds(topic)
    return [pytest.param(c.exercise, w, *([] if hidden else [c.answer_words]), id=f"{c.exercise}-{w.id}")
            for c in cases for w in c.wrong if kinds.get(w.check, False) == hidden]


def pytest_generate_tests(metafunc):
    """Parametrize the tests below with the cases of the test module's ``TOPIC``."""
    topic = getattr(metafunc.module, "TOPIC", None)
    if topic is None:
        return
    for argument, kind in (("right", "right"), ("wrong_hidden", "hidden"), ("wrong_public", "public"),
                           ("alternative", "alternative")):
        if argument in metafunc.fixturenames:
            names = ["exercise", argument] + (["exercise_words"] if kind == "public" else [])
            metafunc.parametrize(names, _params(topic, kind))


def _where(request) -> str:
    return f"course_utils/grading/hidden_checks/{request.module.TOPIC}.py"


def test_right_answer_passes(exercise, right: Right, tmp_path):
    """Does this right answer, written otherwise than the reference, pass every check?"""
    assert_right(grade_in_context(exercise, right.answer, tmp_path))


def _skip_where_meaningless(wrong: Wrong) -> None:
    reason = wrong.skip(context()) if wrong.skip else None
    if reason:
        pytest.skip(reason)


def test_wrong_answer_fails_its_hidden_check(exercise, wrong_hidden: Wrong, tmp_path):
    """Does an answer that passes the public checks fail this hidden check, with its feedback?"""
    wrong = wrong_hidden
    _skip_where_meaningless(wrong)
    assert_fails_hidden(grade_in_context(exercise, wrong.answer, tmp_path), wrong.check, wrong.feedback)


def test_wrong_answer_fails_a_public_check_with_a_hint(exercise, wrong_public: Wrong, exercise_words,
                                                       tmp_path, request):
    """Does the student's own check() refuse this answer with a hint that gives nothing away?"""
    wrong = wrong_public
    assert wrong.check in _check_kinds(request.module.TOPIC), (
        f"{exercise}-{wrong.id}: no check is named {wrong.check!r}; give 'module:function' of a registered check")
    _skip_where_meaningless(wrong)
    words = [*resolve(exercise_words, context()), *resolve(wrong.answer_words, context())]
    assert_fails_public(grade_in_context(exercise, wrong.answer, tmp_path), wrong.check, wrong.feedback,
                        words)


def test_every_check_has_a_wrong_answer(request):
    """Is every public and every hidden check of this topic tried with a wrong answer, and does
    every wrong answer name a check that exists?"""
    named = {w.check for c in topic_cases(request.module.TOPIC) for w in c.wrong}
    kinds = _check_kinds(request.module.TOPIC)
    missing, unknown = sorted(set(kinds) - named), sorted(named - set(kinds))
    assert not missing and not unknown, "; ".join(
        [f"{_where(request)}: add a Wrong(...) to CASES for each of {missing}"] * bool(missing)
        + [f"no check of this topic is named {unknown} (give 'module:function', e.g. "
           f"{sorted(kinds)[:1]})"] * bool(unknown))


def test_every_exercise_has_a_right_answer(request):
    """Has every exercise of this topic a right answer in CASES, and is every exercise in CASES one of them?"""
    exercises = topic_exercises(request.module.TOPIC)
    cases = {c.exercise: c for c in topic_cases(request.module.TOPIC)}
    without = [e for e in exercises if e not in cases or not cases[e].right]
    assert not without, f"{_where(request)}: add Cases(...) with a Right(...) answer for {without}"
    unknown = sorted(set(cases) - set(exercises))
    assert not unknown, f"{_where(request)}: CASES names exercises this topic has no checks for: {unknown}"


def _normalised(code: str) -> str:
    """The code as the AST sees it (no comments, no layout), to tell two answers apart."""
    return ast.dump(ast.parse(code))


def test_alternative_answer_is_other_code_that_parses(exercise, alternative, request):
    """Has this exercise an alternative answer (required after its notebook's first) that parses
    as Python and is not the reference again?"""
    assert alternative, (f"{_where(request)}: give Cases({exercise!r}, alternative=...) the code a "
                         "student would type in place of the cell's raise NotImplementedError line")
    compile(alternative, f"{exercise} (alternative)", "exec")
    reference = reference_regions(exercise.split(".")[0])[exercise]
    assert _normalised(alternative) != _normalised(reference), (
        f"{exercise}: the alternative answer is the reference solution again")
