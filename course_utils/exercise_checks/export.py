"""Checks for notebook 02 (export and verification), exercises 02.1 to 02.8.

Public checks catch the mistakes a student can fix from the hint; hidden ones
(grader only) catch answers that only look right: a batch fixed by the example,
a dynamic input with a fixed output, the wrong exporter, a comparison that always
passes, probabilities instead of logits, guessed knowledge answers.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from course_utils.checks import CheckFailed, register


def _load(answer):
    """The ONNX model at the answer's path (graph only), or a hint."""
    import onnx

    if not isinstance(answer, (str, Path)):
        raise CheckFailed(f"expected the path of the .onnx file (a str or Path), got "
                          f"{type(answer).__name__}")
    path = Path(answer)
    if not path.is_file():
        raise CheckFailed(f"there is no file at {path}; did the export cell run?")
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception:
        raise CheckFailed(f"{path.name} is not a readable ONNX file; export it again") from None


def _dims(value_info) -> list:
    return [d.dim_param or (d.dim_value if d.HasField("dim_value") else None)
            for d in value_info.type.tensor_type.shape.dim]


def _require_dynamic_batch(model, where: str = "input") -> None:
    values = model.graph.input if where == "input" else model.graph.output
    if not values:
        raise CheckFailed(f"the model has no {where}s")
    dims = _dims(values[0])
    if not dims:
        raise CheckFailed(f"the first {where} has no shape information")
    if not isinstance(dims[0], str):
        raise CheckFailed(f"the batch dimension of the first {where} is fixed to {dims[0]}; "
                          "the example's batch size was recorded as a constant. Look at how "
                          "the exporter is told which dimensions may vary")


def _run(path, batch: int, shape) -> list:
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal((batch, *shape)).astype(np.float32)
    return session.run(None, {name: x})


def _has_dynamo_metadata(model) -> bool:
    return any(p.key.startswith("pkg.torch.onnx") for n in model.graph.node
               for p in n.metadata_props)


# --- 02.1: dynamo export of resnet18 with a dynamic batch --------------------------------

@register("02.1")
def _resnet_dynamic_batch(answer):
    model = _load(answer)
    _require_dynamic_batch(model)
    if _dims(model.graph.input[0])[1:] != [3, 224, 224]:
        raise CheckFailed(f"the input's shape is {_dims(model.graph.input[0])}; export with an "
                          "example of shape (2, 3, 224, 224)")
    if any(t.data_location == 1 for t in model.graph.initializer):
        raise CheckFailed("the weights are in a separate .onnx.data file; export one "
                          "self-contained file (see the exporter's external_data argument)")


@register("02.1", hidden=True)
def _resnet_named_batch_runs(answer):
    model = _load(answer)
    if _dims(model.graph.input[0])[0] != "batch":
        raise CheckFailed("the dynamic dimension is not named 'batch'")
    if not _has_dynamo_metadata(model):
        raise CheckFailed("this file was not written by the dynamo exporter")
    if sum(n.op_type == "Conv" for n in model.graph.node) != 20:
        raise CheckFailed("this is not resnet18 (it has 20 convolutions)")
    (out,) = _run(answer, 3, (3, 224, 224))
    if out.shape != (3, 1000):
        raise CheckFailed(f"batch 3 gave an output of shape {out.shape}, expected (3, 1000)")


# --- 02.2: TorchScript export with dynamic_axes -------------------------------------------

@register("02.2")
def _torchscript_names_and_axes(answer):
    model = _load(answer)
    inputs, outputs = [v.name for v in model.graph.input], [v.name for v in model.graph.output]
    if inputs[:1] != ["x"] or outputs[:1] != ["logits"]:
        raise CheckFailed(f"the input and output are named {inputs} and {outputs}; "
                          "name them 'x' and 'logits'")
    _require_dynamic_batch(model, "input")
    _require_dynamic_batch(model, "output")


@register("02.2", hidden=True)
def _torchscript_exporter_used(answer):
    model = _load(answer)
    if _has_dynamo_metadata(model):
        raise CheckFailed("this file was written by the dynamo exporter, not TorchScript")
    if [_dims(v)[0] for v in (model.graph.input[0], model.graph.output[0])] != ["batch"] * 2:
        raise CheckFailed("the dynamic dimensions are not both named 'batch'")
    (out,) = _run(answer, 3, (3, 224, 224))
    if out.shape != (3, 1000):
        raise CheckFailed(f"batch 3 gave an output of shape {out.shape}, expected (3, 1000)")


# --- 02.3: the trained digits CNN ----------------------------------------------------------

@lru_cache(maxsize=1)
def _digits_test():
    from course_utils.digits import load_digits_split

    _, x_test, _, y_test = load_digits_split()
    return x_test.numpy(), y_test.numpy()


def _digits_accuracy(path, x, y) -> float:
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {session.get_inputs()[0].name: x})[0]
    if logits.shape != (len(x), 10):
        raise CheckFailed(f"{len(x)} digits gave an output of shape {logits.shape}, "
                          f"expected ({len(x)}, 10)")
    return float((np.argmax(logits, axis=1) == y).mean())


@register("02.3")
def _digits_exported_and_trained(answer):
    model = _load(answer)
    _require_dynamic_batch(model)
    if _dims(model.graph.input[0])[1:] != [1, 8, 8]:
        raise CheckFailed(f"the input's shape is {_dims(model.graph.input[0])}; the digits "
                          "are (batch, 1, 8, 8)")
    x, y = _digits_test()
    acc = _digits_accuracy(answer, x, y)
    if acc < 0.9:
        raise CheckFailed(f"the exported model gets {acc:.0%} of the held-out digits right; "
                          "export the trained model (after training, in eval mode)")


@register("02.3", hidden=True)
def _digits_any_batch(answer):
    x, y = _digits_test()
    for batch in (1, 7):
        _digits_accuracy(answer, x[:batch], y[:batch])  # fails on a wrong output shape
    if not _has_dynamo_metadata(_load(answer)):
        raise CheckFailed("this file was not written by the dynamo exporter")


# --- 02.4: a tolerance comparison that can fail --------------------------------------------

def _call(fn, expected, actual, rtol, atol):
    import numpy as np

    result = fn(expected, actual, rtol=rtol, atol=atol)
    if not isinstance(result, (bool, np.bool_)):
        raise CheckFailed(f"outputs_match returned a {type(result).__name__}; return True or False")
    return bool(result)


@register("02.4")
def _match_basics(answer):
    import numpy as np

    if not callable(answer):
        raise CheckFailed("pass the function itself: check('02.4', outputs_match)")
    a = np.array([[1.0, -2.0, 3.0]], dtype=np.float32)
    if not _call(answer, a, a.copy(), 1e-3, 1e-3):
        raise CheckFailed("identical arrays must match")
    if _call(answer, a, a + 0.5, 1e-3, 1e-3):
        raise CheckFailed("arrays that differ by 0.5 everywhere must not match at atol=1e-3")
    if not _call(answer, a, a + 5e-4, 0.0, 1e-3):
        raise CheckFailed("a difference of 5e-4 is within atol=1e-3")


@register("02.4", hidden=True)
def _match_edge_cases(answer):
    import numpy as np

    e = np.array([0.001, 1000.0, 5.0, -3.0])
    cases = [
        ("a candidate smaller than the reference", e, e - [0, 0, 0, 1.0], 1e-3, 1e-3, False),
        ("rtol is relative to |expected|", e, e + [0, 0.5, 0, 0], 1e-3, 0.0, True),
        ("rtol does not cover small values", e, e + [0.0005, 0, 0, 0], 1e-3, 0.0, False),
        ("NaN never matches", e, np.array([0.001, np.nan, 5.0, -3.0]), 1e-3, 1e-3, False),
        ("shapes must be equal, not broadcast", e[:1], np.repeat(e[:1], 4), 1e-3, 1e-3, False),
        ("one bad element is enough", np.zeros(1000), np.r_[np.zeros(999), 1.0], 1e-3, 1e-3, False),
    ]
    for what, expected, actual, rtol, atol, want in cases:
        try:
            got = _call(answer, expected, np.asarray(actual), rtol, atol)
        except CheckFailed:
            raise
        except Exception:  # raising on a shape mismatch or NaN counts as "no match"
            got = None if want else False
        if got is not want:
            raise CheckFailed(f"wrong answer for: {what}")


# --- 02.5: the reference evaluator ---------------------------------------------------------

@register("02.5")
def _reference_logits(answer):
    import numpy as np

    if not isinstance(answer, np.ndarray):
        raise CheckFailed(f"expected a numpy array of logits, got {type(answer).__name__}; "
                          "the evaluator's run() returns a list of outputs")
    if answer.shape != (64, 10):
        raise CheckFailed(f"expected shape (64, 10) for the first 64 held-out digits, got "
                          f"{answer.shape}")
    _, y = _digits_test()
    acc = float((answer.argmax(axis=1) == y[:64]).mean())
    if acc < 0.85:
        raise CheckFailed(f"only {acc:.0%} of the first 64 held-out digits are right; run the "
                          "trained model on x_test[:64]")


@register("02.5", hidden=True)
def _reference_dtype(answer):
    import numpy as np

    if answer.dtype != np.float32 or not np.isfinite(answer).all():
        raise CheckFailed("the logits should be finite float32, as the model computes them")


# --- 02.6: facts about the digits model -----------------------------------------------------

_FACT_KEYS = {"input_name", "batch_dim", "opset", "ir_version", "parameters", "op_counts"}


@register("02.6")
def _model_facts(answer):
    if not isinstance(answer, dict) or set(answer) != _FACT_KEYS:
        got = sorted(answer) if isinstance(answer, dict) else type(answer).__name__
        raise CheckFailed(f"expected a dict with keys {sorted(_FACT_KEYS)}, got {got}")
    if answer["parameters"] != 9930:
        hint = ("count only the float32 initializers: one int64 initializer is a Reshape's "
                "target shape, not a weight" if answer["parameters"] == 9932 else
                "count the elements of every float32 initializer (the product of its dims), "
                "not the initializers themselves")
        raise CheckFailed(f"{answer['parameters']!r} parameters is not right; {hint}")
    if answer["batch_dim"] != "batch":
        raise CheckFailed(f"batch_dim is {answer['batch_dim']!r}; it is the name stored in "
                          "dim_param of the input's first dimension")
    counts = answer["op_counts"]
    if not isinstance(counts, dict) or counts.get("Conv") != 2 or counts.get("Relu") != 2:
        raise CheckFailed("op_counts should map each op type to how many nodes have it "
                          "(this model has 2 Conv and 2 Relu nodes)")


@register("02.6", hidden=True)
def _model_facts_versions(answer):
    opset, ir = answer["opset"], answer["ir_version"]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (opset, ir)):
        raise CheckFailed("opset and ir_version should be ints")
    if not 18 <= opset <= 30 or not 3 <= ir <= 14:
        raise CheckFailed("opset or ir_version is out of range (swapped?)")
    if answer["input_name"] != "x":
        raise CheckFailed("input_name is not the graph input's name")
    if answer["op_counts"].get("Gemm") != 1 or answer["op_counts"].get("MaxPool") != 1:
        raise CheckFailed("op_counts is incomplete")


# --- 02.7: knowledge questions ----------------------------------------------------------------

_QUESTIONS = ("exported_method", "dynamic_axes", "opset")


@register("02.7")
def _answers_format(answer):
    if not isinstance(answer, dict) or set(answer) != set(_QUESTIONS):
        raise CheckFailed(f"expected a dict with keys {list(_QUESTIONS)}")
    for key, value in answer.items():
        if not isinstance(value, str) or value.strip().lower() not in ("a", "b", "c", "d"):
            raise CheckFailed(f"answer one letter a-d for {key!r}, got {value!r}")


@register("02.7", hidden=True)
def _answers_correct(answer):
    # forward is traced; dynamic axes let sizes vary at run time; opset = operator versions.
    if {k: v.strip().lower() for k, v in answer.items()} != {
            "exported_method": "b", "dynamic_axes": "d", "opset": "a"}:
        raise CheckFailed("at least one answer is wrong")


# --- 02.8: one file for every image size (dynamic batch, height and width) ---------------

@register("02.8")
def _any_image_size(answer):
    model = _load(answer)
    _require_dynamic_batch(model)
    dims = _dims(model.graph.input[0])
    if len(dims) != 4 or dims[1] != 3:
        raise CheckFailed(f"the input's shape is {dims}; export resnet with an example of shape "
                          "(2, 3, 224, 224)")
    fixed = {axis: dims[axis] for axis, what in ((2, "height"), (3, "width"))
             if not isinstance(dims[axis], str)}
    if fixed:
        names = " and ".join(f"dimension {axis} ({'height' if axis == 2 else 'width'}) is fixed "
                             f"to {size}" for axis, size in fixed.items())
        raise CheckFailed(f"{names}: the example's image size was recorded as a constant; "
                          "name every dimension that may vary, not only the batch")
    if any(t.data_location == 1 for t in model.graph.initializer):
        raise CheckFailed("the weights are in a separate .onnx.data file; export one "
                          "self-contained file (see the exporter's external_data argument)")


@register("02.8", hidden=True)
def _any_image_size_runs(answer):
    dims = _dims(_load(answer).graph.input[0])
    if dims[2] == dims[3]:
        raise CheckFailed("height and width share one name, so the file only takes square "
                          "images; give each its own dimension")
    for shape in ((3, 96, 160), (3, 320, 256)):  # not square, not 224
        (logits,) = _run(answer, 1, shape)
        if logits.shape != (1, 1000):
            raise CheckFailed(f"an image of size {shape[1:]} gave logits of shape {logits.shape}, "
                              "not (1, 1000)")
