"""Checks for notebook 05 (deployment: serving, load test, footprint, scikit-learn to ONNX)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..checks import CheckFailed, register

_SPINNING = "session.intra_op.allow_spinning"
_ORT_STACK = ("onnxruntime", "fastapi", "uvicorn")
_TORCH_STACK = ("torch", "fastapi", "uvicorn")
_SKLEARN_METHODS = {"predict", "predict_proba", "decision_function", "transform",
                    "predict_log_proba", "score", "fit"}


def _tiny_model_bytes() -> bytes:
    # Identity on a (batch, 2) float tensor: enough to prove options make a session.
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


# 05.1: session options for serving next to PyTorch -------------------------------

@register("05.1")
def _options_type_and_spinning(options):
    import onnxruntime as ort

    if not isinstance(options, ort.SessionOptions):
        raise CheckFailed(f"expected an onnxruntime.SessionOptions, got {type(options).__name__}")
    try:
        value = options.get_session_config_entry(_SPINNING)
    except RuntimeError:
        raise CheckFailed("intra-op spinning is still on: add the session config entry that "
                          "controls it (see the prose above the exercise)") from None
    if value != "0":
        raise CheckFailed(f"the spinning entry is {value!r}; ONNX Runtime documents '0' "
                          "(off) and '1' (on)")
    if options.intra_op_num_threads < 1:
        raise CheckFailed("intra_op_num_threads is 0, which lets ONNX Runtime take every "
                          "core; set it explicitly")


@register("05.1", hidden=True)
def _threads_match_torch(options):
    import torch

    if options.intra_op_num_threads != torch.get_num_threads():
        raise CheckFailed("the thread counts of the two backends do not match")


@register("05.1", hidden=True)
def _options_make_a_session(options):
    import onnxruntime as ort

    session = ort.InferenceSession(_tiny_model_bytes(), sess_options=options,
                                   providers=["CPUExecutionProvider"])
    out = session.run(None, {"x": np.ones((3, 2), np.float32)})[0]
    if out.shape != (3, 2):
        raise CheckFailed("a session made with these options does not run")


# 05.2: labels over HTTP -------------------------------------------------------------

def _test_labels(n: int) -> np.ndarray:
    from ..digits import load_digits_split

    return load_digits_split()[3][:n].numpy()


@register("05.2")
def _labels_list(labels):
    if isinstance(labels, dict) or hasattr(labels, "status_code"):
        raise CheckFailed("this is the whole response; store only the list of predicted labels")
    if not isinstance(labels, (list, tuple, np.ndarray)):
        raise CheckFailed(f"expected a list of labels, got {type(labels).__name__}")
    array = np.asarray(labels)
    if array.ndim != 1:
        raise CheckFailed(f"expected one label per image (a flat list), got shape {array.shape}; "
                          "the response's 'labels' are already arg-maxed")
    if len(array) != 32:
        raise CheckFailed(f"expected 32 labels (one per image of the batch), got {len(array)}")


@register("05.2", hidden=True)
def _labels_are_ints_and_right(labels):
    array = np.asarray(labels)
    if array.dtype.kind not in "iu" or array.min() < 0 or array.max() > 9:
        raise CheckFailed("labels should be integers from 0 to 9")
    truth = _test_labels(32)
    if (array == truth).mean() < 0.9:
        raise CheckFailed("most labels are wrong: did you send the first 32 test images, "
                          "scaled as in training?")


# 05.3: footprint ratio --------------------------------------------------------------

@register("05.3")
def _ratio_is_number(ratio):
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.floating)):
        raise CheckFailed(f"expected a number, got {type(ratio).__name__}")
    if not np.isfinite(ratio) or ratio <= 0:
        raise CheckFailed(f"expected a positive ratio, got {ratio}")
    if ratio < 1:
        raise CheckFailed("the ratio is below 1: divide the PyTorch environment's size by the "
                          "ONNX Runtime one's")


@register("05.3", hidden=True)
def _ratio_counts_dependencies(ratio):
    from ..footprint import measure_footprint

    ort_fp, torch_fp = measure_footprint(*_ORT_STACK), measure_footprint(*_TORCH_STACK)
    expected = torch_fp.total_bytes / ort_fp.total_bytes
    if abs(ratio - expected) > 0.02 * expected:
        own = torch_fp.size_mb_of("torch") / ort_fp.size_mb_of("onnxruntime")
        if abs(ratio - own) <= 0.02 * own:
            raise CheckFailed("this compares only the two top-level packages; "
                              "a serving environment needs their dependencies too")
        raise CheckFailed("the ratio does not match the two environments' total sizes")


# 05.4: scikit-learn pipeline to ONNX -------------------------------------------------

def _digits_held_out():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    _, x_test, _, y_test = train_test_split(x.astype(np.float32), y, test_size=0.25,
                                            random_state=0, stratify=y)
    return x_test, y_test


def _session(path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@register("05.4")
def _skl_file_runs(path):
    if not isinstance(path, (str, Path)):
        raise CheckFailed(f"expected the path of the .onnx file, got {type(path).__name__}")
    if not Path(path).is_file():
        raise CheckFailed(f"no file at {path}: save the converted model first")
    session = _session(path)
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].type != "tensor(float)" or inputs[0].shape[-1] != 64:
        raise CheckFailed("expected one float input of 64 features per row, got "
                          f"{[(i.name, i.type, i.shape) for i in inputs]}")
    if len(session.get_outputs()) != 2:
        raise CheckFailed(f"expected 2 outputs (a label and the probabilities), got "
                          f"{[o.name for o in session.get_outputs()]}")


@register("05.4", hidden=True)
def _skl_outputs_tensors_dynamic_batch(path):
    session = _session(path)
    label, probabilities = session.get_outputs()
    if probabilities.type != "tensor(float)":
        raise CheckFailed("the probabilities are a sequence of maps: the zipmap option is still on")
    x_test, y_test = _digits_held_out()
    name = session.get_inputs()[0].name
    try:
        labels, proba = session.run(None, {name: x_test[:7]})
    except Exception:  # onnxruntime raises its own exception types
        raise CheckFailed("the model does not accept a batch of 7 rows: is the batch "
                          "dimension fixed?") from None
    if proba.shape != (7, 10) or not np.allclose(proba.sum(axis=1), 1, atol=1e-4):
        raise CheckFailed("the probabilities should have shape (batch, 10) and rows summing to 1")
    labels, _ = session.run(None, {name: x_test})
    if (labels == y_test).mean() < 0.9:
        raise CheckFailed("the exported model's labels are mostly wrong on held-out digits")


# 05.5: which methods the export reproduces --------------------------------------------

@register("05.5")
def _methods_spelled_right(methods):
    if isinstance(methods, str) or not isinstance(methods, (list, tuple, set)):
        raise CheckFailed("expected a list of method names, e.g. ['transform']")
    unknown = [m for m in methods if m not in _SKLEARN_METHODS]
    if unknown:
        raise CheckFailed(f"{unknown[0]!r} is not a scikit-learn method name; spell them as "
                          "scikit-learn does (e.g. 'predict')")
    if len(set(methods)) != 2:
        raise CheckFailed("the exported graph has two outputs: name one method per output")


@register("05.5", hidden=True)
def _methods_exact(methods):
    if set(methods) != {"predict", "predict_proba"}:
        raise CheckFailed("compare each output with the pipeline's methods again")
