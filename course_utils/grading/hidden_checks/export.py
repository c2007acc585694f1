"""Hidden checks for notebook 02 (export and verification): grader only, never released."""
from __future__ import annotations

from ...checks import CheckFailed, register
from ...exercise_checks.export import (call_answer, measure_digits_accuracy, load_digits_test,
                                      load_answer_onnx, run_answer_onnx)


@register("02.1", hidden=True)
def _resnet_named_batch_runs(answer):
    model = load_answer_onnx(answer)
    if sum(n.op_type == "Conv" for n in model.graph.node) != 20:
        raise CheckFailed("this is not resnet18 (it has 20 convolutions)")
    (out,) = run_answer_onnx(answer, 3, (3, 224, 224))
    if out.shape != (3, 1000):
        raise CheckFailed(f"batch 3 gave an output of shape {out.shape}, expected (3, 1000)")


@register("02.2", hidden=True)
def _torchscript_exporter_used(answer):
    (out,) = run_answer_onnx(answer, 3, (3, 224, 224))
    if out.shape != (3, 1000):
        raise CheckFailed(f"batch 3 gave an output of shape {out.shape}, expected (3, 1000)")


@register("02.3", hidden=True)
def _digits_any_batch(answer):
    x, y = load_digits_test()
    for batch in (1, 7):
        measure_digits_accuracy(answer, x[:batch], y[:batch])  # fails on a wrong output shape


@register("02.4", hidden=True)
def _match_edge_cases(answer):
    import numpy as np

    e = np.array([0.001, 1000.0, 5.0, -3.0])
    cases = [
        ("rtol is relative to |expected|, not to |actual|", np.array([1.0, 2.0]), np.array([1.9, 2.0]),
         0.5, 0.0, False),
        ("rtol does not cover small values", e, e + [0.0005, 0, 0, 0], 1e-3, 0.0, False),
        ("NaN never matches", e, np.array([0.001, np.nan, 5.0, -3.0]), 1e-3, 1e-3, False),
        ("one bad element is enough", np.zeros(1000), np.r_[np.zeros(999), 1.0], 1e-3, 1e-3, False),
    ]
    for what, expected, actual, rtol, atol, want in cases:
        try:
            got = call_answer(answer, expected, np.asarray(actual), rtol, atol)
        except CheckFailed:
            raise
        except Exception:  # raising on a shape mismatch or NaN counts as "no match"
            got = None if want else False
        if got is not want:
            raise CheckFailed(f"wrong answer for: {what}")


@register("02.5", hidden=True)
def _reference_dtype(answer):
    import numpy as np

    if answer.dtype != np.float32 or not np.isfinite(answer).all():
        raise CheckFailed("the logits should be finite float32, as the model computes them")


@register("02.6", hidden=True)
def _model_facts_versions(answer):
    opset, ir = answer["opset"], answer["ir_version"]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (opset, ir)):
        raise CheckFailed("opset and ir_version should be ints")
    if not 18 <= opset <= 30 or not 3 <= ir <= 14:
        raise CheckFailed("opset or ir_version is out of range (swapped?)")
    if answer["input_name"] != "x":
        raise CheckFailed("input_name is not the graph input's name")
    if answer["op_counts"] != {"Conv": 2, "Relu": 2, "MaxPool": 1, "Reshape": 1, "Gemm": 1}:
        raise CheckFailed("op_counts is not this graph's histogram of node op types")


@register("02.8", hidden=True)
def _any_image_size_runs(answer):
    for shape in ((3, 96, 160), (3, 320, 256)):  # not square, not 224
        (logits,) = run_answer_onnx(answer, 1, shape)
        if logits.shape != (1, 1000):
            raise CheckFailed(f"an image of size {shape[1:]} gave logits of shape {logits.shape}, "
                              "not (1, 1000)")
