"""Hidden checks for notebook 03 (Netron, graph optimisation): grader only, never released."""
from __future__ import annotations

from ...checks import CheckFailed, register
from ...exercise_checks.export import answer_session
from ...exercise_checks.graphs import load_hand_model, load_optimized_model, read_traffic

_RESNET18_FIRST_CONV = {"kernel_shape": [7, 7], "strides": [2, 2], "pads": [3, 3, 3, 3],
                        "weight_shape": [64, 3, 7, 7]}
_RESNET18_FUSIONS = {"Conv+Relu": 9}
# The outputs of the 9 Conv nodes fused with their Relu, one image.
_RESNET18_REMOVED_SHAPES = sorted([[1, 64, 112, 112]] + 2 * [[1, 64, 56, 56], [1, 128, 28, 28],
                                                             [1, 256, 14, 14], [1, 512, 7, 7]])


@register("03.1", hidden=True)
def _first_conv_of_resnet18(first_conv):
    for key, expected in _RESNET18_FIRST_CONV.items():
        if list(first_conv[key]) != expected:
            raise CheckFailed(f"{key!r} is not that of the graph's first node")


@register("03.2", hidden=True)
def _is_extended_not_all(optimized_path):
    model = load_optimized_model(optimized_path)
    if any(node.domain == "com.microsoft.nchwc" for node in model.graph.node):
        raise CheckFailed("this graph was optimised beyond the extended level")
    if not any(node.op_type == "FusedConv" for node in model.graph.node):
        raise CheckFailed("this graph holds none of the extended level's fusions")


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
def _fusions_of_resnet18(fused):
    if set(fused) != set(_RESNET18_FUSIONS):
        raise CheckFailed("these are not the fusions of the extended level")
    if fused != _RESNET18_FUSIONS:
        raise CheckFailed("the number of fused nodes is off")


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
