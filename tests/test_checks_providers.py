"""Tests for the checks of notebook 01: course_utils/exercise_checks/providers.py and
course_utils/grading/hidden_checks/providers.py.

Every answer goes through what the grader does with it (``check_support.grade``; 01.4's
function is called across the data boundary). 01.3's right answer is what a real session
reports on this machine, found here independently of the check; the onnxruntime-gpu layout is
tested in test_exercise_checks_gpu_build.py.
"""
import io
import warnings

import onnxruntime as ort
import pytest
import torch

from check_support import assert_fails_hidden, assert_fails_public, assert_right, grade, registered_checks

CPU, CUDA, TRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
PRIORITY = [CUDA, CPU]


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


def choose_providers(wanted, available):
    """01.4's right answer, written another way than the reference (dict.fromkeys keeps order)."""
    unknown = set(wanted) - set(ort.get_all_providers())
    if unknown:
        raise ValueError(f"not providers: {sorted(unknown)}")
    return [p for p in dict.fromkeys(wanted) if p in available and p != CPU] + [CPU]


def _nvidia_from_the_table():
    from course_utils.providers import list_providers

    return [p.name for p in list_providers() if "NVIDIA" in p.target]


RIGHT = {
    "01.1": lambda: {"cpu": CPU, "nvidia_gpu": [CUDA] + [p for p in _nvidia_from_the_table() if p != CUDA]},
    "01.2": lambda: PRIORITY,
    "01.4": lambda: choose_providers,
}


@pytest.mark.parametrize("exercise", sorted(RIGHT))
def test_right_answer_passes(graded, exercise):
    """Does a right answer pass every check?"""
    assert_right(graded(exercise, RIGHT[exercise]()))


def test_the_table_has_three_nvidia_rows():
    """Does the notebook's sentence "several run it on an NVIDIA GPU" hold, with CUDA among them?"""
    assert len(_nvidia_from_the_table()) >= 2 and CUDA in _nvidia_from_the_table()


def test_what_the_session_uses_passes(graded, used):
    """Does the list a real session reports pass every check of 01.3?"""
    assert used[-1] == CPU
    assert_right(graded("01.3", used))


# --- one wrong answer per hidden check ----------------------------------------------------

def _keeps_duplicates(wanted, available):
    if set(wanted) - set(ort.get_all_providers()):
        raise ValueError("unknown")
    return [p for p in wanted if p in available and p != CPU] + [CPU]


def _cpu_where_it_was(wanted, available):
    if set(wanted) - set(ort.get_all_providers()):
        raise ValueError("unknown")
    chosen = list(dict.fromkeys(p for p in wanted if p in available))
    return chosen if CPU in chosen else chosen + [CPU]


WRONG_FOR_HIDDEN = [
    pytest.param("01.4", _keeps_duplicates, "providers:_each_name_once", "choose_providers(",
                 id="01.4-keeps-duplicates"),
    pytest.param("01.4", _cpu_where_it_was, "providers:_cpu_last_wherever_it_was_wanted", "choose_providers(",
                 id="01.4-cpu-left-first"),
]


@pytest.mark.parametrize("exercise, answer, check, feedback", WRONG_FOR_HIDDEN)
def test_wrong_answer_fails_its_hidden_check(graded, exercise, answer, check, feedback):
    """Does an answer that passes the public checks fail this hidden check, with its feedback?"""
    assert_fails_hidden(graded(exercise, answer), check, feedback)


# --- one wrong answer (at least) per public check -----------------------------------------

def _package_list_or_cpu_twice(used):
    """The package's own list where it differs from what the session uses; else a wrong list."""
    available = ort.get_available_providers()
    return available if available != used else [CPU, CPU]


def _no_cpu_fallback(wanted, available):
    return [p for p in wanted if p in available]


def _available_order(wanted, available):
    return [p for p in available if p in wanted and p != CPU] + [CPU]


def _keeps_missing(wanted, available):
    if set(wanted) - set(ort.get_all_providers()):
        raise ValueError("unknown")
    return [p for p in dict.fromkeys(wanted) if p != CPU] + [CPU]


def _drops_misspelt_silently(wanted, available):
    return [p for p in dict.fromkeys(wanted) if p in available and p != CPU] + [CPU]


def _raises_key_error(wanted, available):
    known = {p: p for p in ort.get_all_providers()}
    return [known[p] for p in dict.fromkeys(wanted) if p in available and p != CPU] + [CPU]


WRONG_FOR_PUBLIC = [
    pytest.param("01.1", lambda used: {"cpu": CPU}, "providers:_shape_of_answer",
                 "expected a dict with exactly the keys 'cpu' and 'nvidia_gpu'", id="01.1-missing-key"),
    pytest.param("01.1", lambda used: {"cpu": "CPU", "nvidia_gpu": [CUDA]}, "providers:_shape_of_answer",
                 "'CPU' is not a provider name; copy names from get_all_providers()", id="01.1-short-name"),
    pytest.param("01.1", lambda used: {"cpu": "DnnlExecutionProvider", "nvidia_gpu": [CUDA]},
                 "providers:_shape_of_answer", "which provider runs on any CPU?", id="01.1-intel-only-cpu-provider"),
    pytest.param("01.1", lambda used: {"cpu": CPU, "nvidia_gpu": [CUDA, "DmlExecutionProvider"]},
                 "providers:_every_nvidia_provider", "DirectML, not NVIDIA GPUs", id="01.1-directml"),
    pytest.param("01.1", lambda used: {"cpu": CPU, "nvidia_gpu": [CUDA, TRT]},
                 "providers:_every_nvidia_provider", "more row(s) of the table target NVIDIA GPUs",
                 id="01.1-one-left-out"),
    pytest.param("01.1", lambda used: {"cpu": CPU, "nvidia_gpu": [p for p in _nvidia_from_the_table() if p != CUDA]},
                 "providers:_every_nvidia_provider", "more row(s) of the table target NVIDIA GPUs",
                 id="01.1-cuda-left-out"),
    pytest.param("01.1", lambda used: {"cpu": CPU, "nvidia_gpu": [TRT, CUDA] + [p for p in _nvidia_from_the_table()
                                                                              if p not in (CUDA, TRT)]},
                 "providers:_every_nvidia_provider", "needs TensorRT; put first the one without TensorRT",
                 id="01.1-tensorrt-first"),
    pytest.param("01.1", lambda used: {"cpu": CPU, "nvidia_gpu": [CUDA, CUDA, TRT]},
                 "providers:_every_nvidia_provider", "a provider is listed twice", id="01.1-twice"),
    pytest.param("01.2", lambda used: [CUDA], "providers:_priority",
                 "expected a list of at least two provider names", id="01.2-no-fallback"),
    pytest.param("01.2", lambda used: [CPU, CUDA], "providers:_priority",
                 "the last entry should be a provider that can run every node", id="01.2-cpu-first"),
    pytest.param("01.2", lambda used: ["DmlExecutionProvider", CPU], "providers:_priority",
                 "the task asks for CUDA first", id="01.2-directml-first"),
    pytest.param("01.2", lambda used: [TRT, CUDA, CPU], "providers:_priority",
                 "the task asks for CUDA first", id="01.2-tensorrt-first"),
    pytest.param("01.3", lambda used: CPU, "providers:_used",
                 "expected the list of provider names the session reports", id="01.3-a-string"),
    pytest.param("01.3", lambda used: PRIORITY if PRIORITY != used else [CPU, CUDA], "providers:_used",
                 "this lists what the package offers or what you asked for", id="01.3-the-priority-list"),
    pytest.param("01.3", _package_list_or_cpu_twice, "providers:_used",
                 "this lists what the package offers", id="01.3-the-package-list"),
    pytest.param("01.4", lambda used: _no_cpu_fallback, "providers:_keeps_what_is_available",
                 "the CPU provider must end the list", id="01.4-no-cpu-fallback"),
    pytest.param("01.4", lambda used: _keeps_missing, "providers:_keeps_what_is_available",
                 "keep only the providers this machine has", id="01.4-keeps-missing-providers"),
    pytest.param("01.4", lambda used: _available_order, "providers:_keeps_what_is_available",
                 "keep the order of `wanted`", id="01.4-order-of-available"),
    pytest.param("01.4", lambda used: lambda wanted, available: ",".join(wanted),
                 "providers:_keeps_what_is_available", "choose_providers returned str", id="01.4-a-string"),
    pytest.param("01.4", lambda used: _drops_misspelt_silently, "providers:_refuses_a_misspelt_name",
                 "raise a ValueError, or a typo looks like a missing GPU", id="01.4-misspelt-dropped"),
    pytest.param("01.4", lambda used: _raises_key_error, "providers:_refuses_a_misspelt_name",
                 "raise a ValueError", id="01.4-key-error-not-value-error"),
]


@pytest.mark.parametrize("exercise, make, check, feedback", WRONG_FOR_PUBLIC)
def test_wrong_answer_fails_a_public_check_with_a_hint(graded, used, exercise, make, check, feedback):
    """Does the student's own check() refuse this answer with a hint that gives nothing away?"""
    answer = make(used)
    if exercise == "01.3" and answer == used:
        pytest.fail("the wrong answer is the right one on this machine")
    words = {"01.1": ["CPUExecutionProvider'", "NvTensorRTRTX"], "01.2": ["CUDAExecutionProvider"],
             "01.3": ["get_providers"], "01.4": ["get_all_providers", "dict.fromkeys"]}
    assert_fails_public(graded(exercise, answer), check, feedback, answer_words=words[exercise])


def test_every_check_of_this_notebook_has_a_wrong_answer_here():
    """Is every hidden and every public check of notebook 01 tried with a wrong answer above?"""
    assert registered_checks("providers", hidden=True) == {p.values[2] for p in WRONG_FOR_HIDDEN}
    assert registered_checks("providers", hidden=False) == {p.values[2] for p in WRONG_FOR_PUBLIC}
