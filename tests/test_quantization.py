"""Tests for course_utils/quantization.py: calibration data, the CPU verdict, sizes, comparisons."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from course_utils.quantization import (compare_variants, describe_int8_support, format_variants,
                                       make_calibration_reader, model_size_bytes)


def _small_cnn(rng) -> onnx.ModelProto:
    """Conv -> Relu -> global pooling -> Gemm: (batch, 1, 8, 8) -> (batch, 10)."""
    weights = {"cw": rng.normal(size=(8, 1, 3, 3)), "cb": rng.normal(size=8),
               "fw": rng.normal(size=(10, 8)), "fb": rng.normal(size=10)}
    nodes = [helper.make_node("Conv", ["x", "cw", "cb"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["logits"], transB=1)]
    graph = helper.make_graph(
        nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        [numpy_helper.from_array(w.astype(np.float32), name) for name, w in weights.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    """An fp32 model and its dynamic and static int8 versions, made by ONNX Runtime's tools."""
    from onnxruntime.quantization import QuantFormat, quantize_dynamic, quantize_static

    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("quant")
    fp32 = folder / "fp32.onnx"
    onnx.save(_small_cnn(rng), fp32)
    quantize_dynamic(fp32, folder / "dynamic.onnx")
    calibration = make_calibration_reader(rng.random((64, 1, 8, 8)), "x", batch_size=16)
    quantize_static(fp32, folder / "static.onnx", calibration, quant_format=QuantFormat.QDQ)
    return {"fp32": fp32, "int8 dynamic": folder / "dynamic.onnx",
            "int8 static": folder / "static.onnx"}


def test_calibration_reader_yields_batches_then_none():
    """Does the reader hand out float32 batches of the input, then None?"""
    reader = make_calibration_reader(np.arange(10 * 4).reshape(10, 4), "x", batch_size=4)
    batches = [reader.get_next() for _ in range(4)]
    assert [len(b["x"]) for b in batches[:3]] == [4, 4, 2] and batches[3] is None
    assert batches[0]["x"].dtype == np.float32


def test_calibration_needs_examples():
    """Is an empty calibration set refused with what to pass?"""
    with pytest.raises(ValueError, match="real inputs"):
        make_calibration_reader(np.zeros((0, 4)), "x")


def _hardware(**flags):
    names = ["avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimd",
             "asimddp", "i8mm"]
    return {"cpu": "Test CPU", "flags": {n: flags.get(n, False) for n in names},
            "flags_known": bool(flags)}


@pytest.mark.parametrize("flags, dot, phrase", [
    ({"avx2": True, "fma": True}, False, "no int8 dot-product"),
    ({"avx2": True, "avx512f": True, "avx512_vnni": True}, True, "avx512_vnni"),
    ({"asimd": True, "asimddp": True}, True, "asimddp"),
    ({}, False, "cannot be read"),
])
def test_int8_verdict_follows_the_flags(flags, dot, phrase):
    """Does the verdict name VNNI-like instructions when present and say so when absent?"""
    verdict = describe_int8_support(_hardware(**flags))
    assert verdict["dot_product_int8"] is dot and phrase in verdict["summary"]


def test_size_counts_external_data(tmp_path):
    """Is a model's external-data file part of its size on disk?"""
    model = _small_cnn(np.random.default_rng(0))
    inline, split = tmp_path / "inline.onnx", tmp_path / "split.onnx"
    onnx.save(model, inline)
    onnx.save(model, split, save_as_external_data=True, location="split.onnx.data",
              size_threshold=0)
    assert split.stat().st_size < inline.stat().st_size
    assert model_size_bytes(split) >= model_size_bytes(inline) - 200
    with pytest.raises(FileNotFoundError, match="no ONNX model"):
        model_size_bytes(tmp_path / "missing.onnx")


def test_comparison_table(variants):
    """Does the table hold size, latency and accuracy per variant, fp32 as the baseline?"""
    rng = np.random.default_rng(1)
    x = rng.random((32, 1, 8, 8), dtype=np.float32)
    labels = rng.integers(0, 10, size=32)
    rows = compare_variants(variants, x[:8], eval_input=x, labels=labels, threads=1,
                            rounds=2, warmup=1, min_repeats=4, max_repeats=6, budget_s=0.01)
    assert [r["variant"] for r in rows] == ["fp32", "int8 dynamic", "int8 static"]
    assert rows[0]["speedup"] == 1.0
    for row in rows:
        assert row["n"] >= 4 and 0 <= row["accuracy"] <= 1
        assert row["speedup"] == pytest.approx(rows[0]["median_ms"] / row["median_ms"])
    table = format_variants(rows)
    assert "int8 static" in table and "accuracy" in table


def test_static_int8_stays_close_to_fp32(variants):
    """Does calibrated static int8 keep the fp32 model's predictions on its calibration range?"""
    import onnxruntime as ort

    x = np.random.default_rng(2).random((64, 1, 8, 8), dtype=np.float32)
    def run(path):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {"x": x})[0]

    agreement = (run(variants["fp32"]).argmax(1) == run(variants["int8 static"]).argmax(1)).mean()
    assert agreement >= 0.9
