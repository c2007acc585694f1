"""Tests for the checks of notebook 01: course_utils/exercise_checks/providers.py and
course_utils/grading/hidden_checks/providers.py.

Every answer goes through what the grader does with it (``check_support.grade``). 01.3's
right answer is what a real session reports on this machine, found here independently of
the check; the onnxruntime-gpu layout is tested in test_exercise_checks_gpu_build.py.
"""
import io
import warnings

import onnxruntime as ort
import pytest
import torch

from check_support import assert_fails_hidden, assert_fails_public, assert_right, grade, registered_checks

PRIORITY = ["CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.fixture(scope="module")
def used():
    """01.3's right answer: what a session asked for CUDA then CPU really uses here."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's notice
        torch.onnx.export(torch.nn.Linear(2, 2).eval(), (torch.randn(2, 2),), buffer, dynamo=False)
    requested = [p for p in PRIORITY if p in ort.get_available_providers()]
    return ort.InferenceSession(buffer.getvalue(), providers=requested).get_providers()


@pytest.fixture
def graded(tmp_path):
    return lambda exercise, answer: grade(exercise, answer, tmp_path, tmp_path / "grader")


RIGHT = {
    "01.1": {"cpu": "CPUExecutionProvider",
             "nvidia_gpu": ["CUDAExecutionProvider", "TensorrtExecutionProvider"]},
    "01.2": PRIORITY,
}


@pytest.mark.parametrize("exercise", ["01.1", "01.2"])
def test_right_answer_passes(graded, exercise):
    """Does the notebook's answer pass every check?"""
    assert_right(graded(exercise, RIGHT[exercise]))


def test_what_the_session_uses_passes(graded, used):
    """Does the list a real session reports pass every check of 01.3?"""
    assert used[-1] == "CPUExecutionProvider"
    assert_right(graded("01.3", used))


# --- one wrong answer per hidden check ----------------------------------------------------

def _package_list_or_cpu_twice(used):
    """The package's own list where it differs from what the session uses; else a wrong list."""
    available = ort.get_available_providers()
    return available if available != used else ["CPUExecutionProvider", "CPUExecutionProvider"]


WRONG_FOR_HIDDEN = [
    pytest.param("01.1", lambda used: {"cpu": "CPUExecutionProvider",
                                       "nvidia_gpu": ["MIGraphXExecutionProvider"]},
                 "providers:_nvidia_providers", "MIGraphXExecutionProvider targets", id="01.1-amd-gpu-provider"),
    pytest.param("01.1", lambda used: {"cpu": "CPUExecutionProvider",
                                       "nvidia_gpu": ["TensorrtExecutionProvider", "CUDAExecutionProvider"]},
                 "providers:_nvidia_providers", "the most common NVIDIA provider needs only CUDA",
                 id="01.1-tensorrt-first"),
    pytest.param("01.2", lambda used: ["DmlExecutionProvider", "CPUExecutionProvider"],
                 "providers:_cuda_first", "the list should try the NVIDIA GPU first", id="01.2-directml-first"),
    pytest.param("01.3", lambda used: PRIORITY if PRIORITY != used else ["CPUExecutionProvider"],
                 "providers:_not_the_package_list", "this lists what the package offers or what you asked for",
                 id="01.3-the-priority-list"),
    pytest.param("01.3", _package_list_or_cpu_twice, "providers:_not_the_package_list",
                 "this lists what the package offers", id="01.3-the-package-list"),
]


@pytest.mark.parametrize("exercise, make, check, feedback", WRONG_FOR_HIDDEN)
def test_wrong_answer_fails_its_hidden_check(graded, used, exercise, make, check, feedback):
    """Does an answer that passes the public checks fail this hidden check, with its feedback?"""
    if exercise == "01.3" and make(used) == used:
        pytest.fail("the wrong answer is the right one on this machine")
    assert_fails_hidden(graded(exercise, make(used)), check, feedback)


# --- one wrong answer (at least) per public check -----------------------------------------

WRONG_FOR_PUBLIC = [
    pytest.param("01.1", {"cpu": "CPUExecutionProvider"}, "providers:_shape_of_answer",
                 "expected a dict with exactly the keys 'cpu' and 'nvidia_gpu'", id="01.1-missing-key"),
    pytest.param("01.1", {"cpu": "CPU", "nvidia_gpu": ["CUDAExecutionProvider"]}, "providers:_shape_of_answer",
                 "'CPU' is not a provider name; copy names from get_all_providers()", id="01.1-short-name"),
    pytest.param("01.1", {"cpu": "DnnlExecutionProvider", "nvidia_gpu": ["CUDAExecutionProvider"]},
                 "providers:_shape_of_answer", "which provider runs on any CPU?", id="01.1-intel-only-cpu-provider"),
    pytest.param("01.2", ["CUDAExecutionProvider"], "providers:_priority",
                 "expected a list of at least two provider names", id="01.2-no-fallback"),
    pytest.param("01.2", ["CPUExecutionProvider", "CUDAExecutionProvider"], "providers:_priority",
                 "the last entry should be a provider that can run every node", id="01.2-cpu-first"),
    pytest.param("01.3", "CPUExecutionProvider", "providers:_used",
                 "expected the list of provider names the session reports", id="01.3-a-string"),
    pytest.param("01.3", ["CUDAExecutionProvider"], "providers:_used",
                 "a session with the CPU in its priority list always reports it too", id="01.3-cpu-missing"),
]


@pytest.mark.parametrize("exercise, answer, check, feedback", WRONG_FOR_PUBLIC)
def test_wrong_answer_fails_a_public_check_with_a_hint(graded, exercise, answer, check, feedback):
    """Does the student's own check() refuse this answer with a hint that gives nothing away?"""
    words = {"01.1": ["CPUExecutionProvider'"], "01.2": ["CUDAExecutionProvider"], "01.3": ["get_providers"]}
    assert_fails_public(graded(exercise, answer), check, feedback, answer_words=words[exercise])


def test_every_check_of_this_notebook_has_a_wrong_answer_here():
    """Is every hidden and every public check of notebook 01 tried with a wrong answer above?"""
    assert registered_checks("providers", hidden=True) == {p.values[2] for p in WRONG_FOR_HIDDEN}
    assert registered_checks("providers", hidden=False) == {p.values[2] for p in WRONG_FOR_PUBLIC}
