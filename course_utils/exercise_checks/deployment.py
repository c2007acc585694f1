"""Checks for notebook 05 (deployment: serving, load test, footprint, scikit-learn to ONNX)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..answers import SessionOptionsFacts, register_answer, session_options_facts
from ..checks import CheckFailed, register

register_answer("05.1", "serving_options", extract=session_options_facts)
register_answer("05.2", "http_labels")
register_answer("05.3", "size_ratio")
register_answer("05.4", "skl_onnx_path", kind="file")
register_answer("05.5", "exported_methods")

_SPINNING = "session.intra_op.allow_spinning"
_SKLEARN_METHODS = {"predict", "predict_proba", "decision_function", "transform",
                    "predict_log_proba", "score", "fit"}


def _tiny_model_bytes() -> bytes:
    # Identity on a (batch, 2) float tensor: a model every provider can run.
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
    # options: the facts read from the student's SessionOptions (see answers.py)
    if not isinstance(options, SessionOptionsFacts):
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


