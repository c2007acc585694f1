"""Checks for notebook 03: Netron and ONNX Runtime's graph optimisations.

03.1 the name of the exported method, 03.2 an extended-level optimised graph
saved with ``SessionOptions``, 03.3 the fusion it made and how often,
03.4 the bytes of intermediate tensors that no longer exist, 03.5 a small graph
built by hand with onnx.helper (Conv, BatchNormalization, Relu).
The facts of 03.1 to 03.4 are those of torchvision's resnet18 (``weights=None``) at the
course's pinned versions.
"""
from __future__ import annotations

from pathlib import Path

from course_utils.answers import onnx_model_bytes, register_answer
from course_utils.checks import CheckFailed, register
from course_utils.onnx_files import load_onnx_file

register_answer("03.1", "method_name")
register_answer("03.2", "optimized_path", kind="file")
register_answer("03.3", "fused")
register_answer("03.4", "saved_bytes")
register_answer("03.5", "hand_model", extract=onnx_model_bytes)

# --- 03.1: the exported method --------------------------------------------------------

@register("03.1")
def _method_is_a_name(method_name):
    if not isinstance(method_name, str) or not method_name.strip():
        raise CheckFailed(f"store the method's name as a string, got {type(method_name).__name__}")
    if method_name == "main_graph":
        raise CheckFailed("'main_graph' is the name the exporter gives the ONNX graph; the "
                          "method's name is in the metadata of the nodes")
    if not method_name.isidentifier():
        raise CheckFailed("store just the name as Python spells it: no parentheses, dots or spaces")
    if method_name[0].isupper():
        raise CheckFailed("that looks like a class name; which method of the class was traced?")


# --- 03.2: the extended-level graph -----------------------------------------------------

def load_optimized_model(optimized_path):
    """The saved optimised model (graph only), or a hint on what is wrong with the answer."""
    if not isinstance(optimized_path, (str, Path)):
        raise CheckFailed(f"store the path of the saved file (str or Path), "
                          f"got {type(optimized_path).__name__}")
    path = Path(optimized_path)
    if not path.is_file():
        raise CheckFailed(f"there is no file at {path}: ONNX Runtime writes it when the session "
                          "is created, after optimized_model_filepath is set")
    try:
        return load_onnx_file(path, load_weights=False)
    except (OSError, ValueError) as error:  # a truncated or foreign file
        raise CheckFailed(f"{path.name} is not an ONNX model ({type(error).__name__})") from None


@register("03.2")
def _has_fused_ops(optimized_path):
    model = load_optimized_model(optimized_path)
    domains = {node.domain for node in model.graph.node}
    if not domains & {"com.microsoft", "com.microsoft.nchwc"}:
        raise CheckFailed("this graph holds only standard ONNX ops, as the export did: set the "
                          "optimisation level on the SessionOptions and create a session with them")


# --- 03.3: what got fused ---------------------------------------------------------------

@register("03.3")
def _fusions_are_named(fused):
    if not isinstance(fused, dict) or not fused:
        raise CheckFailed("store a dict like {'OpA+OpB': count}")
    for pattern, count in fused.items():
        if isinstance(pattern, str) and "Fused" in pattern:
            raise CheckFailed(f"{pattern!r} names the new op; name the original ops it replaces")
        if not isinstance(pattern, str) or "+" not in pattern:
            raise CheckFailed(f"name each fusion by the original ops joined with '+', got {pattern!r}")
        if not all(part.isidentifier() for part in pattern.split("+")):
            raise CheckFailed(f"{pattern!r}: write op types as ONNX spells them, joined by '+'")
        if not isinstance(count, int) or isinstance(count, bool) or count <= 0:
            raise CheckFailed(f"the count of {pattern!r} should be a positive int, got {count!r}")


# --- 03.4: memory traffic -------------------------------------------------------------

@register("03.4")
def _bytes_is_a_count(saved_bytes):
    if isinstance(saved_bytes, bool) or not isinstance(saved_bytes, (int, float)):
        raise CheckFailed(f"store a number of bytes, got {type(saved_bytes).__name__}")
    if saved_bytes <= 0 or saved_bytes != int(saved_bytes):
        raise CheckFailed("a number of bytes is a positive whole number")
    if saved_bytes > 1e9:
        raise CheckFailed("more than a gigabyte for one image: count each removed tensor once, "
                          "for a batch of one")


# --- 03.5: a graph built by hand with onnx.helper ----------------------------------------

_HAND_OPS = ["Conv", "BatchNormalization", "Relu"]


def load_hand_model(answer):
    """The answer's ModelProto, rebuilt from the bytes the capture took (or a hint)."""
    import numpy as np
    import onnx

    if not (isinstance(answer, np.ndarray) and answer.dtype == np.uint8 and answer.ndim == 1):
        raise CheckFailed(f"expected an onnx.ModelProto (what onnx.helper.make_model returns), "
                          f"got {type(answer).__name__}")
    try:
        return onnx.load_model_from_string(answer.tobytes())
    except Exception:  # protobuf's DecodeError and friends
        raise CheckFailed("the model could not be read back; build it with "
                          "onnx.helper.make_model") from None


@register("03.5")
def _hand_model_is_valid(answer):
    import onnx

    hand_model = load_hand_model(answer)
    try:
        onnx.checker.check_model(hand_model, full_check=True)
    except onnx.checker.ValidationError as error:
        first = str(error).strip().splitlines()[0]
        raise CheckFailed(f"onnx.checker refuses the model: {first}") from None
    import onnxruntime as ort

    try:
        ort.InferenceSession(hand_model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's own exception types
        if "IR version" in str(error):
            raise CheckFailed(f"ONNX Runtime cannot read IR version {hand_model.ir_version}: "
                              "make_model writes the newest onnx knows; set ir_version") from None
    ops = [node.op_type for node in hand_model.graph.node]
    if ops != _HAND_OPS:
        raise CheckFailed(f"the graph's nodes are {ops}; it should run {' then '.join(_HAND_OPS)}, "
                          "each node's output feeding the next node's first input")
