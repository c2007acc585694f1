"""Do the install checks accept correct answers on an onnxruntime-gpu install?

A student with an NVIDIA GPU installs ``onnxruntime-gpu`` instead of ``onnxruntime``; the
module is the same, the distribution's name is not. These tests simulate that layout on any
machine. (Notebook 01's checks call the student's functions with data, which no build changes.)
"""
import importlib.metadata as metadata

import onnxruntime as ort
import pytest

from course_utils import checks, install
from course_utils.grading import load_hidden_checks
from course_utils.exercise_checks import install as install_checks

load_hidden_checks()  # these tests run the grader's checks too


@pytest.fixture
def gpu_wheel_only(monkeypatch):
    """Only the distribution onnxruntime-gpu is installed (same version as the module)."""
    real_version = metadata.version

    def version(name):
        if name == "onnxruntime":
            raise metadata.PackageNotFoundError(name)
        if name == "onnxruntime-gpu":
            return ort.__version__
        return real_version(name)

    monkeypatch.setattr(install._metadata, "version", version)


def test_distributions_of_naming_the_gpu_wheel_passes_with_only_the_gpu_wheel(gpu_wheel_only):
    """Does 00.3's public check want ['onnxruntime-gpu'] where only that build is installed?"""
    assert install_checks.call_distributions_of(lambda module: ["onnxruntime-gpu"], "onnxruntime")
    checks.load_check_modules()
    for fn, hidden in checks._REGISTRY["00.3"]:
        if fn.__name__ == "_onnxruntime_builds":
            fn(lambda module: ["onnxruntime-gpu"])  # passes
            with pytest.raises(checks.CheckFailed):
                fn(lambda module: ["onnxruntime"])


def test_doctor_counts_the_gpu_wheel_as_onnxruntime(gpu_wheel_only):
    """Does the install report accept onnxruntime-gpu for the onnxruntime pin?"""
    rows = {row.name: row for row in install._package_rows()}
    assert rows["onnxruntime"].found == ort.__version__
    assert rows["onnxruntime"].status != "missing"
