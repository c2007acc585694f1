"""Checks for notebook 06 (the browser): 06.1, the JavaScript ``predict(session, item)`` that
onnxruntime-web runs on each held-out digit.

The answer is a string of JavaScript. It is judged by what a real browser did with it: headless
Chromium runs it through the course's page harness (``browser_run.run_script_in_browser``) on
a small convolutional model made here with ``onnx.helper`` (the lesson's input contract: input
``x``, float32, ``(batch, 1, height, width)``; output ``logits``, 10 per image), and its logits
are compared with Python ONNX Runtime's on the same inputs. Where no browser can be driven the
check raises ``BrowserUnavailable`` and the exercise is reported as needing a browser, never
as wrong. The hidden checks (grader only) run it on inputs it has not seen.
"""
from __future__ import annotations

import functools

import numpy as np

from ..answers import register_answer
from ..checks import CheckFailed, register

register_answer("06.1", "predict_js")

#: Items per check run, and the most the browser's logits may differ from Python's (measured:
#: 3.8e-6 to 7.6e-6 on the digits CNN, the same kernels in another build and order).
CHECK_ITEMS = 16
TOLERANCE = 1e-4


def contract_model(size: int = 8, seed: int = 0) -> bytes:
    """A small CNN with the lesson's input contract, as ``.onnx`` bytes (random weights, seeded).

    ``x``: float32 ``(batch, 1, size, size)`` -> Conv 3x3 (4 channels) -> Relu -> Flatten ->
    Gemm -> ``logits`` ``(batch, 10)``; opset 20, IR 10 (what the dynamo exporter writes).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = {"conv.weight": rng.normal(0, 0.5, (4, 1, 3, 3)), "conv.bias": rng.normal(0, 0.1, 4),
               "head.weight": rng.normal(0, 0.2, (10, 4 * size * size)),
               "head.bias": rng.normal(0, 0.1, 10)}
    nodes = [helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Flatten", ["r"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "head.weight", "head.bias"], ["logits"], transB=1)]
    graph = helper.make_graph(
        nodes, "contract", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)
    onnx.checker.check_model(model)
    return model.SerializeToString()


@functools.lru_cache(maxsize=8)
def browser_outcome(script: str, size: int = 8, seed: int = 0) -> dict:
    """What headless Chromium did with ``script`` on :func:`contract_model` ``(size, seed)``.

    Inputs: :data:`CHECK_ITEMS` images of values in [0, 1] (seeded). Kept per script, so the
    checks of one answer share a browser run.

    Returns:
        ``{"status", "error", "max_abs", "agree", "items"}``: the browser's status and words,
        the largest difference from Python ONNX Runtime's logits and on how many items the
        argmax agreed (``None`` unless the page ran).

    Raises:
        BrowserUnavailable: no browser can be driven here.
    """
    import onnxruntime as ort

    from ..browser_run import run_script_in_browser

    model = contract_model(size, seed)
    inputs = np.random.default_rng(seed + 100).random((CHECK_ITEMS, 1, size, size), dtype=np.float32)
    run = run_script_in_browser(str.__str__(script), model, inputs)
    outcome = {"status": run["status"], "error": run["error"], "max_abs": None, "agree": None,
               "items": CHECK_ITEMS}
    if run["status"] == "ok":
        session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        expected = session.run(None, {"x": inputs})[0]
        got = np.asarray(run["outputs"], dtype=np.float32)
        if got.shape != expected.shape:
            outcome.update(status="shape", error=f"{got.shape[1]} numbers per item")
        else:
            outcome["max_abs"] = float(np.abs(got - expected).max())
            outcome["agree"] = int((got.argmax(1) == expected.argmax(1)).sum())
    return outcome


def agrees_with_python(outcome: dict) -> bool:
    """Whether a :func:`browser_outcome` ran and matched Python ONNX Runtime on every item."""
    return (outcome["max_abs"] is not None and outcome["max_abs"] <= TOLERANCE
            and outcome["agree"] == outcome["items"])


@register("06.1")
def _a_script(predict_js):
    if not isinstance(predict_js, str) or not predict_js.strip():
        raise CheckFailed(f"expected the JavaScript as a str (a triple-quoted string), got "
                          f"{type(predict_js).__name__}")
    if "predict" not in predict_js:
        raise CheckFailed("the script must define async function predict(session, item); "
                          "the page calls it once per digit")


@register("06.1", browser=True)
def _runs_like_python(predict_js):
    outcome = browser_outcome(predict_js)
    if outcome["status"] == "shape":
        raise CheckFailed(f"predict returned {outcome['error']}: return the 10 logits of the "
                          "model's output for one image")
    if outcome["status"] != "ok":
        raise CheckFailed(f"headless Chromium ran the script and it failed: {outcome['error']}; "
                          "compare the tensor you build with the input contract printed in step 1")
    if not agrees_with_python(outcome):
        raise CheckFailed(f"the browser's logits differ from Python ONNX Runtime's by up to "
                          f"{outcome['max_abs']:.3g} (argmax equal on {outcome['agree']} of "
                          f"{outcome['items']} images): the model got other numbers than "
                          "item.data holds, or in another order")
