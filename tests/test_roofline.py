"""Tests for course_utils/roofline.py: the measured fp32 ceiling, the nominal peak beside it,
the balance with matched threads.

The arithmetic is tested on rates and clocks chosen here; one test per ONNX Runtime
path (with the NCHWc layout this CPU gets, and without it, as ONNX Runtime's ARM
builds run) measures real kernels against a real ceiling on this machine.
"""
import re

import numpy as np
import pytest
import torch

from course_utils.bench_results import BenchmarkResult, add_derived_figures
from course_utils.roofline import (Probe, ceiling_from_rates, ceiling_summary,
                                   compare_with_nominal, conv_model, measure_balance,
                                   measure_copy_bandwidth, measure_fp32_ceiling)
from course_utils.sessions import default_threads, fair_session_options

SMALL = (Probe("onnxruntime", "Conv", 16, 8), Probe("onnxruntime", "MatMul", 32),
         Probe("torch", "conv2d", 16, 8), Probe("torch", "mm", 32))


def test_ceiling_counts_one_cores_best_once_per_core():
    """Is the ceiling cores x one core's best (cores capped at the physical ones), or the
    rate measured with every thread where that is higher, and is its spread how far the median
    round of the probe that set it fell below its best?"""
    rates = {("conv", 1): [100.0, 95.0, 20.0], ("mm", 1): [90.0, 91.0],
             ("conv", 4): [300.0, 310.0], ("mm", 4): [200.0, 150.0]}
    ceiling = ceiling_from_rates(rates, 4, cores=4)
    assert ceiling.gflops == 400.0 and ceiling.per_core_probe == "conv"
    assert ceiling.spread == pytest.approx(0.05)  # the median round, 95.0, 5 % below the best
    assert ceiling.threads_gflops == 310.0 and "4 x 100" in ceiling.basis
    assert ceiling_from_rates(rates, 4, cores=2).gflops == 310.0  # 2 cores x 100 < 310 measured
    assert "with 4 threads" in ceiling_from_rates(rates, 4, cores=2).basis
    assert ceiling_from_rates(rates, 1).gflops == 100.0
    with pytest.raises(ValueError, match="1 thread"):
        ceiling_from_rates({("conv", 4): [300.0]}, 4)


def test_a_faster_measurement_raises_the_ceiling_and_says_so():
    """Does a rate above the ceiling raise it (never the other way), saying whether it was
    within the probes' spread?"""
    ceiling = ceiling_from_rates({("conv", 1): [100.0, 96.0]}, 1)
    assert ceiling.at_least(99.0, "a row") is ceiling
    near, far = ceiling.at_least(101.5, "row A"), ceiling.at_least(150.0, "row B")
    assert near.gflops == 101.5 and near.raised_by["within_spread"]  # spread: 2 %
    assert far.raised_by == {"what": "row B", "gflops": 150.0, "probe_gflops": 100.0,
                             "within_spread": False}
    assert "raised from the probes' 100 to 150 GFLOP/s by row B" in far.summary()
    assert "measure on an idle machine" in far.summary()


def _records(gflops_values):
    """Benchmark records whose work per second is exactly ``gflops_values`` (1 GFLOP each)."""
    return [{"backend": backend, "batch": 1, "size": 16, "median_ms": 1e3 / value, "n": 5,
             "iqr_ms": 0.1, "p90_ms": 1e3 / value, "setup_ms": None, "q1_ms": 1e3 / value,
             "q3_ms": 1e3 / value}
            for backend, value in zip(("torch-eager", "ort-disabled", "ort-all"), gflops_values)]


def test_no_printed_share_of_the_ceiling_exceeds_100_percent():
    """With a row faster than the probes, are all shares at most 1 of the (raised) ceiling,
    does the table print none above 100 %, and does the JSON say what raised it?"""
    probe = ceiling_from_rates({("conv", 1): [100.0, 99.0], ("conv", 2): [150.0, 150.0]}, 2,
                               cores=2)
    records = _records([120.0, 160.0, 230.0])
    ceiling = add_derived_figures(records, {(1, 16): 1e9}, 166.0, None, probe)
    assert ceiling.gflops == pytest.approx(230.0) and ceiling.raised_by["what"].startswith("ort-all")
    assert max(r["ceiling_share"] for r in records) == pytest.approx(1.0)
    assert records[2]["peak_share"] > 1  # the nominal figure is exceeded: an assumption is wrong
    result = BenchmarkResult(model="m", device="cpu", records=records, hardware={},
                             settings={}, ceiling=ceiling.to_dict())
    header, _, *lines = result.format_table().splitlines()
    end = header.index("% ceil") + len("% ceil")  # a right-aligned column, 7 wide
    printed = [float(line[end - 7:end]) for line in lines]
    assert printed == pytest.approx([52.2, 69.6, 100.0], abs=0.05)
    assert probe.share(120.0) == pytest.approx(0.6)  # unraised: 120 of 2 x 100


def test_nominal_peak_is_set_beside_the_ceiling_and_never_called_an_error():
    """Above the nominal figure, does the comparison blame an assumption and give the clock
    the measured rate implies; below it, does it say which assumptions could be too generous?"""
    peak = {"gflops": 166.4, "flop_per_cycle": 32, "clock_ghz": 2.6,
            "formula": "2 cores x 2.60 GHz x 32 FLOP/cycle", "assumptions": ["2 FMA units"]}
    above = compare_with_nominal(ceiling_from_rates({("conv", 1): [119.0]}, 2, cores=2), peak)
    text = " ".join(above["sentences"])
    assert above["ratio"] == pytest.approx(238 / 166.4)
    assert above["implied_clock_ghz"] == pytest.approx(119 / 32)
    assert "143%" in text and "3.72 GHz" in text and "assumption is wrong" in text
    below = compare_with_nominal(ceiling_from_rates({("conv", 1): [60.0]}, 2, cores=2), peak)
    assert "72%" in " ".join(below["sentences"]) and "one 512-bit FMA" in below["sentences"][1]
    assert not re.search(r"\berror\b", text + " ".join(below["sentences"]))


def test_measured_on_a_fake_clock(monkeypatch):
    """On a clock that advances 1 ms at every reading (so every timed run takes 1 ms), is each
    probe's rate its FLOPs per ms, and is PyTorch's thread count restored?"""
    ticks = iter(np.arange(0.0, 1e3, 1e-3))
    before = torch.get_num_threads()
    ceiling = measure_fp32_ceiling(2, probes=SMALL, rounds=2, repeats=1,
                                   clock=lambda: float(next(ticks)))
    rates = {(row["probe"], row["threads"]): row["gflops"] for row in ceiling.probes}
    assert rates == {(p.label, t): pytest.approx(p.flop / 1e-3 / 1e9) for p in SMALL for t in (1, 2)}
    assert "3x3 16ch 8x8" in ceiling.per_core_probe  # a convolution: the most FLOPs per run
    assert ceiling.spread == pytest.approx(0.0, abs=1e-9) and torch.get_num_threads() == before
    assert set(ceiling.gemm_rates()) == {"torch", "onnxruntime"}
    assert ceiling_summary(ceiling.to_dict()).startswith("measured fp32 ceiling")


def test_balance_uses_the_same_threads_on_both_sides():
    """Is the balance one core's arithmetic over one thread's copy (or both with more threads),
    and does a copy with two threads leave PyTorch's thread count as it was?"""
    ceiling = ceiling_from_rates({("conv", 1): [100.0], ("conv", 2): [150.0]}, 2, cores=2)
    one = measure_balance(1 << 16, 1, ceiling=ceiling)
    assert one["gflops"] == 100.0 and one["threads"] == 1
    assert one["flop_per_byte"] == pytest.approx(100.0 / one["gb_per_s"])
    before = torch.get_num_threads()
    two = measure_balance(1 << 16, 2, ceiling=ceiling)
    assert two["gflops"] == 200.0 and torch.get_num_threads() == before
    ticks = iter(np.arange(0.0, 10.0, 0.5))  # every copy 0.5 s
    assert measure_copy_bandwidth(4000, clock=lambda: float(next(ticks)), repeats=2) == \
        pytest.approx(2 * 4000 / 0.5 / 1e9)


# ------------------------------------------------------------------ real kernels, this CPU
def _stack_weights():
    """Weights of a small CNN stack: 3x3 convolutions at 56 and 28 px, 64 and 128 channels."""
    rng = np.random.default_rng(1)
    return [rng.standard_normal((64, 64, 3, 3), dtype=np.float32) / 24,
            rng.standard_normal((128, 64, 3, 3), dtype=np.float32) / 24,
            rng.standard_normal((128, 128, 3, 3), dtype=np.float32) / 34]


def _stack_onnx(weights):
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Conv", ["x", "w0"], ["c0"], pads=[1] * 4),
             helper.make_node("Relu", ["c0"], ["r0"]),
             helper.make_node("Conv", ["r0", "w1"], ["c1"], pads=[1] * 4, strides=[2, 2]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["y"], pads=[1] * 4)]
    graph = helper.make_graph(
        nodes, "stack", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, 56, 56])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 128, 28, 28])],
        [numpy_helper.from_array(w, f"w{i}") for i, w in enumerate(weights)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


def _best_gflops(call, flop, runs=5):
    import time

    call()
    best = min(_timed(call, time.perf_counter) for _ in range(runs))
    return flop / best / 1e9


def _timed(call, clock):
    start = clock()
    call()
    return clock() - start


STACK_FLOP = 2 * 9 * (64 * 64 * 56 * 56 + 128 * 64 * 28 * 28 + 128 * 128 * 28 * 28)


def _rates_of_real_kernels(with_torch: bool) -> dict:
    """Best GFLOP/s of the stack in ONNX Runtime (and PyTorch) on 1 thread and on every core."""
    import onnxruntime as ort

    weights, x = _stack_weights(), np.random.default_rng(2).random((1, 64, 56, 56), np.float32)
    model = _stack_onnx(weights).SerializeToString()
    rates, before = {}, torch.get_num_threads()
    try:
        for threads in sorted({1, default_threads()}):
            session = ort.InferenceSession(model, fair_session_options(threads),
                                           providers=["CPUExecutionProvider"])
            rates["onnxruntime", threads] = _best_gflops(lambda: session.run(None, {"x": x}),
                                                         STACK_FLOP)
            if with_torch:
                torch.set_num_threads(threads)
                tensors = [torch.from_numpy(w) for w in weights]
                image = torch.from_numpy(x)

                def stack():
                    with torch.inference_mode():
                        y = torch.relu(torch.nn.functional.conv2d(image, tensors[0], padding=1))
                        y = torch.relu(torch.nn.functional.conv2d(y, tensors[1], padding=1,
                                                                  stride=2))
                        return torch.nn.functional.conv2d(y, tensors[2], padding=1)

                rates["torch", threads] = _best_gflops(stack, STACK_FLOP)
    finally:
        torch.set_num_threads(before)
    return rates


def _assert_under_the_ceiling(rates):
    # two ceiling measurements around the kernels, every round kept (as benchmark does)
    ceiling = measure_fp32_ceiling(default_threads())
    later = measure_fp32_ceiling(default_threads())
    ceiling = ceiling.merge(later)
    for (library, threads), gflops in rates.items():
        top = ceiling.per_core_gflops if threads == 1 else ceiling.gflops
        assert gflops <= top * (1 + ceiling.spread), (
            f"{library} on {threads} thread(s) ran the CNN stack at {gflops:.0f} GFLOP/s, above "
            f"the ceiling {top:.0f} (spread {100 * ceiling.spread:.1f}%): {ceiling.summary()}")


def test_real_kernels_stay_under_the_measured_ceiling():
    """On this CPU, do ONNX Runtime's and PyTorch's convolutions of a small CNN stack stay
    under the measured ceiling (one core's best on 1 thread, the ceiling on every core),
    within its stated spread?"""
    _assert_under_the_ceiling(_rates_of_real_kernels(with_torch=True))


def test_real_kernels_stay_under_the_ceiling_without_nchwc(monkeypatch):
    """With every ONNX Runtime session made as a build without NCHWc kernels makes it (ARM
    builds; notebook 03's other path), do the stack's ONNX Runtime rates stay under the
    ceiling measured on that path?"""
    import onnxruntime as ort

    from course_utils.graph_opt import uses_nchwc_layout

    create = ort.InferenceSession.__init__

    def without_nchwc(self, *args, **kwargs):
        kwargs["disabled_optimizers"] = set(kwargs.get("disabled_optimizers") or ()) | {
            "NchwcTransformer"}
        create(self, *args, **kwargs)

    monkeypatch.setattr(ort.InferenceSession, "__init__", without_nchwc)
    assert not uses_nchwc_layout()
    _assert_under_the_ceiling(_rates_of_real_kernels(with_torch=False))


def test_conv_model_computes_a_padded_3x3_convolution():
    """Is the probe's one-node Conv model the convolution PyTorch computes?"""
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    weights, x = rng.random((4, 4, 3, 3), np.float32), rng.random((1, 4, 5, 5), np.float32)
    session = ort.InferenceSession(conv_model(4, 5, weights).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(weights), padding=1)
    # float32 sums of 36 products below 1: a few ulp apart at most
    np.testing.assert_allclose(session.run(None, {"x": x})[0], expected.numpy(), rtol=0, atol=1e-5)
