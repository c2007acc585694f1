"""Tests for the checks of notebook 00: course_utils/exercise_checks/install.py and
course_utils/grading/hidden_checks/install.py.

Every answer goes through what the grader does with it (``check_support.grade``): a right
answer passes every check; each hidden check has a wrong answer that passes the public
checks and fails exactly that hidden check; each public check has a wrong answer whose hint
does not give the answer away. The onnxruntime-gpu layout is tested in
test_exercise_checks_gpu_build.py.
"""
import onnx
import onnxruntime
import pytest
import torch

from check_support import assert_fails_hidden, assert_fails_public, assert_right, grade, registered_checks


@pytest.fixture(scope="module")
def outputs():
    """Exercise 00.2's right answer: a tiny Linear in PyTorch and in ONNX Runtime on one x."""
    import io
    import warnings

    torch.manual_seed(0)
    tiny = torch.nn.Linear(4, 3).eval()
    x = torch.randn(2, 4)  # (batch, features)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's notice
        torch.onnx.export(tiny, (x,), buffer, dynamo=False, input_names=["x"])
    session = onnxruntime.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        torch_out = tiny(x)
    return torch_out, session.run(None, {"x": x.numpy()})[0]


RIGHT_VERSIONS = {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


@pytest.fixture
def graded(tmp_path):
    return lambda exercise, answer: grade(exercise, answer, tmp_path, tmp_path / "grader")


def test_right_versions_pass(graded):
    """Do the two modules' __version__ pass every check of 00.1?"""
    assert_right(graded("00.1", dict(RIGHT_VERSIONS)))


def test_right_outputs_pass(graded, outputs):
    """Does the pair (PyTorch's numpy output, ONNX Runtime's output) pass every check of 00.2?"""
    torch_out, ort_out = outputs
    assert_right(graded("00.2", (torch_out.numpy(), ort_out)))


def distributions_of(module):
    """00.3's right answer, written here from the distributions' file lists (not as the reference)."""
    import importlib.metadata

    return sorted({dist.metadata["Name"] for dist in importlib.metadata.distributions()
                   if any(f.parts[:1] == (module,) or f.parts[:1] == (f"{module}.py",) for f in dist.files or [])})


def test_right_distributions_of_passes(graded):
    """Does a function that reads the distributions' file lists pass every check of 00.3?"""
    assert_right(graded("00.3", distributions_of))


# --- one wrong answer per hidden check ----------------------------------------------------

def _made_up_version():
    return {"onnx": "1.0.0", "onnxruntime": onnxruntime.__version__}


def _same_array_twice(outputs):
    ort_out = outputs[1]
    return (ort_out, ort_out)


def _torch_tensor_second(outputs):
    torch_out = outputs[0]
    return (torch_out.numpy(), torch_out.clone())


WRONG_FOR_HIDDEN = [
    pytest.param("00.2", _same_array_twice, "install:_really_two_runtimes",
                 "both entries are the same object", id="00.2-one-array-twice"),
    pytest.param("00.2", _torch_tensor_second, "install:_really_two_runtimes",
                 "the second entry is a torch tensor", id="00.2-second-from-torch-not-session"),
    pytest.param("00.3", lambda out: lambda module: [module] if module == "onnxruntime" else [],
                 "install:_import_name_is_not_the_package_name", "distributions_of('sklearn') gave []",
                 id="00.3-the-module-name-itself"),
]


@pytest.mark.parametrize("exercise, make, check, feedback", WRONG_FOR_HIDDEN)
def test_wrong_answer_fails_its_hidden_check(graded, outputs, exercise, make, check, feedback):
    """Does an answer that passes the public checks fail this hidden check, with its feedback?"""
    assert_fails_hidden(graded(exercise, make(outputs)), check, feedback)


def _indexing_raises(module):
    import importlib.metadata

    return sorted(importlib.metadata.packages_distributions()[module])  # KeyError for an unknown module


# --- one wrong answer (at least) per public check -----------------------------------------

WRONG_FOR_PUBLIC = [
    pytest.param("00.1", lambda out: [onnx.__version__, onnxruntime.__version__],
                 "install:_versions_dict", "expected a dict with the keys", id="00.1-a-list"),
    pytest.param("00.1", lambda out: {"onnx": onnx.__version__}, "install:_versions_dict",
                 "the dict lacks the key(s) ['onnxruntime']", id="00.1-missing-key"),
    pytest.param("00.1", lambda out: {"onnx": onnxruntime.__version__, "onnxruntime": onnx.__version__},
                 "install:_versions_not_swapped", "the version stored under 'onnx' is onnxruntime's",
                 id="00.1-swapped"),
    pytest.param("00.1", lambda out: _made_up_version(), "install:_versions_match_installed",
                 "the version given for onnx is not the one installed", id="00.1-made-up-version"),
    pytest.param("00.1", lambda out: {"onnx": torch.__version__, "onnxruntime": onnxruntime.__version__},
                 "install:_versions_match_installed", "the version given for onnx is not the one installed",
                 id="00.1-torch-version"),
    pytest.param("00.2", lambda out: out[1], "install:_outputs_pair", "expected a pair (torch_out, ort_out)",
                 id="00.2-one-output"),
    pytest.param("00.2", lambda out: (out[0].numpy()[:1], out[1][:1]), "install:_outputs_pair",
                 "both outputs should have shape (2, 3)", id="00.2-batch-of-one"),
    pytest.param("00.2", lambda out: (out[0].numpy() + 1.0, out[1]), "install:_outputs_pair",
                 "the two outputs differ by more than 1e-5", id="00.2-different-inputs"),
    pytest.param("00.3", lambda out: lambda module: ["onnxruntime", "onnxruntime-gpu"], "install:_onnxruntime_builds",
                 "installed distribution(s) put files in the onnxruntime module folder", id="00.3-both-builds-always"),
    pytest.param("00.3", lambda out: lambda module: "onnxruntime", "install:_onnxruntime_builds",
                 "returned str; return a list", id="00.3-a-string"),
    pytest.param("00.3", lambda out: lambda module: ["onnxruntime", "another"],
                 "install:_onnxruntime_builds", "is not sorted", id="00.3-not-sorted"),
    pytest.param("00.3", lambda out: lambda module: distributions_of("onnxruntime"), "install:_no_such_module",
                 "no installed distribution provides such a module, so return []", id="00.3-same-list-for-any-module"),
    pytest.param("00.3", lambda out: _indexing_raises, "install:_no_such_module",
                 "the function raised KeyError", id="00.3-raises-for-an-unknown-module"),
]


@pytest.mark.parametrize("exercise, make, check, feedback", WRONG_FOR_PUBLIC)
def test_wrong_answer_fails_a_public_check_with_a_hint(graded, outputs, exercise, make, check, feedback):
    """Does the student's own check() refuse this answer with a hint that gives nothing away?"""
    assert_fails_public(graded(exercise, make(outputs)), check, feedback,
                        answer_words={"00.1": [onnx.__version__], "00.2": ["atol"],
                                      "00.3": ["packages_distributions", "scikit-learn"]}[exercise])


def test_every_check_of_this_notebook_has_a_wrong_answer_here():
    """Is every hidden and every public check of notebook 00 tried with a wrong answer above?"""
    assert registered_checks("install", hidden=True) == {p.values[2] for p in WRONG_FOR_HIDDEN}
    assert registered_checks("install", hidden=False) == {p.values[2] for p in WRONG_FOR_PUBLIC}
