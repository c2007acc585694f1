"""Checks for notebook 05 (deployment: serving, calling the API, footprint, scikit-learn to ONNX).

05.1 the ONNX Runtime loader and the predict function it returns (called on held-out digits),
05.2 the labels of every held-out digit over HTTP, 05.3 the footprint ratios (recomputed from
the environment installed here), 05.4 a scikit-learn pipeline converted with skl2onnx.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..answers import register_answer
from ..checks import CheckFailed, register

register_answer("05.1", "digits_predict", kind="function")
register_answer("05.2", "http_labels")
register_answer("05.3", "size_ratios")
register_answer("05.4", "skl_onnx_path", kind="file")


def load_test_digits(n: int | None = None):
    """The first ``n`` held-out digits of :func:`load_digits_split`: (images (n, 8, 8) float32, labels)."""
    from ..digits import load_digits_split

    _, x_test, _, y_test = load_digits_split()
    return x_test[:n, 0].numpy(), y_test[:n].numpy()


def load_test_labels(n: int | None = None) -> np.ndarray:
    """The labels of the first ``n`` held-out digits (of :func:`load_digits_split`)."""
    return load_test_digits(n)[1]


def make_tiny_model_bytes() -> bytes:
    """A one-node ONNX model (Identity on a (batch, 2) float tensor), serialised.

    Enough to prove that session options make a working session.
    """
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


# 05.1: the loader's predict function ---------------------------------------------------

def call_predict(predict, batch):
    """``predict(batch)`` as an array, or a hint naming what went wrong (and on which batch)."""
    try:
        result = predict(batch)
    except CheckFailed:
        raise
    except Exception as error:  # anything the student's function raises
        what = str(error) if type(error).__name__ == "FunctionRaised" else \
            f"the function raised {type(error).__name__}"
        if "TypeError" in what:  # e.g. the loader, which takes no batch
            raise CheckFailed(f"digits_predict could not be called with one batch ({what}); if "
                              "this is the loader, call it: what it returns is the predict "
                              "function") from None
        raise CheckFailed(f"digits_predict failed on a float32 batch of shape {batch.shape}, the "
                          f"API's layout ({what}): reshape it to the model's layout inside "
                          "predict") from None
    return np.asarray(result)


@register("05.1")
def _predict_returns_logits_per_image(predict):
    if not callable(predict):
        raise CheckFailed(f"store the predict function that the loader returns (call the loader: "
                          f"onnx_loader(...)()), got {type(predict).__name__}")
    images, _ = load_test_digits(3)
    logits = call_predict(predict, images)
    if logits.shape == (3,):
        raise CheckFailed("predict returned one number per image; it should return the logits, "
                          "one row of 10 scores per image (the API computes the labels)")
    if logits.shape != (3, 10):
        raise CheckFailed(f"predict returned shape {logits.shape} for 3 images; expected (3, 10), "
                          "one row of logits per image")
    if logits.dtype.kind != "f":
        raise CheckFailed(f"predict returned {logits.dtype} values; the logits are floats")
    one = call_predict(predict, images[:1])
    if one.shape != (1, 10):
        raise CheckFailed(f"predict returned shape {one.shape} for 1 image; the batch size must "
                          "come from the batch, not be fixed")


# 05.2: labels over HTTP -------------------------------------------------------------

@register("05.2")
def _labels_of_every_digit(labels):
    if isinstance(labels, dict) and "detail" in labels:
        detail = str(labels["detail"])[:300]
        raise CheckFailed(f"this is the reply to a refused request: the server answered with an "
                          f"error, whose detail says: {detail}. Change the request until the "
                          "server answers 200, then keep the 'labels' of its replies")
    if isinstance(labels, dict) or hasattr(labels, "status_code"):
        raise CheckFailed("this is a whole response; store only the predicted labels")
    if not isinstance(labels, (list, tuple, np.ndarray)):
        raise CheckFailed(f"expected a list of labels, got {type(labels).__name__}")
    if len(labels) and all(isinstance(item, dict) for item in labels):
        raise CheckFailed("these are the replies; store the labels they hold, one per image")
    try:
        array = np.asarray(labels)
    except ValueError:
        raise CheckFailed("expected one label per image, a flat list of ints") from None
    if array.ndim != 1:
        raise CheckFailed(f"expected one label per image (a flat list), got shape {array.shape}; "
                          "the replies' 'labels' are already arg-maxed")
    expected = len(load_test_labels())
    if len(array) != expected:
        raise CheckFailed(f"expected {expected} labels, one per held-out digit (x_test), got "
                          f"{len(array)}: every image must be sent, each request within the "
                          "endpoint's limit")


# 05.3: footprint ratios -------------------------------------------------------------

_RATIO_KEYS = ("as installed", "without CUDA wheels")
_CUDA_WHEELS = ("nvidia", "triton")


def measured_ratios() -> dict:
    """The two ratios of 05.3 and the top-level-only one, measured from this environment."""
    from ..footprint import measure_footprint, onnxruntime_distribution

    ort_fp = measure_footprint(onnxruntime_distribution(), "fastapi", "uvicorn")
    torch_fp = measure_footprint("torch", "fastapi", "uvicorn")
    cuda = sum(d.size_bytes for d in torch_fp.distributions if d.name.lower().startswith(_CUDA_WHEELS))
    return {"as installed": torch_fp.total_bytes / ort_fp.total_bytes,
            "without CUDA wheels": (torch_fp.total_bytes - cuda) / ort_fp.total_bytes,
            "top level": torch_fp.size_mb_of("torch") / ort_fp.size_mb_of(onnxruntime_distribution())}


def _close(a, b, tolerance=0.02) -> bool:
    return abs(a - b) <= tolerance * abs(b)


@register("05.3")
def _ratios_match_this_environment(ratios):
    if not isinstance(ratios, dict) or set(ratios) != set(_RATIO_KEYS):
        raise CheckFailed(f"store a dict with the keys {list(_RATIO_KEYS)}")
    for key in _RATIO_KEYS:
        value = ratios[key]
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
            raise CheckFailed(f"{key!r} should be a number, got {type(value).__name__}")
        if not np.isfinite(value) or value <= 0:
            raise CheckFailed(f"{key!r} should be a positive ratio, got {value}")
        if value < 1:
            raise CheckFailed(f"{key!r} is below 1: divide the PyTorch environment's size by the "
                              "ONNX Runtime one's")
    measured = measured_ratios()  # of the distributions installed here, as the notebook measures
    installed, without = ratios["as installed"], ratios["without CUDA wheels"]
    if not _close(installed, measured["as installed"]):
        if _close(installed, measured["without CUDA wheels"]):
            raise CheckFailed("'as installed' leaves something out: count every distribution of "
                              "both environments")
        if _close(installed, measured["top level"]):
            raise CheckFailed("'as installed' compares only the two top-level packages; a serving "
                              "environment needs their dependencies too")
        raise CheckFailed("'as installed' does not match the total sizes of torch_fp and ort_fp")
    if not _close(without, measured["without CUDA wheels"]):
        if _close(without, measured["as installed"]):
            raise CheckFailed("'without CUDA wheels' is the size as installed: leave out the "
                              "nvidia-* and triton distributions of torch_fp")
        raise CheckFailed("'without CUDA wheels' does not match torch_fp's total without its "
                          "nvidia-* and triton distributions")


# 05.4: scikit-learn pipeline to ONNX -------------------------------------------------

def load_digits_held_out():
    """The held-out digits as 64 pixel features and labels (of :func:`split_digits`)."""
    from ..digits import split_digits

    _, x_test, _, y_test = split_digits()
    return x_test, y_test


def make_check_session(path):
    """A CPU-only ONNX Runtime session of the file at ``path`` (through the checks' one door)."""
    from .export import answer_session, load_answer_onnx

    return answer_session(load_answer_onnx(path))


@register("05.4")
def _skl_file_runs(path):
    if not isinstance(path, (str, Path)):
        raise CheckFailed(f"expected the path of the .onnx file, got {type(path).__name__}")
    if not Path(path).is_file():
        raise CheckFailed(f"no file at {path}: save the converted model first")
    session = make_check_session(path)
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].type != "tensor(float)" or inputs[0].shape[-1] != 64:
        raise CheckFailed("expected one float input of 64 features per row, got "
                          f"{[(i.name, i.type, i.shape) for i in inputs]}")
    outputs = session.get_outputs()
    if len(outputs) != 2:
        raise CheckFailed(f"expected 2 outputs (a label and the probabilities), got "
                          f"{[o.name for o in outputs]}")
    if outputs[1].type != "tensor(float)":
        raise CheckFailed(f"the probabilities come out as {outputs[1].type}, one {{class: "
                          "probability}} map per row, not a (batch, 10) tensor: ZipMap is still on")
