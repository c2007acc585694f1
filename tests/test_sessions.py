"""Tests for course_utils/sessions.py: matched session options and the device decision."""
import pytest

from course_utils import sessions


@pytest.mark.parametrize("level, member", sorted(sessions.OPTIMIZATION_LEVELS.items()))
def test_session_options_are_matched(level, member):
    """Do the options carry the thread count, one inter-op thread, no spinning and the level?"""
    import onnxruntime as ort

    options = sessions.fair_session_options(3, level)
    assert options.intra_op_num_threads == 3
    assert options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.graph_optimization_level == getattr(ort.GraphOptimizationLevel, member)


def test_session_options_refuse_bad_values():
    """Are an unknown level and a zero thread count refused with the valid choices?"""
    with pytest.raises(ValueError, match="disabled"):
        sessions.fair_session_options(2, "max")
    with pytest.raises(ValueError, match="threads must be >= 1"):
        sessions.fair_session_options(0)


@pytest.mark.parametrize("requested, torch_cuda, providers, expected", [
    ("auto", False, ["CPUExecutionProvider"], "cpu"),
    ("auto", True, ["CPUExecutionProvider"], "cpu"),  # GPU torch vs CPU ORT is no comparison
    ("auto", False, ["CUDAExecutionProvider", "CPUExecutionProvider"], "cpu"),
    ("auto", True, ["CUDAExecutionProvider", "CPUExecutionProvider"], "cuda"),
    ("cpu", True, ["CUDAExecutionProvider", "CPUExecutionProvider"], "cpu"),
    ("cuda", True, ["CUDAExecutionProvider", "CPUExecutionProvider"], "cuda"),
])
def test_device_decision(requested, torch_cuda, providers, expected):
    """Is the GPU chosen only when both PyTorch and ONNX Runtime can use it?"""
    chosen = sessions.choose_device(requested, torch_cuda=torch_cuda, ort_providers=providers)
    assert chosen == expected


@pytest.mark.parametrize("torch_cuda, providers, message", [
    (False, ["CUDAExecutionProvider"], "torch.cuda.is_available"),
    (True, ["CPUExecutionProvider"], "onnxruntime-gpu"),
])
def test_cuda_asked_for_but_missing_says_what_to_install(torch_cuda, providers, message):
    """Does asking for CUDA without it name the missing piece and the fix?"""
    with pytest.raises(RuntimeError, match=message):
        sessions.choose_device("cuda", torch_cuda=torch_cuda, ort_providers=providers)
    with pytest.raises(ValueError, match="'cpu', 'cuda' or 'auto'"):
        sessions.choose_device("tpu", torch_cuda=torch_cuda, ort_providers=providers)
