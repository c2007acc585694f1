"""Checks for notebook 02 (export and verification), exercises 02.1 to 02.8.

Public checks catch the mistakes a student can fix from the hint; hidden ones
(grader only) catch answers that only look right: a batch fixed by the example,
a dynamic input with a fixed output, the wrong exporter, a comparison that always
passes. Where a student could hand in a value read off a printout or another runtime's
output, the check re-derives it: 02.5's intermediate results are recomputed layer by layer
from the answer's own input and weights, 02.6's function is called on models the check
made, and 02.7's letters are judged by the grader only.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from course_utils.answers import register_answer
from course_utils.checks import CheckFailed, register
from course_utils.onnx_files import load_onnx_file

register_answer("02.1", "resnet_path", kind="file")
register_answer("02.2", "torchscript_path", kind="file")
register_answer("02.3", "digits_path", kind="file")
register_answer("02.4", "outputs_match", kind="function")
register_answer("02.5", "reference_results")
register_answer("02.7", "answers")
register_answer("02.8", "any_size_path", kind="file")


# A student's model reaches ONNX Runtime and onnx through these doors only: the model is read
# from the answer's own bytes, every tensor must hold its data itself (external data, from any
# tensor, is refused before anything would open a file it names: ONNX Runtime resolves such
# names against the working folder when a session is made from bytes), and each session is
# made from the checked model's bytes.

def refuse_external_data(model):
    """Fail unless every tensor of the model holds its own data (no external-data file)."""
    from course_utils.onnx_files import external_data_tensors

    if external_data_tensors(model):
        raise CheckFailed("the model keeps tensor data in another file (external data); the checks "
                          "read the .onnx file alone: save one self-contained file (export with "
                          "external_data=False, or onnx.save without save_as_external_data)")
    return model


def load_answer_onnx(answer):
    """The ONNX model at the answer's path, every tensor's data in the file itself, or a hint."""
    if not isinstance(answer, (str, Path)):  # the notebook's next cells accept either
        raise CheckFailed(f"expected the path of the .onnx file (a str or Path), got "
                          f"{type(answer).__name__}")
    path = Path(answer)
    if not path.is_file():
        raise CheckFailed(f"there is no file at {path}; did the export cell run?")
    try:
        model = load_onnx_file(path, load_weights=False)
    except (OSError, ValueError):
        raise CheckFailed(f"{path.name} is not a readable ONNX file; export it again") from None
    return refuse_external_data(model)


def answer_model_from_bytes(data: bytes):
    """An answer's ModelProto from its serialised bytes (external data refused), or None."""
    import onnx

    try:
        model = onnx.load_model_from_string(bytes(data))
    except Exception:  # protobuf's DecodeError and friends
        return None
    return refuse_external_data(model)


def answer_session(model, options=None):
    """A CPU-only ONNX Runtime session of a model from :func:`load_answer_onnx` (made from its bytes)."""
    import onnxruntime as ort

    refuse_external_data(model)
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def read_dims(value_info) -> list:
    """The dimensions of a graph input or output: names (dynamic), sizes, or None."""
    return [d.dim_param or (d.dim_value if d.HasField("dim_value") else None)
            for d in value_info.type.tensor_type.shape.dim]


def require_dynamo(model, exercise_text: str = "the dynamo exporter") -> None:
    """Fail unless the file carries the node metadata only the dynamo exporter writes."""
    if not has_dynamo_metadata(model):
        raise CheckFailed(f"this file was not written by {exercise_text}: the TorchScript exporter "
                          "wrote it (dynamo=False); the task asks for the dynamo exporter")


def require_dim_names(model, where: str, expected: dict) -> None:
    """Fail unless the first input's (or output's) dimensions carry the task's names."""
    values = model.graph.input if where == "input" else model.graph.output
    dims = read_dims(values[0])
    for axis, name in expected.items():
        if axis < len(dims) and isinstance(dims[axis], str) and dims[axis] != name:
            raise CheckFailed(f"dimension {axis} of the first {where} is named {dims[axis]!r}; "
                              f"the task names it {name!r}")


def _require_dynamic_batch(model, where: str = "input") -> None:
    values = model.graph.input if where == "input" else model.graph.output
    if not values:
        raise CheckFailed(f"the model has no {where}s")
    dims = read_dims(values[0])
    if not dims:
        raise CheckFailed(f"the first {where} has no shape information")
    if not isinstance(dims[0], str):
        raise CheckFailed(f"the batch dimension of the first {where} is fixed to {dims[0]}; "
                          "the example's batch size was recorded as a constant. Look at how "
                          "the exporter is told which dimensions may vary")


def run_answer_onnx(path, batch: int, shape) -> list:
    """Run the ONNX file on a seeded random float32 input of ``(batch, *shape)``."""
    import numpy as np

    session = answer_session(load_answer_onnx(path))
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal((batch, *shape)).astype(np.float32)
    try:
        return session.run(None, {name: x})
    except Exception:  # onnxruntime's own exception types: a size fixed inside the graph
        raise CheckFailed(f"a batch of {batch} inputs of shape {tuple(shape)} does not run: "
                          "a size is still fixed somewhere inside the model") from None


def has_dynamo_metadata(model) -> bool:
    """Does the model carry the node metadata only the dynamo exporter writes?"""
    return any(p.key.startswith("pkg.torch.onnx") for n in model.graph.node
               for p in n.metadata_props)


# --- 02.1: dynamo export of resnet18 with a dynamic batch --------------------------------

@register("02.1")
def _resnet_dynamic_batch(answer):
    model = load_answer_onnx(answer)
    _require_dynamic_batch(model)
    require_dim_names(model, "input", {0: "batch"})
    require_dynamo(model)
    if read_dims(model.graph.input[0])[1:] != [3, 224, 224]:
        raise CheckFailed(f"the input's shape is {read_dims(model.graph.input[0])}; export with an "
                          "example of shape (2, 3, 224, 224)")
    if any(t.data_location == 1 for t in model.graph.initializer):
        raise CheckFailed("the weights are in a separate .onnx.data file; export one "
                          "self-contained file (see the exporter's external_data argument)")


# --- 02.2: TorchScript export with dynamic_axes -------------------------------------------

@register("02.2")
def _torchscript_names_and_axes(answer):
    model = load_answer_onnx(answer)
    inputs, outputs = [v.name for v in model.graph.input], [v.name for v in model.graph.output]
    if inputs[:1] != ["x"] or outputs[:1] != ["logits"]:
        raise CheckFailed(f"the input and output are named {inputs} and {outputs}; "
                          "name them 'x' and 'logits'")
    _require_dynamic_batch(model, "input")
    _require_dynamic_batch(model, "output")
    require_dim_names(model, "input", {0: "batch"})
    require_dim_names(model, "output", {0: "batch"})
    if has_dynamo_metadata(model):
        raise CheckFailed("this file was written by the dynamo exporter; the task asks for the "
                          "TorchScript exporter (look at the exporter's dynamo argument)")


# --- 02.3: the trained digits CNN ----------------------------------------------------------

@lru_cache(maxsize=1)
def load_digits_test():
    """The held-out digits as numpy: ``(x_test (450, 1, 8, 8), y_test (450,))``."""
    from course_utils.digits import load_digits_split

    _, x_test, _, y_test = load_digits_split()
    return x_test.numpy(), y_test.numpy()


def measure_digits_accuracy(path, x, y) -> float:
    """The share of the digits ``x`` that the ONNX file at ``path`` labels as ``y``."""
    import numpy as np

    session = answer_session(load_answer_onnx(path))
    try:
        logits = session.run(None, {session.get_inputs()[0].name: x})[0]
    except Exception:  # onnxruntime's own exception types: a batch size fixed inside the graph
        raise CheckFailed(f"the model does not run on a batch of {len(x)} digits: a batch size "
                          "is still fixed somewhere inside it") from None
    if logits.shape != (len(x), 10):
        raise CheckFailed(f"{len(x)} digits gave an output of shape {logits.shape}, "
                          f"expected ({len(x)}, 10)")
    return float((np.argmax(logits, axis=1) == y).mean())


@register("02.3")
def _digits_exported_and_trained(answer):
    model = load_answer_onnx(answer)
    _require_dynamic_batch(model)
    if read_dims(model.graph.input[0])[1:] != [1, 8, 8]:
        raise CheckFailed(f"the input's shape is {read_dims(model.graph.input[0])}; the digits "
                          "are (batch, 1, 8, 8)")
    require_dim_names(model, "input", {0: "batch"})
    require_dynamo(model)
    x, y = load_digits_test()
    acc = measure_digits_accuracy(answer, x, y)
    if acc < 0.9:
        raise CheckFailed(f"the exported model gets {acc:.0%} of the held-out digits right; "
                          "export the trained model (after training, in eval mode)")


# --- 02.4: a tolerance comparison that can fail --------------------------------------------

def call_answer(fn, expected, actual, rtol, atol):
    """Call the student's comparison function; a clear failure unless it returns a bool."""
    import numpy as np

    result = fn(expected, actual, rtol=rtol, atol=atol)
    if not isinstance(result, (bool, np.bool_)):
        raise CheckFailed(f"outputs_match returned a {type(result).__name__}; return True or False")
    return bool(result)


@register("02.4")
def _match_basics(answer):
    import numpy as np

    if not callable(answer):
        raise CheckFailed("pass the function itself: check('02.4', outputs_match)")
    a = np.array([[1.0, -2.0, 3.0]], dtype=np.float32)
    if not call_answer(answer, a, a.copy(), 1e-3, 1e-3):
        raise CheckFailed("identical arrays must match")
    if call_answer(answer, a, a + 0.5, 1e-3, 1e-3):
        raise CheckFailed("arrays that differ by 0.5 everywhere must not match at atol=1e-3")
    if not call_answer(answer, a, a + 5e-4, 0.0, 1e-3):
        raise CheckFailed("a difference of 5e-4 is within atol=1e-3")
    if call_answer(answer, a, a - 0.5, 1e-3, 1e-3):
        raise CheckFailed("an actual 0.5 below the expected values must not match: the rule "
                          "bounds the size of the difference, whatever its sign")
    big = np.array([1000.0, -2000.0])
    if not call_answer(answer, big, big + 0.5, 1e-3, 0.0):
        raise CheckFailed("a difference of 0.5 on values of 1000 and more is within rtol=1e-3: "
                          "rtol scales with |expected|")
    try:
        broadcast = call_answer(answer, a[:, :1], np.repeat(a[:, :1], 3, axis=1), 1e-3, 1e-3)
    except CheckFailed:
        raise
    except Exception:  # raising on a shape mismatch counts as "no match"
        broadcast = False
    if broadcast:
        raise CheckFailed("arrays of shapes (1, 1) and (1, 3) must not match: compare the shapes "
                          "first, numpy would broadcast them")


# --- 02.5: the reference evaluator, every intermediate result -------------------------------

#: The digits CNN's layers as the checks recompute them: what each tensor is, and its shape for 64 digits.
_DIGITS_STAGES = (("the first convolution's output", (64, 16, 8, 8)), ("the first ReLU's output", (64, 16, 8, 8)),
                  ("the second convolution's output", (64, 32, 8, 8)), ("the second ReLU's output", (64, 32, 8, 8)),
                  ("the max pooling's output", (64, 32, 4, 4)), ("the flattened features", (64, 512)),
                  ("the logits", (64, 10)))
#: The digits CNN's weights by shape, in the order the layers use them.
_DIGITS_WEIGHTS = ((16, 1, 3, 3), (16,), (32, 16, 3, 3), (32,), (10, 512), (10,))


def recompute_digits_stages(x, weights) -> list:
    """Every layer's output of the digits CNN on ``x``, in float64 numpy, from the given weights."""
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view

    def conv3x3(t, w, b):  # (n, in, h, w) -> (n, out, h, w), padding 1: one matrix product
        n, c, h, width = t.shape
        windows = sliding_window_view(np.pad(t, ((0, 0), (0, 0), (1, 1), (1, 1))), (3, 3), axis=(2, 3))
        rows = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * width, c * 9)  # (n*h*w, in*3*3)
        out = rows @ w.reshape(len(w), -1).T + b  # (n*h*w, out)
        return out.reshape(n, h, width, len(w)).transpose(0, 3, 1, 2)

    def max_pool2(t):  # 2 x 2 windows, stride 2
        n, c, h, w = t.shape
        return t.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))

    w0, b0, w1, b1, wh, bh = (w.astype(np.float64) for w in weights)
    out, stages = x.astype(np.float64), []
    for step in (lambda t: conv3x3(t, w0, b0), lambda t: np.maximum(t, 0.0), lambda t: conv3x3(t, w1, b1),
                 lambda t: np.maximum(t, 0.0), max_pool2, lambda t: t.reshape(len(t), -1),
                 lambda t: t @ wh.T + bh):
        out = step(out)
        stages.append(out)
    return stages


def _close(actual, expected) -> bool:
    import numpy as np

    # The reference evaluator's float32 layers against this float64 recomputation: at most
    # 4.2e-7 of each layer's largest value (measured on the course's CNN); 1e-4 of it leaves
    # room for any CPU's order of sums. No tolerance tells the runtimes apart: ONNX Runtime's
    # logits are as close (3.2e-7), which is why the answer is the evaluator's intermediate
    # results, which only it returns, and not its logits.
    scale = float(np.abs(expected).max()) or 1.0
    return actual.shape == expected.shape and bool(np.all(np.abs(actual - expected) <= 1e-4 * scale))


@register("02.5")
def _reference_results(answer):
    import numpy as np

    if isinstance(answer, np.ndarray):
        raise CheckFailed(f"this is one array of shape {answer.shape}; the task asks for the dict of "
                          "every tensor the evaluator computed (input, weights, each node's output), "
                          "keyed by name: the evaluator's run() can return them (see its arguments)")
    if not isinstance(answer, dict):
        raise CheckFailed(f"expected a dict (tensor name -> array), got {type(answer).__name__}")
    arrays = [v for v in answer.values() if isinstance(v, np.ndarray) and v.dtype.kind == "f"]
    x = load_digits_test()[0][:64]
    if not any(a.shape == x.shape and np.array_equal(a, x) for a in arrays):
        raise CheckFailed("none of the tensors is the first 64 held-out digits; run the evaluator "
                          "on x_test[:64] and keep every tensor it returns, the input included")
    weights = []
    for shape in _DIGITS_WEIGHTS:
        found = [a for a in arrays if a.shape == shape]
        if not found:
            raise CheckFailed(f"no tensor of shape {shape} (a weight of the digits CNN) in the dict; "
                              "the evaluator's results include every initializer of the graph")
        weights.append(found[0])
    stages = recompute_digits_stages(x, weights)
    for (what, shape), expected in zip(_DIGITS_STAGES, stages):
        if not any(_close(a, expected) for a in arrays if a.shape == shape):
            raise CheckFailed(f"no tensor of the dict is {what} (shape {shape}) computed from the "
                              "dict's own input and weights; keep every node's output the evaluator computed")
    acc = float((stages[-1].argmax(axis=1) == load_digits_test()[1][:64]).mean())  # the dict's logits, within 1e-4
    if acc < 0.85:
        raise CheckFailed(f"only {acc:.0%} of the first 64 held-out digits are right; run the "
                          "trained model's file on x_test[:64]")


# --- 02.6: facts about any model, read from the ModelProto ------------------------------------

_FACT_KEYS = {"input_name", "batch_dim", "opset", "ir_version", "parameters", "op_counts"}


def _probe_model(name, opsets, ir_version, input_name, batch, sample_shape, ops, weights):
    """A small ModelProto with the given facts (a chain of ``ops``; it is read, never run)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    initializers = [numpy_helper.from_array(np.zeros(shape, dtype), f"w{i}")
                    for i, (shape, dtype) in enumerate(weights)]
    nodes, last = [], input_name
    for i, op in enumerate(ops):
        nodes.append(helper.make_node(op, [last], [f"t{i}"], name=f"{op.lower()}_{i}"))
        last = f"t{i}"
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch, *sample_shape])],
        [helper.make_tensor_value_info(last, TensorProto.FLOAT, None)], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    model.ir_version = ir_version
    return model


def model_fact_probes() -> list:
    """The models a ``read_model_facts`` answer is tried on: facts unlike the digits model's,
    another domain listed before the default one, int64 initializers beside the weights."""
    import numpy as np

    return [
        _probe_model("probe_pixels", [("", 17)], 8, "pixels", "n", (3, 32, 32),
                     ["Conv", "Relu", "Conv", "Relu", "GlobalAveragePool", "Flatten", "Gemm"],
                     [((8, 3, 3, 3), np.float32), ((8,), np.float32), ((8, 8, 3, 3), np.float32),
                      ((5, 8), np.float32), ((5,), np.float32)]),
        _probe_model("probe_tokens", [("com.microsoft", 1), ("", 21)], 9, "tokens", "batch_size", (16,),
                     ["MatMul", "Add", "Relu", "MatMul", "Add", "Reshape", "Softmax"],
                     [((16, 24), np.float32), ((24,), np.float32), ((24, 3), np.float32),
                      ((3,), np.float32), ((2,), np.int64), ((4,), np.int64)]),
    ]


def true_model_facts(model) -> dict:
    """The facts of a model as the checks read them (the answer's keys)."""
    import collections

    import numpy as np
    from onnx import TensorProto

    first = model.graph.input[0]
    return {"input_name": first.name, "batch_dim": first.type.tensor_type.shape.dim[0].dim_param,
            "opset": [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")][0],
            "ir_version": model.ir_version,
            "parameters": sum(int(np.prod(t.dims)) for t in model.graph.initializer
                              if t.data_type == TensorProto.FLOAT),
            "op_counts": dict(collections.Counter(n.op_type for n in model.graph.node))}


def probe_model_reader(fn):
    """Extractor (run in the student's process): ``fn`` called on each of :func:`model_fact_probes`.

    Returns ``{"probed": [{"facts": ...} or {"raised": "TypeName"}, ...]}``; anything that is not
    a function is left as it is, so the check can name what it got.
    """
    if not callable(fn) or isinstance(fn, type):
        return fn
    results = []
    for model in model_fact_probes():
        try:
            results.append({"facts": fn(model)})
        except Exception as error:  # whatever the student's function raises, report its type
            results.append({"raised": type(error).__name__})
    return {"probed": results}


register_answer("02.6", "read_model_facts", extract=probe_model_reader)


def probed_facts(answer) -> list:
    """Each probe model's true facts beside what the answer's function returned for it."""
    if not (isinstance(answer, dict) and set(answer) == {"probed"} and isinstance(answer["probed"], list)
            and len(answer["probed"]) == len(model_fact_probes())):
        raise CheckFailed("expected the function read_model_facts itself (check('02.6', read_model_facts)), "
                          f"got {type(answer).__name__}")
    pairs = []
    for model, result in zip(model_fact_probes(), answer["probed"]):
        where = f"on a model the check made (input {model.graph.input[0].name!r})"
        if not isinstance(result, dict):
            raise CheckFailed("the function's result could not be read")
        if "raised" in result:
            raise CheckFailed(f"read_model_facts raised {result['raised']} {where}; it must work for any "
                              "ONNX model, not only the digits CNN")
        facts = result.get("facts")
        if not isinstance(facts, dict) or set(facts) != _FACT_KEYS:
            got = sorted(facts) if isinstance(facts, dict) else type(facts).__name__
            raise CheckFailed(f"{where} read_model_facts returned {got}; expected a dict with keys "
                              f"{sorted(_FACT_KEYS)}")
        pairs.append((where, model, facts, true_model_facts(model)))
    return pairs


@register("02.6")
def _model_facts(answer):
    import numpy as np
    from onnx import TensorProto

    for where, model, facts, truth in probed_facts(answer):
        if facts["parameters"] != truth["parameters"]:
            int64 = sum(int(np.prod(t.dims))
                        for t in model.graph.initializer if t.data_type == TensorProto.INT64)
            hint = ("count only the float32 initializers: the int64 ones (shapes, indices) are no weights"
                    if facts["parameters"] == truth["parameters"] + int64 else
                    "count the elements of every float32 initializer (the product of its dims), "
                    "not the initializers themselves" if facts["parameters"] == len(model.graph.initializer)
                    else "count the elements of every float32 initializer (the product of its dims)")
            raise CheckFailed(f"{where} 'parameters' is {facts['parameters']!r}, not the model's; {hint}")
        if facts["opset"] != truth["opset"]:
            first = model.opset_import[0]
            hint = ("the first entry of opset_import belongs to another domain; take the version of "
                    "the default domain ('' or 'ai.onnx')" if facts["opset"] == first.version and first.domain
                    else "read it from the model's opset_import, the entry of the default domain")
            raise CheckFailed(f"{where} 'opset' is {facts['opset']!r}, not the model's; {hint}")
        if facts["ir_version"] != truth["ir_version"]:
            raise CheckFailed(f"{where} 'ir_version' is {facts['ir_version']!r}, not the model's; "
                              "read it from the ModelProto (the file format's version), never type it in")
        if facts["batch_dim"] != truth["batch_dim"]:
            raise CheckFailed(f"{where} 'batch_dim' is {facts['batch_dim']!r}; it is the name stored in "
                              "dim_param of the first input's first dimension")
        counts = facts["op_counts"]
        if not isinstance(counts, dict) or not all(
                isinstance(n, int) and not isinstance(n, bool) for n in counts.values()):
            raise CheckFailed(f"{where} op_counts is not a dict from op type to the number of nodes "
                              "of that type (an int)")


# --- 02.7: knowledge questions ----------------------------------------------------------------

_QUESTIONS = ("exported_method", "dynamic_axes", "opset")
# The letters are checked by the grader only (hidden checks): a check that named the wrong
# answer, or shipped the letters even as digests, would let three tries find them.


@register("02.7")
def _answers_format(answer):
    if not isinstance(answer, dict) or set(answer) != set(_QUESTIONS):
        raise CheckFailed(f"expected a dict with keys {list(_QUESTIONS)}")
    for key, value in answer.items():
        if not isinstance(value, str) or value.strip().lower() not in ("a", "b", "c", "d"):
            raise CheckFailed(f"answer one letter a-d for {key!r}, got {value!r}")


# --- 02.8: one file for every image size (dynamic batch, height and width) ---------------

@register("02.8")
def _any_image_size(answer):
    model = load_answer_onnx(answer)
    _require_dynamic_batch(model)
    dims = read_dims(model.graph.input[0])
    if len(dims) != 4 or dims[1] != 3:
        raise CheckFailed(f"the input's shape is {dims}; export resnet with an example of shape "
                          "(2, 3, 224, 224)")
    require_dim_names(model, "input", {0: "batch", 2: "height", 3: "width"})
    fixed = {axis: dims[axis] for axis, what in ((2, "height"), (3, "width"))
             if not isinstance(dims[axis], str)}
    if fixed:
        names = " and ".join(f"dimension {axis} ({'height' if axis == 2 else 'width'}) is fixed "
                             f"to {size}" for axis, size in fixed.items())
        raise CheckFailed(f"{names}: the example's image size was recorded as a constant; "
                          "name every dimension that may vary, not only the batch")
    if any(t.data_location == 1 for t in model.graph.initializer):
        raise CheckFailed("the weights are in a separate .onnx.data file; export one "
                          "self-contained file (see the exporter's external_data argument)")
