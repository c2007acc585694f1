"""Tests for the checks of notebook 06: course_utils/exercise_checks/browser.py and
course_utils/grading/hidden_checks/browser.py.

The cases are declared in ``CASES`` of the hidden check module; ``check_support`` turns them into
the tests imported here. Each check runs the answer in headless Chromium (a browser run of one
answer is shared by its checks): in CI they must run; elsewhere they skip where Chromium,
playwright or onnxruntime-web is missing.
"""
import numpy as np
import onnxruntime as ort
import pytest

from check_support import (  # noqa: F401 (pytest collects the tests imported here)
    pytest_generate_tests,
    test_alternative_answer_is_other_code_that_parses,
    test_every_check_has_a_wrong_answer,
    test_every_exercise_has_a_right_answer,
    test_right_answer_passes,
    test_wrong_answer_fails_a_public_check_with_a_hint,
    test_wrong_answer_fails_its_hidden_check,
)
from course_utils.checks import run_checks
from course_utils.exercise_checks.browser import contract_model

TOPIC = "browser"


@pytest.fixture(autouse=True)
def _browser_or_skip(request):
    """The graded cases need a browser (skip elsewhere, fail in CI); the rest do not."""
    if request.node.name.startswith(("test_right_answer", "test_wrong_answer")):
        from browser_support import browser_ready

        browser_ready()


def test_the_check_model_has_the_lessons_input_contract():
    """Is the checks' model one that Python ONNX Runtime runs with input x, float32 (batch, 1, H, W),
    and output logits (batch, 10)?"""
    session = ort.InferenceSession(contract_model(12, 3), providers=["CPUExecutionProvider"])
    (given,), (out,) = session.get_inputs(), session.get_outputs()
    assert (given.name, given.type, given.shape) == ("x", "tensor(float)", ["batch", 1, 12, 12])
    assert out.name == "logits"
    assert session.run(None, {"x": np.zeros((3, 1, 12, 12), np.float32)})[0].shape == (3, 10)


def test_without_a_browser_the_exercise_is_not_checked_never_wrong(monkeypatch, capsys):
    """Where no browser can be driven, does the check say the answer needs a browser (and why),
    instead of failing it?"""
    from course_utils import checks
    from course_utils.exercise_checks import browser

    monkeypatch.setenv("ONNX_COURSE_CHROMIUM", "/nonexistent/chromium")
    browser.browser_outcome.cache_clear()
    verdict = run_checks("06.1", "async function predict(session, item) { return [0]; }")
    assert verdict.needs_browser and not verdict.passed
    assert verdict.feedback.startswith("needs a browser to grade: ")
    checks.check("06.1", "async function predict(session, item) { return [0]; }")
    assert capsys.readouterr().out.startswith("[not checked] Exercise 06.1: needs a browser to grade")
