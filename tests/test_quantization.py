"""Tests for course_utils/quantization.py: calibration data, the CPU verdict, sizes, comparisons."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from course_utils.onnx_files import model_size_bytes
from course_utils.quantization import (INT8_RECIPES, choose_recipe, compare_variants,
                                       describe_int8_support, format_variants,
                                       make_calibration_reader, recipe_kwargs,
                                       representative_images, summarize_int8)


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
    with pytest.raises(FileNotFoundError, match="no file at .*missing.onnx"):
        model_size_bytes(tmp_path / "missing.onnx")


def test_comparison_table(variants):
    """Does the table hold size, latency and accuracy per variant, fp32 as the baseline?"""
    rng = np.random.default_rng(1)
    x = rng.random((32, 1, 8, 8), dtype=np.float32)
    labels = rng.integers(0, 10, size=32)
    rows = compare_variants(variants, x[:8], eval_input=x, labels=labels, threads=1,
                            round_runs=2, warmup=1, min_repeats=4, max_repeats=6, budget_s=0.01)
    assert [r["variant"] for r in rows] == ["fp32", "int8 dynamic", "int8 static"]
    assert rows[0]["speedup"] == 1.0
    import onnxruntime as ort

    for row in rows:
        session = ort.InferenceSession(str(variants[row["variant"]]), providers=["CPUExecutionProvider"])
        accuracy = float((session.run(None, {"x": x})[0].argmax(1) == labels).mean())
        assert row["n"] >= 4 and row["accuracy"] == pytest.approx(accuracy)
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


# ---------------------------------------------------------------- recipes and the verdict
def _rows(ms: dict, accuracy: dict | None = None) -> list:
    """Synthetic compare_variants rows: {variant: median ms}, fp32 first."""
    accuracy = accuracy or {}
    base = ms["fp32"]
    return [{"variant": name, "median_ms": value, "speedup": base / value,
             "accuracy": accuracy.get(name), "size_bytes": 1, "iqr_ms": 0.0, "p90_ms": value,
             "n": 10} for name, value in ms.items()]


TIMES = {"fp32": 20.0, "QDQ U8S8": 7.0, "QDQ U8S8 reduce_range": 7.5, "QDQ S8S8": 22.0,
         "QOperator U8S8": 7.6, "QOperator S8S8": 160.0, "dynamic": 150.0}


def test_recipe_kwargs_map_onto_the_quantisers():
    """Does every recipe become the arguments ONNX Runtime's quantisers take?"""
    from onnxruntime.quantization import QuantFormat, QuantType

    qdq = recipe_kwargs("QDQ U8S8")
    assert qdq["quant_format"] == QuantFormat.QDQ and qdq["per_channel"]
    assert qdq["activation_type"] == QuantType.QUInt8 and qdq["weight_type"] == QuantType.QInt8
    assert recipe_kwargs("QOperator S8S8")["activation_type"] == QuantType.QInt8
    assert recipe_kwargs("QDQ U8S8 reduce_range")["reduce_range"]
    assert "quant_format" not in recipe_kwargs("dynamic")
    with pytest.raises(KeyError, match="QDQ U8S8"):
        recipe_kwargs("QDQ U4S4")


def test_fastest_recipe_wins_and_the_sentences_say_so():
    """Is the fastest recipe chosen, and do the sentences follow the synthetic timings?"""
    rows = _rows(TIMES)
    choice = choose_recipe(rows, dot_product_int8=True)
    assert choice["winner"] == "QDQ U8S8" and choice["speedup"] == pytest.approx(20 / 7)
    text = " ".join(summarize_int8(rows, choice))
    # no accuracy in these rows: speed alone, and the sentence says so
    assert "On speed alone (no accuracy measured on this model" in text
    assert "this run picks QDQ U8S8: 7.00 ms against 20.00 ms" in text
    measured = _rows(TIMES, {name: 0.98 for name in TIMES})
    assert summarize_int8(measured, choose_recipe(measured, dot_product_int8=True))[0].startswith(
        "On this run's speed and accuracy the recipe to pick is QDQ U8S8")
    assert "2.86x as fast as" in text
    assert "uint8 activations (U8S8) against int8 (S8S8), QDQ: 7.00 ms against 22.00 ms, " \
           "the first 3.14x as fast as the second" in text
    assert "Dynamic quantisation runs 7.50x slower than fp32" in text


def test_sentences_turn_when_the_numbers_turn():
    """With S8S8 faster than U8S8, do the sentences say that instead of the usual story?"""
    rows = _rows({**TIMES, "QDQ S8S8": 5.0})
    choice = choose_recipe(rows, dot_product_int8=True)
    assert choice["winner"] == "QDQ S8S8"
    text = " ".join(summarize_int8(rows, choice))
    assert "the first 1.40x slower than the second" in text  # U8S8 7 ms against S8S8 5 ms


def test_fp32_stays_when_no_recipe_pays():
    """When every int8 recipe is slower, is fp32 chosen and int8 said not to pay?"""
    rows = _rows({name: (20.0 if name == "fp32" else 25.0 + i) for i, name in
                  enumerate(TIMES)})
    choice = choose_recipe(rows, dot_product_int8=False)
    assert choice["winner"] == "fp32" and choice["speedup"] == 1.0
    assert summarize_int8(rows, choice)[0].startswith("No int8 recipe pays here")


def test_accuracy_loss_and_saturation_exclude_recipes():
    """Is a recipe that loses accuracy passed over, and U8S8 without reduce_range on no VNNI?"""
    accuracy = {name: 0.98 for name in TIMES}
    rows = _rows(TIMES, {**accuracy, "QDQ U8S8": 0.95})
    choice = choose_recipe(rows, dot_product_int8=True)
    assert choice["winner"] == "QDQ U8S8 reduce_range" and "QDQ U8S8" in choice["excluded"]
    unmeasured = choose_recipe(_rows(TIMES), dot_product_int8=False)
    assert unmeasured["winner"] == "QDQ U8S8 reduce_range"
    assert "saturate" in unmeasured["excluded"]["QDQ U8S8"]
    measured = choose_recipe(_rows(TIMES, accuracy), dot_product_int8=False)
    assert measured["winner"] == "QDQ U8S8"  # its accuracy held, so it may run


def test_every_recipe_is_in_the_table():
    """Are the recipes the notebook and `bench --int8` measure the documented ones?"""
    assert {"QDQ U8S8", "QDQ U8S8 reduce_range", "QDQ S8S8", "QOperator U8S8",
            "QOperator S8S8", "dynamic"} == set(INT8_RECIPES)


def test_representative_images_look_normalised():
    """Are the calibration images ImageNet-normalised (mean near 0, both signs), not noise?"""
    images = representative_images(4, 32, seed=0)
    assert images.shape == (4, 3, 32, 32) and images.dtype == np.float32
    assert images.min() < 0 < images.max() and abs(images.mean()) < 1
    assert np.abs(np.diff(images, axis=-1)).mean() < 0.5  # smooth (pixel noise: about 1.5)


def _banded(ms: dict, iqr: dict) -> list:
    """Rows with quartile bands: {variant: median}, {variant: IQR} (the band centred on the median)."""
    rows = _rows(ms)
    for row in rows:
        half = iqr.get(row["variant"], 0.0) / 2
        row.update(iqr_ms=2 * half, q1_ms=row["median_ms"] - half, q3_ms=row["median_ms"] + half)
    return rows


def test_recipes_within_each_others_band_are_a_tie_that_goes_to_qdq():
    """QOperator at 5.61 ms and QDQ at 5.71 ms with 0.3 ms IQRs: is that a tie, given to QDQ, said so?"""
    rows = _banded({"fp32": 13.4, "QOperator U8S8": 5.61, "QDQ U8S8": 5.71},
                   {"fp32": 0.4, "QOperator U8S8": 0.3, "QDQ U8S8": 0.3})
    choice = choose_recipe(rows, dot_product_int8=True)
    assert choice["fastest"] == "QOperator U8S8" and choice["winner"] == "QDQ U8S8"
    assert choice["tied"] == ["QDQ U8S8"] and "QDQ, standard ONNX operators" in choice["reason"]
    assert "before QOperator" in summarize_int8(rows, choice)[0]


def test_a_clear_winner_wins_even_if_less_portable():
    """With QOperator clear of QDQ's band, does QOperator win, with no tie named?"""
    rows = _banded({"fp32": 13.4, "QOperator U8S8": 4.0, "QDQ U8S8": 5.7},
                   {"fp32": 0.4, "QOperator U8S8": 0.2, "QDQ U8S8": 0.2})
    choice = choose_recipe(rows, dot_product_int8=True)
    assert choice["winner"] == "QOperator U8S8" and choice["tied"] == []


def test_a_tie_between_qdq_recipes_goes_to_the_guides_default():
    """U8S8 and S8S8 QDQ within each other's band: does the tie go to S8S8, the guide's first choice?"""
    rows = _banded({"fp32": 13.4, "QDQ U8S8": 0.26, "QDQ S8S8": 0.28},
                   {"fp32": 0.4, "QDQ U8S8": 0.05, "QDQ S8S8": 0.08})
    assert choose_recipe(rows, dot_product_int8=True)["winner"] == "QDQ S8S8"


def test_int8_within_fp32s_band_keeps_fp32():
    """An int8 recipe whose band reaches fp32's: is fp32 kept (int8 not clearly faster)?"""
    rows = _banded({"fp32": 10.0, "QDQ U8S8": 9.6}, {"fp32": 1.0, "QDQ U8S8": 1.0})
    choice = choose_recipe(rows, dot_product_int8=True)
    assert choice["winner"] == "fp32" and "fp32 stays" in choice["reason"]
