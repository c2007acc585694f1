"""Tests for course_utils/profiling.py: FLOP counting, the matmul peak, the per-op profile.

The ONNX graphs here are built by hand with ``onnx.helper`` from the weights of
small PyTorch modules, so that PyTorch's own ``FlopCounterMode`` is the source
of truth for the FLOP count and no export is needed.
"""
import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch.utils.flop_counter import FlopCounterMode

from course_utils.hardware import describe_hardware, theoretical_peak
from course_utils.profiling import OpProfile, count_flops, measure_gemm_rate, profile_ops


class Mixed(torch.nn.Module):
    """Grouped conv, transposed conv, linear and a batched matmul: every counted kind."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(4, 8, 3, padding=1, groups=2)
        self.up = torch.nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.fc = torch.nn.Linear(4 * 20 * 20, 6)
        self.mix = torch.nn.Parameter(torch.randn(6, 5))

    def forward(self, x):  # (b, 4, 10, 10)
        y = self.fc(self.up(torch.relu(self.conv(x))).flatten(1))  # (b, 6)
        return y @ self.mix  # (b, 5)


def _mixed_onnx(module: Mixed, dynamic: bool) -> onnx.ModelProto:
    """The same computation as ``Mixed`` as an ONNX graph (batch symbolic if ``dynamic``)."""
    init = lambda name, t: numpy_helper.from_array(t.detach().numpy(), name)  # noqa: E731
    nodes = [
        helper.make_node("Conv", ["x", "cw", "cb"], ["c"], pads=[1, 1, 1, 1], group=2),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("ConvTranspose", ["r", "tw", "tb"], ["u"], strides=[2, 2]),
        helper.make_node("Flatten", ["u"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["g"], transB=1),
        helper.make_node("MatMul", ["g", "mix"], ["y"]),
    ]
    inits = [init("cw", module.conv.weight), init("cb", module.conv.bias),
             init("tw", module.up.weight), init("tb", module.up.bias),
             init("fw", module.fc.weight), init("fb", module.fc.bias), init("mix", module.mix)]
    batch = "batch" if dynamic else 2
    graph = helper.make_graph(
        nodes, "mixed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4, 10, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 5])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    module = Mixed().eval()
    path = tmp_path_factory.mktemp("profiling") / "mixed.onnx"
    onnx.save(_mixed_onnx(module, dynamic=True), path)
    return module, path


def _torch_flops(module, batch):
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(torch.rand(batch, 4, 10, 10))
    return counter.get_total_flops()


def test_hand_built_graph_is_the_same_model(mixed):
    """Does the hand-built ONNX graph compute what the PyTorch module computes?"""
    import onnxruntime as ort

    module, path = mixed
    x = torch.rand(3, 4, 10, 10)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        # largest abs error measured on an AMD EPYC (Zen 4, AVX-512 VNNI): 3.3e-7 (outputs
        # up to 0.41; input seeds 0-4, batches 1, 3, 8); 10x margin, rounded up
        np.testing.assert_allclose(session.run(None, {"x": x.numpy()})[0], module(x).numpy(),
                                   rtol=0, atol=5e-6)


@pytest.mark.parametrize("batch", [1, 3])
def test_flops_agree_with_pytorch_flop_counter(mixed, batch):
    """Does count_flops give PyTorch's FlopCounterMode total for every counted op kind?"""
    module, path = mixed
    assert count_flops(path, (batch, 4, 10, 10)) == _torch_flops(module, batch)


def test_flops_of_a_proto_and_a_dict_of_shapes(mixed):
    """Do a ModelProto and {name: shape} work, without changing the proto given?"""
    module, path = mixed
    proto = onnx.load(path)
    before = proto.SerializeToString()
    assert count_flops(proto, {"x": (2, 4, 10, 10)}) == _torch_flops(module, 2)
    assert proto.SerializeToString() == before


def test_flops_of_chosen_op_types_add_up(mixed):
    """Do the counts of each operator type, taken apart, add up to the whole count?"""
    _, path = mixed
    shape = (2, 4, 10, 10)
    parts = [count_flops(path, shape, op_types=(op,))
             for op in ("Conv", "ConvTranspose", "Gemm", "MatMul")]
    assert all(part > 0 for part in parts) and sum(parts) == count_flops(path, shape)


def test_flops_refuse_unknown_inputs_and_wrong_ranks(mixed):
    """Are a wrong input name and a wrong rank refused with what the model has?"""
    _, path = mixed
    with pytest.raises(ValueError, match=r"\['x'\]"):
        count_flops(path, {"image": (1, 4, 10, 10)})
    with pytest.raises(ValueError, match="rank 4"):
        count_flops(path, (1, 4, 10))


def test_unresolved_shapes_name_the_node():
    """Is a graph whose shapes stay unknown refused with the node's name, not a wrong count?"""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["y"], name="the_matmul")], "g",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n", "k"]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, ["k", "m"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    with pytest.raises(ValueError, match="the_matmul"):
        count_flops(model, {"a": (4, 3)})  # b's size is left open


def test_profile_sums_kernel_time_per_op_type(mixed):
    """Does the profile list the kernels that ran, per run, with shares that add up to 1?"""
    _, path = mixed
    profile = profile_ops(path, {"x": np.random.rand(2, 4, 10, 10).astype(np.float32)},
                          runs=4, warmup=1, threads=1, level="disabled")
    assert isinstance(profile, OpProfile) and profile.runs == 4
    ops = {row["op_type"]: row for row in profile.rows}
    assert {"Conv", "ConvTranspose", "Gemm", "MatMul", "Relu"} <= set(ops)
    assert ops["Conv"]["calls"] == pytest.approx(1.0)  # one call per run, warm-up left out
    assert sum(row["share"] for row in profile.rows) == pytest.approx(1.0)
    times = [row["ms"] for row in profile.rows]
    # each share is its kernels' time over all kernels' time; on one thread the kernels of a
    # run fit inside the run (warm-up runs counted in would break this)
    assert [row["share"] for row in profile.rows] == pytest.approx([t / sum(times) for t in times])
    assert sum(times) <= profile.run_ms
    assert "ConvTranspose" in profile.format_table() and "others" in profile.format_table(top=2)


@pytest.mark.parametrize("flags, cores, threads, expected", [
    ({"avx2": True, "avx": True, "fma": True}, 2, None, 2 * 3.0 * 8 * 2 * 2),  # 256-bit
    ({"avx512f": True, "avx2": True, "avx": True, "fma": True}, 4, 2, 2 * 3.0 * 16 * 2 * 2),
    ({"sse2": True}, 1, None, 1 * 3.0 * 4 * 2 * 2),  # 128-bit
    ({"asimd": True}, 8, 4, 4 * 3.0 * 4 * 2 * 2),  # Arm NEON
])
def test_theoretical_peak_from_known_flags(flags, cores, threads, expected):
    """Is the peak cores x clock x lanes x 2 x FMA units, the vector width read from the flags?"""
    hardware = {"flags": flags, "flags_known": True, "physical_cores": cores, "clock_ghz": 3.0,
                "clock_source": "a test"}
    peak = theoretical_peak(hardware, threads)
    assert peak["gflops"] == pytest.approx(expected)
    assert str(peak["cores"]) in peak["formula"] and "FMA units" in peak["formula"]


def test_unknown_clock_is_assumed_and_said():
    """Without a clock, is one assumed, and does the result say which?"""
    hardware = {"flags": {"avx2": True, "avx": True, "fma": True}, "flags_known": True,
                "physical_cores": 1, "clock_ghz": None, "clock_source": "no clock"}
    peak = theoretical_peak(hardware)
    assert peak["clock_ghz"] == 3.0
    assert any("not known" in a and "3.0 GHz assumed" in a for a in peak["assumptions"])
    assert theoretical_peak(hardware, clock_ghz=2.0)["gflops"] == pytest.approx(2.0 * 32)


@pytest.mark.parametrize("library", ["torch", "onnxruntime"])
def test_gemm_rate_of_each_library(library, monkeypatch):
    """On a fake clock (2 warm-ups, then products of 0.5 s and 0.25 s), is the best rate
    2*128**3 FLOP / 0.25 s and the median 2*128**3 FLOP / 0.375 s, with PyTorch's thread
    count left as it was?"""
    import time

    ticks = iter([0.0, 1.0, 1.0, 2.0, 2.0, 2.5, 3.0, 3.25])  # (start, stop) of each product
    monkeypatch.setattr(time, "perf_counter", lambda: next(ticks))
    before = torch.get_num_threads()
    rate = measure_gemm_rate(library, threads=1, size=128, repeats=2)
    monkeypatch.undo()
    assert rate["library"] == library and rate["runs"] == 2
    work = 2 * 128**3 / 1e9  # GFLOP per product
    assert (rate["best_gflops"], rate["median_gflops"]) == pytest.approx((work / 0.25, work / 0.375))
    assert rate["flop_per_byte"] == pytest.approx(128 / 6)
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="torch"):
        measure_gemm_rate("numpy")


def test_hardware_record_names_cpu_flags_and_versions():
    """Does the hardware record carry the CPU, its SIMD flags and the library versions?"""
    info = describe_hardware()
    assert info["cpu"] and info["physical_cores"] >= 1
    assert {"avx2", "avx512_vnni", "avx_vnni"} <= set(info["flags"])
    assert info["torch"] == torch.__version__ and info["gpu"] is None
