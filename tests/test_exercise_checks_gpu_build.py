"""Do the install and provider checks accept correct answers on an onnxruntime-gpu install?

A student with an NVIDIA GPU installs ``onnxruntime-gpu`` instead of ``onnxruntime``; the
module is the same, the distribution's name is not, and a GPU build may have no usable
GPU. These tests simulate that layout on any machine.
"""
import importlib.metadata as metadata

import onnxruntime as ort
import pytest

from course_utils import checks, install
from course_utils.grading import load_hidden_checks
from course_utils.exercise_checks import install as install_checks
from course_utils.exercise_checks import providers as provider_checks

load_hidden_checks()  # these tests run the grader's checks too

GPU_BUILD_PROVIDERS = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


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


@pytest.fixture
def gpu_build_without_gpu(monkeypatch):
    """onnxruntime-gpu on a machine whose GPU cannot be used: sessions fall back to the CPU."""
    class FallbackSession:
        def __init__(self, model, providers):
            self.requested = providers

        def get_providers(self):
            return ["CPUExecutionProvider"]

    monkeypatch.setattr(ort, "get_available_providers", lambda: list(GPU_BUILD_PROVIDERS))
    monkeypatch.setattr(ort, "InferenceSession", FallbackSession)


def test_cpu_fallback_passes_on_a_gpu_build_without_gpu(gpu_build_without_gpu):
    """Does 01.3's correct answer, the CPU the session fell back to, pass?"""
    verdict = checks.run_checks("01.3", ["CPUExecutionProvider"], include_hidden=True)
    assert verdict.passed, verdict.feedback


@pytest.mark.parametrize("wrong", [GPU_BUILD_PROVIDERS, ["CUDAExecutionProvider", "CPUExecutionProvider"]],
                         ids=["package-list", "priority-list"])
def test_package_or_priority_list_still_fails(gpu_build_without_gpu, wrong):
    """Are the package's list and the requested list still refused with the hint?"""
    verdict = checks.run_checks("01.3", wrong, include_hidden=True)
    assert not verdict.passed and "ask the session itself" in verdict.feedback


def test_reference_session_on_this_machine_matches_a_real_session(tmp_path):
    """Does the check's probe report what a real session with CUDA first reports here?"""
    import torch

    model = torch.nn.Linear(2, 2).eval()
    path = tmp_path / "small.onnx"
    torch.onnx.export(model, (torch.randn(2, 2),), str(path), dynamo=False)
    wanted = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
              if p in ort.get_available_providers()]
    real = ort.InferenceSession(str(path), providers=wanted).get_providers()
    assert provider_checks.session_providers(["CUDAExecutionProvider", "CPUExecutionProvider"]) == real
