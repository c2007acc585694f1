"""Hidden checks for notebook 03 (Netron, graph optimisation) and their test data: grader only, never released."""
from __future__ import annotations

from ...checks import CheckFailed, register
from ...exercise_checks.export import answer_session
from ...exercise_checks.graphs import load_hand_model, load_optimized_model, read_traffic
from ..cases import Cases, Right, Wrong, built, context_item, edited_onnx, resnet18_onnx

_RESNET18_FIRST_CONV = {"kernel_shape": [7, 7], "strides": [2, 2], "pads": [3, 3, 3, 3],
                        "weight_shape": [64, 3, 7, 7]}
# resnet18's graph input after the batch, and its weights' shapes (the dynamo export, whose
# batch norms are folded into the convolutions): what every optimisation level keeps.
_RESNET18_IMAGE = [3, 224, 224]
_RESNET18_WEIGHT_SHAPES = sorted(
    [[2], [2], [64, 3, 7, 7], [1000], [1000, 512]] + 4 * [[64, 64, 3, 3]]
    + [[128, 64, 1, 1], [128, 64, 3, 3], [256, 128, 1, 1], [256, 128, 3, 3], [512, 256, 1, 1],
       [512, 256, 3, 3]] + 3 * [[128, 128, 3, 3], [256, 256, 3, 3], [512, 512, 3, 3]])
# Each Conv of resnet18's dynamo export (torch 2.14) that the extended level fuses, with the Relu
# fused into it: one per FusedConv.
_RESNET18_FUSED_INTO = {"node_Conv_293": "node_relu", "node_Conv_296": "node_relu_1",
                        "node_Conv_302": "node_relu_3", "node_Conv_308": "node_relu_5",
                        "node_Conv_317": "node_relu_7", "node_Conv_323": "node_relu_9",
                        "node_Conv_332": "node_relu_11", "node_Conv_338": "node_relu_13",
                        "node_Conv_347": "node_relu_15"}
# The outputs of the 9 Conv nodes fused with their Relu, one image.
_RESNET18_REMOVED_SHAPES = sorted([[1, 64, 112, 112]] + 2 * [[1, 64, 56, 56], [1, 128, 28, 28],
                                                             [1, 256, 14, 14], [1, 512, 7, 7]])


@register("03.1", hidden=True)
def _first_conv_of_resnet18(first_conv):
    for key, expected in _RESNET18_FIRST_CONV.items():
        if list(first_conv[key]) != expected:
            raise CheckFailed(f"{key!r} is not that of the graph's first node")


@register("03.2", hidden=True)
def _optimises_the_resnet18_of_onnx_path(optimized_path):
    model = load_optimized_model(optimized_path)
    weights = {t.name for t in model.graph.initializer}
    images = [[d.dim_value for d in i.type.tensor_type.shape.dim][1:]
              for i in model.graph.input if i.name not in weights]
    shapes = sorted(list(t.dims) for t in model.graph.initializer)
    if images != [_RESNET18_IMAGE] or shapes != _RESNET18_WEIGHT_SHAPES:
        raise CheckFailed("this is not resnet18's graph (its inputs or its weights differ): "
                          "optimise the model in onnx_path")


@register("03.2", hidden=True)
def _runs_with_batch_3(optimized_path):
    import numpy as np

    session = answer_session(load_optimized_model(optimized_path))
    first = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 3 for d in first.shape]
    if shape and shape[0] != 3:
        raise CheckFailed("the saved graph lost the dynamic batch dimension")
    session.run(None, {first.name: np.zeros(shape, dtype=np.float32)})


@register("03.3", hidden=True)
def _fusions_of_resnet18(fused_into):
    if {other: conv for conv, other in fused_into.items()} == _RESNET18_FUSED_INTO:
        raise CheckFailed("the dict maps each absorbed node to its Conv: key each pair by the Conv")
    outputs = {conv: other.removeprefix("node_") for conv, other in _RESNET18_FUSED_INTO.items()}
    if fused_into and all(outputs.get(conv) == other for conv, other in fused_into.items()):
        raise CheckFailed("the values are the names of the tensors the absorbed nodes write "
                          "(node.output), not of the nodes (node.name)")
    wrong = [conv for conv, other in fused_into.items() if _RESNET18_FUSED_INTO.get(conv) != other]
    if wrong:
        raise CheckFailed(f"{len(wrong)} of these pairs were not fused at the extended level: each "
                          "FusedConv of the extended graph replaces one pair, a Conv and the "
                          "activation that reads its output")
    missing = len(_RESNET18_FUSED_INTO) - len(fused_into)
    if missing:
        raise CheckFailed(f"{missing} of the extended graph's FusedConv nodes have no pair in the "
                          "dict")


@register("03.4", hidden=True)
def _removed_tensors_of_resnet18(traffic):
    removed, saved_bytes = read_traffic(traffic)
    if sorted(list(shape) for shape in removed.values()) != _RESNET18_REMOVED_SHAPES:
        # (the public check has made saved_bytes add up to these shapes)
        raise CheckFailed("these are not the tensors that the extended graph no longer produces")


@register("03.5", hidden=True)
def _hand_model_computes_conv_bn_relu(answer):
    import numpy as np
    import torch
    from onnx import numpy_helper

    hand_model = load_hand_model(answer)
    weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy())
               for t in hand_model.graph.initializer}
    conv, bn = hand_model.graph.node[0], hand_model.graph.node[1]
    session = answer_session(hand_model)
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    (actual,) = session.run(None, {session.get_inputs()[0].name: x})
    scale, shift, mean, var = (weights[name] for name in bn.input[1:5])
    y = torch.nn.functional.conv2d(torch.from_numpy(x), weights[conv.input[1]])
    y = torch.nn.functional.batch_norm(y, mean, var, scale, shift, training=False, eps=1e-5)
    expected = torch.relu(y).numpy()
    if actual.shape != expected.shape or not np.allclose(actual, expected, rtol=1e-4, atol=1e-4):
        raise CheckFailed("the model runs but does not compute Relu(BatchNormalization(Conv(x))) "
                          "with the given weights: check which initializer goes to which input")


# --- test data (grading/cases.py): right and wrong answers, the alternative ----------------------
# The right answers of 03.1 to 03.4 are computed as the notebook computes them, from resnet18's
# dynamo export optimised by ONNX Runtime, so a check whose hard-coded facts drift from what these
# versions produce fails its tests.

def _optimise(source, target, level: str):
    """Save ``source`` as ONNX Runtime optimises it at ``level`` (the notebook's 03.2 cell)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    options.optimized_model_filepath = str(target)
    ort.InferenceSession(str(source), sess_options=options, providers=["CPUExecutionProvider"])
    return target


@context_item
def graph_files(c) -> dict:
    """resnet18 exported and optimised as in notebook 03, and the wrong graphs, by name."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder, original = c.subfolder("graphs"), resnet18_onnx(c)
    files = {"original": original,
             "extended": _optimise(original, folder / "resnet18.extended.onnx", "ORT_ENABLE_EXTENDED"),
             "basic": _optimise(original, folder / "resnet18.basic.onnx", "ORT_ENABLE_BASIC"),
             "all": _optimise(original, folder / "resnet18.all.onnx", "ORT_ENABLE_ALL")}

    def optimised(name, nodes, x_shape, y_shape, weights):  # a small graph, saved and optimised at extended
        graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
                                  [numpy_helper.from_array(a, n) for n, a in weights.items()])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10),
                  str(folder / f"{name}.onnx"))
        return _optimise(folder / f"{name}.onnx", folder / f"{name}.extended.onnx", "ORT_ENABLE_EXTENDED")

    # resnet18 at extended with its batch fixed to 1; another Conv-Relu model, batch dynamic
    def fixed_batch(model):
        for value in (*model.graph.input, *model.graph.output):
            value.type.tensor_type.shape.dim[0].dim_value = 1
    files["fixed_batch"] = edited_onnx(files["extended"], folder / "resnet18.batch-1.onnx", fixed_batch)
    files["conv_relu"] = optimised(
        "conv-relu", [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Relu", ["c"], ["y"])],
        ["batch", 3, 8, 8], ["batch", 4, 6, 6], {"w": np.ones((4, 3, 3, 3), np.float32)})
    return files


def _graph(name):
    return built(lambda c: graph_files(c)[name])


def first_conv(c, **changes) -> dict:
    """03.1: the first node's kernel_shape, strides, pads and weight shape (with ``changes``)."""
    import onnx
    from onnx import helper

    original = onnx.load(str(graph_files(c)["original"]))
    node = original.graph.node[0]
    facts = {a.name: list(helper.get_attribute_value(a)) for a in node.attribute
             if a.name in ("kernel_shape", "strides", "pads")}
    facts["weight_shape"] = {t.name: list(t.dims) for t in original.graph.initializer}[node.input[1]]
    return {**facts, **changes}


def fused_into(c, reverse=False) -> dict:
    """03.3: each Conv the extended level fused -> the node fused into it, traced from each FusedConv."""
    import onnx

    original = onnx.load(str(graph_files(c)["original"]))
    producer = {name: node for node in original.graph.node for name in node.output}
    pairs = {}
    for node in onnx.load(str(graph_files(c)["extended"])).graph.node:
        if node.op_type == "FusedConv":
            activation = producer[node.output[0]]
            pairs[producer[activation.input[0]].name] = activation.name
    return {v: k for k, v in pairs.items()} if reverse else pairs


def original_pairs(c, follows=("Conv",), op="Relu") -> dict:
    """Each node of the original graph whose op is in ``follows`` -> the ``op`` node that alone reads its output."""
    import onnx

    nodes = onnx.load(str(graph_files(c)["original"])).graph.node
    readers = {}
    for node in nodes:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    return {node.name: readers[node.output[0]][0].name for node in reversed(nodes)
            if node.op_type in follows and len(readers.get(node.output[0], [])) == 1
            and readers[node.output[0]][0].op_type == op}


def removed(c, extended="extended", batch=1) -> dict:
    """03.4's `removed`: name -> shape of the tensors the original makes and ``extended`` does not."""
    import onnx

    original = onnx.load(str(graph_files(c)["original"]))
    optimised = onnx.load(str(graph_files(c)[extended]))
    inferred = onnx.shape_inference.infer_shapes(original)
    shapes = {v.name: [d.dim_value or batch for d in v.type.tensor_type.shape.dim]
              for v in inferred.graph.value_info}
    before = {name for node in original.graph.node for name in node.output}
    after = {name for node in optimised.graph.node for name in node.output}
    return {name: shapes[name] for name in before - after if name in shapes}


def traffic(c, bytes_per_value=4, **options):
    """03.4's answer, ``(removed, saved_bytes)``, with ``bytes_per_value`` per element."""
    import math

    tensors = removed(c, **options)
    return tensors, sum(bytes_per_value * math.prod(shape) for shape in tensors.values())


def saved_bytes(c) -> int:
    """03.4's `saved_bytes`."""
    return traffic(c)[1]


def hand_model(order=("Conv", "BatchNormalization", "Relu"), swap_mean_and_var=False):
    """03.5: Relu(BatchNormalization(Conv(x))) built with onnx.helper, nodes in ``order``."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

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


def _refused_by_the_checker():
    model = hand_model()
    model.graph.node[0].input[1] = "no_such_weight"
    return model


@built
def _tuples_and_numpy(c):
    import numpy as np

    facts = first_conv(c)
    return {**{k: tuple(v) for k, v in facts.items()}, "weight_shape": np.array(facts["weight_shape"])}


_FORM, _BYTES = "graphs:_node_facts_have_the_asked_form", "graphs:_bytes_add_up_to_the_shapes"
_FIRST, _PAIRS = "graphs:_first_conv_of_resnet18", "graphs:_pairs_of_node_names"
_LEVEL = "graphs:_is_the_extended_level"


def _without_layout(c) -> str | None:
    """Why the "all" level cannot be told from extended here: no NCHWc layout on this CPU."""
    import onnx

    nodes = onnx.load(str(graph_files(c)["all"]), load_external_data=False).graph.node
    if any(node.domain == "com.microsoft.nchwc" for node in nodes):
        return None
    return "ONNX Runtime has no NCHWc layout for this CPU: its 'all' graph is the extended one"

CASES = [
    Cases("03.1",
          alternative='''node = next(n for n in original.graph.node if n.op_type == "Conv")
attrs = {a.name: a.ints for a in node.attribute}
weight = next(t for t in original.graph.initializer if t.name == node.input[1])
first_conv = {"kernel_shape": list(attrs["kernel_shape"]), "strides": list(attrs["strides"]),
              "pads": list(attrs["pads"]), "weight_shape": list(weight.dims)}''',
          right=[Right("read-from-the-graph", built(first_conv)),
                 Right("tuples-and-a-numpy-weight-shape", _tuples_and_numpy)],
          wrong=[Wrong("no-padding", built(lambda c: first_conv(c, pads=[0, 0, 0, 0])), _FIRST,
                       "'pads' is not that of the graph's first node"),
                 Wrong("dilations-for-strides", built(lambda c: first_conv(c, strides=[1, 1])), _FIRST,
                       "'strides' is not that of the graph's first node"),
                 Wrong("a-later-conv", built(lambda c: first_conv(c, kernel_shape=[3, 3], weight_shape=[64, 64, 3, 3])),
                       _FIRST, "'kernel_shape' is not that of the graph's first node"),
                 Wrong("pads-per-axis", built(lambda c: first_conv(c, pads=[3, 3])), _FORM,
                       "'pads' has 2 numbers; a 2-d convolution's has 4"),
                 Wrong("weight-in-another-layout", built(lambda c: first_conv(c, weight_shape=[7, 7, 3, 64])), _FORM,
                       "the weight's last two dimensions should repeat kernel_shape"),
                 Wrong("netrons-text", built(lambda c: first_conv(c, kernel_shape="7, 7")), _FORM,
                       "'kernel_shape' should be a list of ints"),
                 Wrong("no-weight", built(lambda c: {k: v for k, v in first_conv(c).items() if k != "weight_shape"}),
                       _FORM, "the dict lacks ['weight_shape']"),
                 Wrong("a-list", [7, 7], _FORM, "store a dict with the keys")],
          answer_words=["[7, 7]", "[2, 2]", "64, 3"]),
    Cases("03.2",
          alternative='''opts = ort.SessionOptions()
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
optimized_path = "artifacts/resnet18.extended.onnx"
opts.optimized_model_filepath = optimized_path
ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])''',
          right=[Right("extended-level", _graph("extended")),
                 Right("a-relative-str-path", built(lambda c: str(graph_files(c)["extended"].relative_to(c.folder))))],
          wrong=[Wrong("all-level-the-default", _graph("all"), _LEVEL,
                       "this graph holds NCHWc layout ops (domain com.microsoft.nchwc): the level above "
                       "extended made them", skip=_without_layout),
                 Wrong("the-original", _graph("original"), _LEVEL, "this graph holds only standard ONNX ops"),
                 Wrong("basic-level", _graph("basic"), _LEVEL, "this graph holds only standard ONNX ops"),
                 Wrong("no-session-created", built(lambda c: c.folder / "resnet18.never-written.onnx"),
                       _LEVEL, "there is no file at"),
                 Wrong("another-conv-relu-model", _graph("conv_relu"), "graphs:_optimises_the_resnet18_of_onnx_path",
                       "this is not resnet18's graph (its inputs or its weights differ)"),
                 Wrong("batch-fixed-to-1", _graph("fixed_batch"), "graphs:_runs_with_batch_3",
                       "the saved graph lost the dynamic batch dimension")],
          answer_words=["ORT_ENABLE_EXTENDED"]),
    Cases("03.3",
          alternative='''readers = {}
for n in original.graph.node:
    for name in n.input:
        readers.setdefault(name, []).append(n)
left = {n.name for n in extended.graph.node if n.op_type == "Relu"}
fused_into = {}
for n in original.graph.node:
    after = readers.get(n.output[0], [])
    if n.op_type == "Conv" and len(after) == 1 and after[0].op_type == "Relu" and after[0].name not in left:
        fused_into[n.name] = after[0].name''',
          right=[Right("traced-from-each-fusedconv", built(fused_into)),
                 Right("from-the-original-graph", built(original_pairs))],
          wrong=[Wrong("the-activation-attribute", built(lambda c: dict.fromkeys(fused_into(c), "Relu")), _PAIRS,
                       "'Relu' is an op type; store node names"),
                 Wrong("counted-as-before", {"Conv+Relu": 9}, _PAIRS, "keys and values are node names (str"),
                 Wrong("fusedconv-to-itself", built(lambda c: {k: k for k in fused_into(c)}), _PAIRS,
                       "is mapped to itself: a FusedConv keeps the name of one of the nodes it replaces"),
                 Wrong("every-conv-to-its-reader", built(lambda c: {**fused_into(c), **original_pairs(c, op="Add")}), _PAIRS,
                       "nodes: a fusion replaces a Conv and the one node that reads its output"),
                 Wrong("a-chain", built(lambda c: {**fused_into(c), "node_relu": "node_max_pool2d"}), _PAIRS,
                       "'node_relu' is a key and a value"),
                 Wrong("a-list", built(lambda c: sorted(fused_into(c))), _PAIRS, "store a dict"),
                 Wrong("activation-to-conv", built(lambda c: fused_into(c, reverse=True)), "graphs:_fusions_of_resnet18",
                       "the dict maps each absorbed node to its Conv"),
                 Wrong("tensor-names-for-node-names",
                       built(lambda c: {k: v.removeprefix("node_") for k, v in fused_into(c).items()}),
                       "graphs:_fusions_of_resnet18", "the values are the names of the tensors"),
                 Wrong("every-relu-and-its-producer", built(lambda c: original_pairs(c, follows=("Conv", "Add"))),
                       "graphs:_fusions_of_resnet18", "8 of these pairs were not fused at the extended level"),
                 Wrong("only-the-first-block", built(lambda c: dict(list(fused_into(c).items())[:3])),
                       "graphs:_fusions_of_resnet18", "6 of the extended graph's FusedConv nodes have no pair")],
          answer_words=["node_relu_1", "node_Conv_3"]),
    Cases("03.4",
          alternative='''typed = onnx.shape_inference.infer_shapes(original, strict_mode=True)
dims = {}
for info in typed.graph.value_info:
    dims[info.name] = tuple(max(d.dim_value, 1) for d in info.type.tensor_type.shape.dim)
kept = set()
for node in extended.graph.node:
    kept.update(node.output)
removed = {}
for node in original.graph.node:
    for out in node.output:
        if out not in kept:
            removed[out] = dims[out]
saved_bytes = int(sum(np.prod(s) for s in removed.values())) * np.dtype(np.float32).itemsize''',
          right=[Right("shapes-and-bytes", built(traffic)),
                 Right("tuples-in-a-list", built(lambda c: [{n: tuple(s) for n, s in traffic(c)[0].items()},
                                                            traffic(c)[1]]))],
          wrong=[Wrong("batch-of-two", built(lambda c: traffic(c, batch=2)), "graphs:_removed_tensors_of_resnet18",
                       "these are not the tensors that the extended graph no longer produces"),
                 Wrong("against-the-all-graph", built(lambda c: traffic(c, extended="all")),
                       "graphs:_removed_tensors_of_resnet18",
                       "these are not the tensors that the extended graph no longer produces"),
                 Wrong("without-4-bytes-per-float", built(lambda c: traffic(c, bytes_per_value=1)), _BYTES,
                       "saved_bytes counts the float32 values of the tensors; count bytes"),
                 Wrong("8-bytes-per-float", built(lambda c: traffic(c, bytes_per_value=8)), _BYTES,
                       "saved_bytes does not add up to the shapes"),
                 Wrong("batch-dim-left-at-0", built(lambda c: traffic(c, batch=0)), _BYTES,
                       "a dimension of 0 is the symbolic batch dimension"),
                 Wrong("after-minus-before", built(lambda c: (removed(c), -saved_bytes(c))), _BYTES,
                       "a number of bytes is a positive whole number"),
                 Wrong("text", built(lambda c: (removed(c), "6 MB")), _BYTES,
                       "store a number of bytes in saved_bytes, got str"),
                 Wrong("bytes-alone", built(saved_bytes), _BYTES, "keep the line traffic = (removed, saved_bytes)"),
                 Wrong("names-only", built(lambda c: (sorted(removed(c)), saved_bytes(c))), _BYTES,
                       "`removed` should be a non-empty dict tensor name -> shape"),
                 Wrong("dim-param-kept", built(lambda c: ({n: ["batch", *s[1:]] for n, s in removed(c).items()},
                                                          saved_bytes(c))), _BYTES, "should be a list of ints")],
          answer_words=["6221824", "6,221,824"]),
    Cases("03.5",
          alternative='''conv = helper.make_node("Conv", inputs=["x", "conv.weight"], outputs=["c"], kernel_shape=[3, 3])
bn = helper.make_node("BatchNormalization", inputs=["c", "bn.scale", "bn.bias", "bn.mean", "bn.var"],
                      outputs=["b"], epsilon=1e-5)
relu = helper.make_node("Relu", inputs=["b"], outputs=["y"])
graph = helper.make_graph([conv, bn, relu], "hand", inputs=[x_info], outputs=[y_info],
                          initializer=initializers)
hand_model = helper.make_model(graph, opset_imports=[helper.make_operatorsetid("", 20)])
hand_model.ir_version = 10''',
          right=[Right("made-with-helper", built(lambda c: hand_model()))],
          wrong=[Wrong("mean-and-variance-swapped", built(lambda c: hand_model(swap_mean_and_var=True)),
                       "graphs:_hand_model_computes_conv_bn_relu",
                       "the model runs but does not compute Relu(BatchNormalization(Conv(x)))"),
                 Wrong("relu-before-batchnorm", built(lambda c: hand_model(("Conv", "Relu", "BatchNormalization"))),
                       "graphs:_hand_model_is_valid", "the graph's nodes are ['Conv', 'Relu', 'BatchNormalization']"),
                 Wrong("input-without-a-producer", built(lambda c: _refused_by_the_checker()),
                       "graphs:_hand_model_is_valid", "onnx.checker refuses the model"),
                 Wrong("a-path", "conv_bn_relu.onnx", "graphs:_hand_model_is_valid", "expected an onnx.ModelProto")],
          answer_words=["bn.mean"]),
]
