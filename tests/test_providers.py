"""Tests for course_utils/providers.py."""
import re
import warnings

import pytest
import torch

from course_utils.providers import format_providers, known_providers, list_providers, make_session


@pytest.fixture(scope="module")
def small_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("providers") / "small.onnx"
    model = torch.nn.Sequential(torch.nn.Linear(4, 3)).eval()
    torch.onnx.export(model, (torch.randn(2, 4),), str(path), input_names=["x"], verbose=False)
    return path


def test_table_lists_all_known_and_marks_cpu_available():
    """Does the table list every known provider, with the CPU one available?"""
    import onnxruntime as ort

    rows = list_providers()
    assert [r.name for r in rows] == known_providers()  # plugins registered here at the end
    assert [r.name for r in rows][:len(ort.get_all_providers())] == ort.get_all_providers()
    assert {r.name for r in rows if r.available} == set(ort.get_available_providers())
    assert "NVIDIA" in next(r.target for r in rows if r.name == "CUDAExecutionProvider")
    assert re.search(r"^CPUExecutionProvider +yes", format_providers(rows), re.M)


def test_absent_provider_warns_and_falls_back(small_onnx):
    """Does asking for an absent provider warn visibly and still give a CPU session?"""
    import onnxruntime as ort

    absent = [p for p in ("CUDAExecutionProvider", "CoreMLExecutionProvider")
              if p not in ort.get_available_providers()][0]
    with pytest.warns(UserWarning, match=f"{absent} not available"):
        session = make_session(small_onnx, prefer=[absent])
    assert session.get_providers() == ["CPUExecutionProvider"]


def test_default_is_cpu_without_warning(small_onnx):
    """Does the default session use the CPU quietly?"""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert make_session(small_onnx).get_providers() == ["CPUExecutionProvider"]


def test_misspelt_provider_is_refused_with_valid_names(small_onnx):
    """Is a misspelt provider refused with a suggestion and the valid names?"""
    with pytest.raises(ValueError) as error:
        make_session(small_onnx, prefer=["CudaExecutionProvider"])
    message = str(error.value)
    assert "did you mean 'CUDAExecutionProvider'" in message and "CPUExecutionProvider" in message


def test_missing_model_file_names_the_next_step(tmp_path):
    """Is a missing .onnx file reported with how to make one?"""
    with pytest.raises(FileNotFoundError, match="export"):
        make_session(tmp_path / "nope.onnx")


def test_openvino_goes_through_the_device_api_with_f32_pinned_or_warns_why(small_onnx):
    """Asked for OpenVINO, does the session put it first with f32 arithmetic (outputs within 1e-5
    of the CPU provider's), or, where the plugin offers no device, warn with the reason?"""
    import numpy as np
    import onnxruntime as ort

    from course_utils.devices import OPENVINO, register_openvino

    status = register_openvino()
    x = {"x": np.linspace(-3, 3, 8, dtype=np.float32).reshape(2, 4)}  # (batch 2, 4) as exported
    if status.usable:
        session = make_session(small_onnx, prefer=[OPENVINO])
        assert session.get_providers() == [OPENVINO, "CPUExecutionProvider"]
        cpu = ort.InferenceSession(str(small_onnx), providers=["CPUExecutionProvider"])
        assert np.abs(session.run(None, x)[0] - cpu.run(None, x)[0]).max() < 1e-5
    else:
        with pytest.warns(UserWarning, match=re.escape(status.reason)):
            session = make_session(small_onnx, prefer=[OPENVINO])
        assert session.get_providers() == ["CPUExecutionProvider"]
