"""Tests for the checks of notebook 03: course_utils/exercise_checks/graphs.py and
course_utils/grading/hidden_checks/graphs.py.

Every answer goes through what the grader does with it (``check_support.grade``). The
right answers of 03.1 to 03.4 are computed here as the notebook computes them, from a
dynamo export of resnet18 optimised by ONNX Runtime at the extended level, so a check
whose hard-coded facts drift from what these versions produce fails here.
"""
import math
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torchvision
from onnx import TensorProto, helper, numpy_helper

from check_support import assert_fails_hidden, assert_fails_public, assert_right, grade, registered_checks

SMALL_CNN = Path(__file__).parent / "files" / "small-cnn.onnx"  # Conv-Relu-Conv-Relu-MaxPool-...


def _optimise(source, target, level):
    """Save ``source`` as ONNX Runtime optimises it at ``level`` (the notebook's 03.2 cell)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = level
    options.optimized_model_filepath = str(target)
    ort.InferenceSession(str(source), sess_options=options, providers=["CPUExecutionProvider"])
    return target


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """resnet18 exported and optimised as in notebook 03, and the wrong graphs, made once."""
    folder = tmp_path_factory.mktemp("notebook03")
    torch.manual_seed(0)
    original_path = folder / "resnet18.onnx"
    torch.onnx.export(torchvision.models.resnet18().eval(), (torch.randn(2, 3, 224, 224),),
                      str(original_path), dynamo=True, external_data=False, verbose=False,
                      dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    level = ort.GraphOptimizationLevel
    files = {"original": original_path,
             "extended": _optimise(original_path, folder / "resnet18.extended.onnx", level.ORT_ENABLE_EXTENDED),
             "basic": _optimise(original_path, folder / "resnet18.basic.onnx", level.ORT_ENABLE_BASIC),
             "all": _optimise(original_path, folder / "resnet18.all.onnx", level.ORT_ENABLE_ALL)}
    fixed = onnx.load(str(SMALL_CNN))  # the small CNN with its batch fixed to 1, then optimised
    fixed.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    onnx.save(fixed, str(folder / "small-cnn-batch-1.onnx"))
    files["fixed_batch"] = _optimise(folder / "small-cnn-batch-1.onnx", folder / "small-cnn-batch-1.extended.onnx",
                                     level.ORT_ENABLE_EXTENDED)
    mlp = helper.make_graph(  # another model: MatMul-Add-Relu, which extended fuses to FusedGemm
        [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["a"]),
         helper.make_node("Relu", ["a"], ["y"])], "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [numpy_helper.from_array(np.ones((8, 4), np.float32), "w"),
         numpy_helper.from_array(np.ones(4, np.float32), "b")])
    onnx.save(helper.make_model(mlp, opset_imports=[helper.make_opsetid("", 17)], ir_version=10),
              str(folder / "mlp.onnx"))
    files["mlp"] = _optimise(folder / "mlp.onnx", folder / "mlp.extended.onnx", level.ORT_ENABLE_EXTENDED)
    return folder, files


def first_conv(work, **changes):
    """03.1: the first node's kernel_shape, strides, pads and weight shape (with ``changes``)."""
    original = onnx.load(str(work[1]["original"]))
    node = original.graph.node[0]
    facts = {a.name: list(helper.get_attribute_value(a)) for a in node.attribute
             if a.name in ("kernel_shape", "strides", "pads")}
    facts["weight_shape"] = {t.name: list(t.dims) for t in original.graph.initializer}[node.input[1]]
    return {**facts, **changes}


def fused(work):
    """03.3: each FusedConv named by the ops it replaces, counted."""
    counts = Counter()
    for node in onnx.load(str(work[1]["extended"])).graph.node:
        if node.op_type == "FusedConv":
            attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            counts[f"Conv+{attributes['activation'].decode()}"] += 1
    return dict(counts)


def removed(work, extended="extended", batch=1):
    """03.4's `removed`: name -> shape of the tensors the original makes and ``extended`` does not."""
    original = onnx.load(str(work[1]["original"]))
    optimised = onnx.load(str(work[1][extended]))
    inferred = onnx.shape_inference.infer_shapes(original)
    shapes = {v.name: [d.dim_value or batch for d in v.type.tensor_type.shape.dim]
              for v in inferred.graph.value_info}
    before = {name for node in original.graph.node for name in node.output}
    after = {name for node in optimised.graph.node for name in node.output}
    return {name: shapes[name] for name in before - after if name in shapes}


def traffic(work, bytes_per_value=4, **options):
    """03.4's answer, ``(removed, saved_bytes)``, with ``bytes_per_value`` per element."""
    tensors = removed(work, **options)
    return tensors, sum(bytes_per_value * math.prod(shape) for shape in tensors.values())


def saved_bytes(work):
    """03.4's `saved_bytes`."""
    return traffic(work)[1]


def hand_model(order=("Conv", "BatchNormalization", "Relu"), swap_mean_and_var=False):
    """03.5: Relu(BatchNormalization(Conv(x))) built with onnx.helper, nodes in ``order``."""
    rng = np.random.default_rng(0)
    weights = {"w": rng.standard_normal((4, 3, 3, 3), dtype=np.float32),
               "scale": rng.uniform(0.5, 1.5, 4).astype(np.float32),
               "bias": rng.uniform(-1, 1, 4).astype(np.float32),
               "mean": rng.uniform(-1, 1, 4).astype(np.float32),
               "var": rng.uniform(0.5, 2, 4).astype(np.float32)}
    statistics = ["var", "mean"] if swap_mean_and_var else ["mean", "var"]
    inputs = {"Conv": ["w"], "BatchNormalization": ["scale", "bias", *statistics], "Relu": []}
    nodes, previous = [], "x"
    for index, op in enumerate(order):
        output = "y" if index == len(order) - 1 else f"t{index}"
        nodes.append(helper.make_node(op, [previous, *inputs[op]], [output]))
        previous = output
    graph = helper.make_graph(
        nodes, "hand", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, 6, 6])],
        initializer=[numpy_helper.from_array(a, n) for n, a in weights.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)


@pytest.fixture
def graded(tmp_path, work):
    return lambda exercise, answer: grade(exercise, answer, work[0], tmp_path / "grader")


RIGHT = {
    "03.1": first_conv,
    "03.2": lambda work: work[1]["extended"],
    "03.3": fused,
    "03.4": traffic,
    "03.5": lambda work: hand_model(),
}


@pytest.mark.parametrize("exercise", sorted(RIGHT))
def test_right_answer_passes(graded, work, exercise):
    """Does the answer computed as the notebook computes it pass every check?"""
    assert_right(graded(exercise, RIGHT[exercise](work)))


def test_resnet18_facts_are_those_the_checks_expect(work):
    """Are the facts computed here those the hidden checks hard-code (7x7 stride 2, 9 Conv+Relu)?"""
    assert first_conv(work) == {"kernel_shape": [7, 7], "strides": [2, 2], "pads": [3, 3, 3, 3],
                                "weight_shape": [64, 3, 7, 7]}
    assert fused(work) == {"Conv+Relu": 9}
    assert saved_bytes(work) == 6_221_824 and len(removed(work)) == 9


def test_other_correct_forms_pass(graded, work):
    """Do tuples for lists, a numpy weight shape and a str path pass as the notebook uses them?"""
    facts = first_conv(work)
    assert_right(graded("03.1", {**{k: tuple(v) for k, v in facts.items()},
                                 "weight_shape": np.array(facts["weight_shape"])}))
    tensors, total = traffic(work)
    assert_right(graded("03.4", [{name: tuple(shape) for name, shape in tensors.items()}, total]))
    assert_right(graded("03.2", str(work[1]["extended"].name)))


# --- one wrong answer per hidden check ------------------------------------------------------

WRONG_FOR_HIDDEN = [
    pytest.param("03.1", lambda work: first_conv(work, pads=[0, 0, 0, 0]), "graphs:_first_conv_of_resnet18",
                 "'pads' is not that of the graph's first node", id="03.1-no-padding"),
    pytest.param("03.1", lambda work: first_conv(work, strides=[1, 1]), "graphs:_first_conv_of_resnet18",
                 "'strides' is not that of the graph's first node", id="03.1-dilations-for-strides"),
    pytest.param("03.1", lambda work: first_conv(work, kernel_shape=[3, 3], weight_shape=[64, 64, 3, 3]),
                 "graphs:_first_conv_of_resnet18", "'kernel_shape' is not that of the graph's first node",
                 id="03.1-a-later-conv"),
    pytest.param("03.2", lambda work: work[1]["all"], "graphs:_is_extended_not_all",
                 "this graph was optimised beyond the extended level", id="03.2-all-level"),
    pytest.param("03.2", lambda work: work[1]["mlp"], "graphs:_is_extended_not_all",
                 "this graph holds none of the extended level's fusions", id="03.2-another-models-graph"),
    pytest.param("03.2", lambda work: work[1]["fixed_batch"], "graphs:_runs_with_batch_3",
                 "the saved graph lost the dynamic batch dimension", id="03.2-batch-fixed-to-1"),
    pytest.param("03.3", lambda work: {"Conv+Add": 9}, "graphs:_fusions_of_resnet18",
                 "these are not the fusions of the extended level", id="03.3-the-wrong-second-op"),
    pytest.param("03.3", lambda work: {"Conv+Relu": 17}, "graphs:_fusions_of_resnet18",
                 "the number of fused nodes is off", id="03.3-every-relu-counted"),
    pytest.param("03.4", lambda work: traffic(work, batch=2), "graphs:_removed_tensors_of_resnet18",
                 "these are not the tensors that the extended graph no longer produces", id="03.4-batch-of-two"),
    pytest.param("03.4", lambda work: traffic(work, extended="all"), "graphs:_removed_tensors_of_resnet18",
                 "these are not the tensors that the extended graph no longer produces",
                 id="03.4-against-the-all-graph"),
    pytest.param("03.5", lambda work: hand_model(swap_mean_and_var=True), "graphs:_hand_model_computes_conv_bn_relu",
                 "the model runs but does not compute Relu(BatchNormalization(Conv(x)))",
                 id="03.5-mean-and-variance-swapped"),
]


@pytest.mark.parametrize("exercise, make, check, feedback", WRONG_FOR_HIDDEN)
def test_wrong_answer_fails_its_hidden_check(graded, work, exercise, make, check, feedback):
    """Does an answer that passes the public checks fail this hidden check, with its feedback?"""
    assert_fails_hidden(graded(exercise, make(work)), check, feedback)


# --- one wrong answer (at least) per public check -------------------------------------------

def _refused_by_the_checker(work):
    model = hand_model()
    model.graph.node[0].input[1] = "no_such_weight"
    return model


WRONG_FOR_PUBLIC = [
    pytest.param("03.1", lambda work: first_conv(work, pads=[3, 3]), "graphs:_node_facts_have_the_asked_form",
                 "'pads' has 2 numbers; a 2-d convolution's has 4", id="03.1-pads-per-axis"),
    pytest.param("03.1", lambda work: first_conv(work, weight_shape=[7, 7, 3, 64]),
                 "graphs:_node_facts_have_the_asked_form", "the weight's last two dimensions should repeat "
                 "kernel_shape", id="03.1-weight-in-another-layout"),
    pytest.param("03.1", lambda work: first_conv(work, kernel_shape="7, 7"), "graphs:_node_facts_have_the_asked_form",
                 "'kernel_shape' should be a list of ints", id="03.1-netrons-text"),
    pytest.param("03.1", lambda work: {k: v for k, v in first_conv(work).items() if k != "weight_shape"},
                 "graphs:_node_facts_have_the_asked_form", "the dict lacks ['weight_shape']", id="03.1-no-weight"),
    pytest.param("03.1", lambda work: [7, 7], "graphs:_node_facts_have_the_asked_form",
                 "store a dict with the keys", id="03.1-a-list"),
    pytest.param("03.2", lambda work: work[1]["original"], "graphs:_has_fused_ops",
                 "this graph holds only standard ONNX ops", id="03.2-the-original"),
    pytest.param("03.2", lambda work: work[1]["basic"], "graphs:_has_fused_ops",
                 "this graph holds only standard ONNX ops", id="03.2-basic-level"),
    pytest.param("03.2", lambda work: work[0] / "resnet18.never-written.onnx", "graphs:_has_fused_ops",
                 "there is no file at", id="03.2-no-session-created"),
    pytest.param("03.3", lambda work: {"FusedConv": 9}, "graphs:_fusions_are_named",
                 "'FusedConv' names the new op", id="03.3-the-new-op"),
    pytest.param("03.3", lambda work: {"Conv, Relu": 9}, "graphs:_fusions_are_named",
                 "name each fusion by the original ops joined with '+'", id="03.3-comma-separated"),
    pytest.param("03.3", lambda work: {"Conv+Relu": "9"}, "graphs:_fusions_are_named",
                 "the count of 'Conv+Relu' should be a positive int", id="03.3-count-as-text"),
    pytest.param("03.3", lambda work: {"Relu+Conv": 9}, "graphs:_fusions_are_named",
                 "'Relu+Conv' starts with an activation", id="03.3-ops-in-reverse-order"),
    pytest.param("03.4", lambda work: traffic(work, bytes_per_value=1), "graphs:_bytes_add_up_to_the_shapes",
                 "saved_bytes counts the float32 values of the tensors; count bytes", id="03.4-without-4-bytes-per-float"),
    pytest.param("03.4", lambda work: traffic(work, bytes_per_value=8), "graphs:_bytes_add_up_to_the_shapes",
                 "saved_bytes does not add up to the shapes", id="03.4-8-bytes-per-float"),
    pytest.param("03.4", lambda work: traffic(work, batch=0), "graphs:_bytes_add_up_to_the_shapes",
                 "a dimension of 0 is the symbolic batch dimension", id="03.4-batch-dim-left-at-0"),
    pytest.param("03.4", lambda work: (removed(work), -saved_bytes(work)), "graphs:_bytes_add_up_to_the_shapes",
                 "a number of bytes is a positive whole number", id="03.4-after-minus-before"),
    pytest.param("03.4", lambda work: (removed(work), "6 MB"), "graphs:_bytes_add_up_to_the_shapes",
                 "store a number of bytes in saved_bytes, got str", id="03.4-text"),
    pytest.param("03.4", lambda work: saved_bytes(work), "graphs:_bytes_add_up_to_the_shapes",
                 "keep the line traffic = (removed, saved_bytes)", id="03.4-bytes-alone"),
    pytest.param("03.4", lambda work: (sorted(removed(work)), saved_bytes(work)), "graphs:_bytes_add_up_to_the_shapes",
                 "`removed` should be a non-empty dict tensor name -> shape", id="03.4-names-only"),
    pytest.param("03.4", lambda work: ({n: ["batch", *s[1:]] for n, s in removed(work).items()}, saved_bytes(work)),
                 "graphs:_bytes_add_up_to_the_shapes", "should be a list of ints", id="03.4-dim-param-kept"),
    pytest.param("03.5", lambda work: hand_model(("Conv", "Relu", "BatchNormalization")),
                 "graphs:_hand_model_is_valid", "the graph's nodes are ['Conv', 'Relu', 'BatchNormalization']",
                 id="03.5-relu-before-batchnorm"),
    pytest.param("03.5", _refused_by_the_checker, "graphs:_hand_model_is_valid",
                 "onnx.checker refuses the model", id="03.5-input-without-a-producer"),
    pytest.param("03.5", lambda work: "conv_bn_relu.onnx", "graphs:_hand_model_is_valid",
                 "expected an onnx.ModelProto", id="03.5-a-path"),
]


@pytest.mark.parametrize("exercise, make, check, feedback", WRONG_FOR_PUBLIC)
def test_wrong_answer_fails_a_public_check_with_a_hint(graded, work, exercise, make, check, feedback):
    """Does the student's own check() refuse this answer with a hint that gives nothing away?"""
    words = {"03.1": ["[7, 7]", "[2, 2]", "64, 3"], "03.2": ["ORT_ENABLE_EXTENDED"],
             "03.3": ["Conv+Relu': 9", "9}"], "03.4": ["6221824", "6,221,824"], "03.5": ["bn.mean"]}
    assert_fails_public(graded(exercise, make(work)), check, feedback, answer_words=words[exercise])


def test_every_check_of_this_notebook_has_a_wrong_answer_here():
    """Is every hidden and every public check of notebook 03 tried with a wrong answer above?"""
    assert registered_checks("graphs", hidden=True) == {p.values[2] for p in WRONG_FOR_HIDDEN}
    assert registered_checks("graphs", hidden=False) == {p.values[2] for p in WRONG_FOR_PUBLIC}
