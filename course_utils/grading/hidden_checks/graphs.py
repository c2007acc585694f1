"""Hidden checks for notebook 03 (Netron, graph optimisation): grader only, never released."""
from __future__ import annotations

from ...checks import CheckFailed, register
from ...exercise_checks.graphs import load_hand_model, load_optimized_model

_RESNET18_FUSIONS = {"Conv+Relu": 9}
# The 9 fused Conv outputs of resnet18 for one image, float32:
# 64x112x112 + 2 x (64x56x56 + 128x28x28 + 256x14x14 + 512x7x7) elements, 4 bytes each.
_RESNET18_SAVED_BYTES = 4 * (64 * 112 * 112 + 2 * (64 * 56 * 56 + 128 * 28 * 28
                                                   + 256 * 14 * 14 + 512 * 7 * 7))


@register("03.1", hidden=True)
def _method_is_forward(method_name):
    if method_name != "forward":
        raise CheckFailed("this is not the method the exporter traced")


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
    import onnxruntime as ort

    session = ort.InferenceSession(str(optimized_path), providers=["CPUExecutionProvider"])
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
def _bytes_of_resnet18(saved_bytes):
    if int(saved_bytes) != _RESNET18_SAVED_BYTES:
        raise CheckFailed("the number of bytes is off")


@register("03.5", hidden=True)
def _hand_model_computes_conv_bn_relu(answer):
    import numpy as np
    import onnxruntime as ort
    import torch
    from onnx import numpy_helper

    hand_model = load_hand_model(answer)
    weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy())
               for t in hand_model.graph.initializer}
    conv, bn = hand_model.graph.node[0], hand_model.graph.node[1]
    session = ort.InferenceSession(hand_model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    (actual,) = session.run(None, {session.get_inputs()[0].name: x})
    scale, shift, mean, var = (weights[name] for name in bn.input[1:5])
    y = torch.nn.functional.conv2d(torch.from_numpy(x), weights[conv.input[1]])
    y = torch.nn.functional.batch_norm(y, mean, var, scale, shift, training=False, eps=1e-5)
    expected = torch.relu(y).numpy()
    if actual.shape != expected.shape or not np.allclose(actual, expected, rtol=1e-4, atol=1e-4):
        raise CheckFailed("the model runs but does not compute Relu(BatchNormalization(Conv(x))) "
                          "with the given weights: check which initializer goes to which input")
