"""Checks for notebook 03: Netron and ONNX Runtime's graph optimisations.

03.1 the attributes and weight shape of the first node (read in Netron), 03.2 an
extended-level optimised graph saved with ``SessionOptions`` (the level read from the ops the
file holds: none of ONNX Runtime's own means a level too low, NCHWc layout ops the level above),
03.3 the pairs of original nodes each fusion replaced, traced through the tensor names both
graphs share, 03.4 the intermediate tensors that no longer exist and their bytes, 03.5 a small
graph built by hand with onnx.helper (Conv, BatchNormalization, Relu).
The public checks judge an answer's form, its consistency with itself and the optimisation
level a saved graph shows; the facts of resnet18 are the hidden checks'.
"""
from __future__ import annotations

import math
from pathlib import Path

from course_utils.answers import onnx_model_bytes, register_answer
from course_utils.checks import CheckFailed, register
from course_utils.onnx_files import load_onnx_file

from .export import answer_model_from_bytes, answer_session, refuse_external_data

register_answer("03.1", "first_conv")
register_answer("03.2", "optimized_path", kind="file")
register_answer("03.3", "fused_into")
register_answer("03.4", "traffic")
register_answer("03.5", "hand_model", extract=onnx_model_bytes)

# --- 03.1: a node read in Netron ---------------------------------------------------------

#: What 03.1 asks for: key -> how many ints.
FIRST_CONV_KEYS = {"kernel_shape": 2, "strides": 2, "pads": 4, "weight_shape": 4}


def _int_list(value) -> bool:
    if hasattr(value, "tolist"):  # a numpy array of ints is fine too
        value = value.tolist()
    return (isinstance(value, (list, tuple))
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value))


@register("03.1")
def _node_facts_have_the_asked_form(first_conv):
    if not isinstance(first_conv, dict):
        raise CheckFailed(f"store a dict with the keys {sorted(FIRST_CONV_KEYS)}, "
                          f"got {type(first_conv).__name__}")
    missing = [key for key in FIRST_CONV_KEYS if key not in first_conv]
    if missing:
        raise CheckFailed(f"the dict lacks {missing}; its keys should be {sorted(FIRST_CONV_KEYS)}")
    for key, length in FIRST_CONV_KEYS.items():
        value = first_conv[key]
        if not _int_list(value):
            raise CheckFailed(f"{key!r} should be a list of ints, got {value!r} "
                              "(onnx.helper.get_attribute_value reads an attribute's ints)")
        if len(value) != length:
            what = ("a begin and an end for each of the 2 spatial axes" if key == "pads"
                    else "one per spatial axis" if length == 2 else "4 dimensions")
            raise CheckFailed(f"{key!r} has {len(value)} numbers; a 2-d convolution's has {length} "
                              f"({what})")
    if list(first_conv["weight_shape"])[2:] != list(first_conv["kernel_shape"]):
        raise CheckFailed("the weight's last two dimensions should repeat kernel_shape: ONNX "
                          "stores a Conv weight as (out channels, in channels, kernel height, "
                          "kernel width)")


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
        model = load_onnx_file(path, load_weights=False)
    except (OSError, ValueError) as error:  # a truncated or foreign file
        raise CheckFailed(f"{path.name} is not an ONNX model ({type(error).__name__})") from None
    return refuse_external_data(model)


#: The NCHWc layout's ops (ReorderInput, ReorderOutput, convolutions on channel blocks): the
#: level above extended, where ONNX Runtime lays tensors out for this CPU's vectors.
LAYOUT_DOMAIN = "com.microsoft.nchwc"


@register("03.2")
def _is_the_extended_level(optimized_path):
    model = load_optimized_model(optimized_path)
    domains = {node.domain for node in model.graph.node}
    if LAYOUT_DOMAIN in domains:
        raise CheckFailed("this graph holds NCHWc layout ops (domain com.microsoft.nchwc): the level "
                          "above extended made them, laying tensors out for this CPU. A new "
                          "SessionOptions starts at the highest level (ORT_ENABLE_ALL, ONNX "
                          "Runtime's default); set graph_optimization_level to the level asked for "
                          "before the session is created")
    if "com.microsoft" not in domains:
        raise CheckFailed("this graph holds only standard ONNX ops, as the export and the basic "
                          "level make them; the extended level's fusions are ONNX Runtime's own ops "
                          "(domain com.microsoft): set the level on the SessionOptions and create a "
                          "session with them")


# --- 03.3: what got fused ---------------------------------------------------------------

def _is_op_type(name: str) -> bool:
    import onnx

    return name.startswith("Fused") or onnx.defs.has(name)


@register("03.3")
def _pairs_of_node_names(fused_into):
    if not isinstance(fused_into, dict) or not fused_into:
        raise CheckFailed("store a dict: the name of each original Conv node that was fused -> the "
                          "name of the original node fused into it")
    for conv, other in fused_into.items():
        for name in (conv, other):
            if not isinstance(name, str):
                raise CheckFailed(f"keys and values are node names (str: node.name), got {name!r}")
            if _is_op_type(name):
                raise CheckFailed(f"{name!r} is an op type; store node names (node.name, the name "
                                  "Netron's sidebar shows), which tell one Conv from another")
        if conv == other:
            raise CheckFailed(f"{conv!r} is mapped to itself: a FusedConv keeps the name of one of "
                              "the nodes it replaces; find the other through the tensor it outputs")
    values = list(fused_into.values())
    twice = sorted({name for name in values if values.count(name) > 1})
    if twice:
        raise CheckFailed(f"{twice[0]!r} is fused into {values.count(twice[0])} nodes: a fusion "
                          "replaces a Conv and the one node that reads its output, each node once")
    chained = sorted(set(fused_into) & set(values))
    if chained:
        raise CheckFailed(f"{chained[0]!r} is a key and a value: each pair is one fusion, a Conv "
                          "(the key) and the node it absorbed (the value)")


# --- 03.4: memory traffic -------------------------------------------------------------

def read_traffic(traffic):
    """(removed, saved_bytes) of a 03.4 answer, or a hint on what is wrong with its form."""
    if not isinstance(traffic, (list, tuple)) or len(traffic) != 2:
        raise CheckFailed("keep the line traffic = (removed, saved_bytes) as shipped")
    removed, saved_bytes = traffic
    if not isinstance(removed, dict) or not removed:
        raise CheckFailed(f"`removed` should be a non-empty dict tensor name -> shape, "
                          f"got {type(removed).__name__}")
    for name, shape in removed.items():
        if not isinstance(name, str):
            raise CheckFailed(f"the keys of `removed` are tensor names (str), got {name!r}")
        if not _int_list(shape) or not len(shape):
            raise CheckFailed(f"the shape of {name!r} should be a list of ints, got {shape!r}")
        if any(int(d) <= 0 for d in shape):
            raise CheckFailed(f"the shape of {name!r} is {list(shape)}: a dimension of 0 is the "
                              "symbolic batch dimension (no dim_value); count it as 1")
    if isinstance(saved_bytes, bool) or not isinstance(saved_bytes, (int, float)):
        raise CheckFailed(f"store a number of bytes in saved_bytes, got {type(saved_bytes).__name__}")
    return removed, saved_bytes


@register("03.4")
def _bytes_add_up_to_the_shapes(traffic):
    removed, saved_bytes = read_traffic(traffic)
    if saved_bytes <= 0 or saved_bytes != int(saved_bytes):
        raise CheckFailed("a number of bytes is a positive whole number")
    values = sum(math.prod(int(d) for d in shape) for shape in removed.values())
    if saved_bytes == values:
        raise CheckFailed("saved_bytes counts the float32 values of the tensors; count bytes")
    if saved_bytes != 4 * values:
        raise CheckFailed("saved_bytes does not add up to the shapes in `removed` (float32, each "
                          "tensor once)")
    if saved_bytes > 1e9:
        raise CheckFailed("more than a gigabyte for one image: count each removed tensor once, "
                          "for a batch of one")


# --- 03.5: a graph built by hand with onnx.helper ----------------------------------------

_HAND_OPS = ["Conv", "BatchNormalization", "Relu"]


def load_hand_model(answer):
    """The answer's ModelProto, rebuilt from the bytes the capture took (or a hint)."""
    import numpy as np

    if not (isinstance(answer, np.ndarray) and answer.dtype == np.uint8 and answer.ndim == 1):
        raise CheckFailed(f"expected an onnx.ModelProto (what onnx.helper.make_model returns), "
                          f"got {type(answer).__name__}")
    model = answer_model_from_bytes(answer.tobytes())
    if model is None:
        raise CheckFailed("the model could not be read back; build it with onnx.helper.make_model")
    return model


@register("03.5")
def _hand_model_is_valid(answer):
    import onnx

    hand_model = load_hand_model(answer)
    try:
        onnx.checker.check_model(hand_model, full_check=True)
    except onnx.checker.ValidationError as error:
        first = str(error).strip().splitlines()[0]
        raise CheckFailed(f"onnx.checker refuses the model: {first}") from None
    try:
        answer_session(hand_model)
    except CheckFailed:
        raise
    except Exception as error:  # onnxruntime's own exception types
        if "IR version" in str(error):
            raise CheckFailed(f"ONNX Runtime cannot read IR version {hand_model.ir_version}: "
                              "make_model writes the newest onnx knows; set ir_version") from None
    ops = [node.op_type for node in hand_model.graph.node]
    if ops != _HAND_OPS:
        raise CheckFailed(f"the graph's nodes are {ops}; it should run {' then '.join(_HAND_OPS)}, "
                          "each node's output feeding the next node's first input")
