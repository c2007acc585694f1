"""Tests for course_utils/contenders.py: the runtimes a user would pick instead.

Nothing here asserts a speed. A tiny CNN goes through the contenders that start in well under
a second (eager PyTorch, channels_last, ONNX Runtime, OpenVINO where installed); the rest of
the questions are about rows: every one names its precision, a runtime that cannot run here
is a skipped row with its reason, and the fastest row is the lowest median.
"""
import pytest

from course_utils import contenders
from course_utils.contenders import CONTENDERS, compare_runtimes, fastest_row, format_contenders, why_unavailable
from course_utils.devices import OPENVINO, PluginStatus, register_openvino

NO_BF16 = {"flags": {"avx2": True, "avx512_bf16": False, "amx_bf16": False}}
BF16 = {"flags": {"avx512_bf16": True}}
TINY_CFG = {"warmup": 1, "budget_s": 0.01, "min_repeats": 3, "max_repeats": 4, "round_runs": 2,
            "headline_samples": 0}


def test_every_contender_names_its_precision():
    """Does every contender say which precision its arithmetic runs in, fp32, bf16 or int8?"""
    assert {precision.split()[0] for _, precision in CONTENDERS.values()} == {"fp32", "bf16", "int8"}
    assert CONTENDERS["openvino"][1] == "fp32" and "f32" in CONTENDERS["openvino"][0]


def test_a_runtime_that_cannot_run_here_says_why(monkeypatch):
    """No bf16 instructions, no openvino package, no C++ compiler, no int8 file, a plugin
    without a device: is each a reason?"""
    assert "no bf16 instructions" in why_unavailable("torch-bf16", NO_BF16)
    assert why_unavailable("torch-bf16", BF16) is None
    assert why_unavailable("ort-int8", BF16) == "no int8 file given"
    monkeypatch.setattr(contenders.shutil, "which", lambda name: None)
    assert "C++ compiler" in why_unavailable("torch-compile", BF16)
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert "openvino package is not installed" in why_unavailable("openvino", BF16)
    no_device = PluginStatus(OPENVINO, True, reason="the OpenVINO plugin offers no device here")
    monkeypatch.setattr(contenders, "register_openvino", lambda: no_device)
    assert why_unavailable("ort-openvino-int8", BF16, int8_path="x.onnx") == no_device.reason
    with pytest.raises(KeyError, match="choose from"):
        why_unavailable("tensorflow", BF16)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import torch

    from course_utils.export import export_model

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(8, 4)).eval()
    path = export_model(model, tmp_path_factory.mktemp("tiny") / "tiny.onnx", input_shape=(3, 16, 16))
    return model, path, torch.rand(1, 3, 16, 16)


def test_rows_for_every_runtime_asked_skipped_or_measured(tiny):
    """Does every runtime asked get a row, in order, the unsupported one skipped with its reason
    and the others measured, with a speedup over eager PyTorch and no interval from 4 samples?"""
    import torch

    model, path, x = tiny
    asked = ["torch-eager", "torch-channels-last", "torch-bf16", "ort", "openvino", "ort-openvino"]
    before = torch.get_num_threads()
    rows = compare_runtimes(model, path, x, runtimes=asked, threads=1, hardware=NO_BF16, cfg=TINY_CFG)
    assert torch.get_num_threads() == before
    assert [r["runtime"] for r in rows] == asked and all(r["precision"] for r in rows)
    bf16 = rows[2]
    assert "no bf16 instructions" in bf16["skipped"] and "median_ms" not in bf16
    measured = [r for r in rows if not r["skipped"]]
    assert {"torch-eager", "torch-channels-last", "ort"} <= {r["runtime"] for r in measured}
    for row in measured:
        assert row["n"] >= 3 and row["speedup"] > 0 and row["speedup_low"] is None
        assert "fewer than" in row["interval"]
    openvino = rows[4]
    if not openvino["skipped"]:  # the fp32 row really ran in f32, whatever the CPU prefers
        assert openvino["precision_hint_used"] in ("f32", "float32")
    provider = rows[5]  # OpenVINO inside ONNX Runtime: every node, in f32, or the reason
    status = register_openvino()
    if status.usable:
        assert set(provider["nodes_per_provider"]) == {OPENVINO}  # every node
        assert set(provider["kernel_precisions"]) == {"f32"}  # what OpenVINO says it ran
    else:
        assert provider["skipped"] == status.reason
    table = format_contenders(rows)
    assert "torch-bf16 skipped: this CPU has no bf16 instructions" in table


def test_fastest_row_is_the_lowest_median_with_the_ties_named():
    """Is the fastest row the lowest median, naming the rows whose quartile band reaches it?"""
    def row(name, median, q1, q3):
        return {"runtime": name, "label": name, "precision": "fp32", "median_ms": median,
                "q1_ms": q1, "q3_ms": q3, "speedup": 10 / median, "skipped": None}

    rows = [row("a", 10.0, 9.5, 10.5), row("b", 2.0, 1.9, 2.1), row("c", 2.05, 2.0, 2.2),
            {"runtime": "d", "precision": "bf16", "skipped": "no bf16"}]
    best = fastest_row(rows)
    assert best["runtime"] == "b" and best["within_noise_of"] == ["c"]
    assert fastest_row(rows[3:]) is None
