"""Checks for notebook 02 (export and verification), exercises 02.1 to 02.8.

Public checks catch the mistakes a student can fix from the hint; hidden ones
(grader only) catch answers that only look right: a batch fixed by the example,
a dynamic input with a fixed output, the wrong exporter, a comparison that always
passes, probabilities instead of logits, op counts that are not this graph's.
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
register_answer("02.5", "reference_logits")
register_answer("02.6", "model_facts")
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


# --- 02.5: the reference evaluator ---------------------------------------------------------

@register("02.5")
def _reference_logits(answer):
    import numpy as np

    if not isinstance(answer, np.ndarray):
        raise CheckFailed(f"expected a numpy array of logits, got {type(answer).__name__}; "
                          "the evaluator's run() returns a list of outputs")
    if answer.shape != (64, 10):
        raise CheckFailed(f"expected shape (64, 10) for the first 64 held-out digits, got "
                          f"{answer.shape}")
    _, y = load_digits_test()
    acc = float((answer.argmax(axis=1) == y[:64]).mean())
    if acc < 0.85:
        raise CheckFailed(f"only {acc:.0%} of the first 64 held-out digits are right; run the "
                          "trained model on x_test[:64]")


# --- 02.6: facts about the digits model -----------------------------------------------------

_FACT_KEYS = {"input_name", "batch_dim", "opset", "ir_version", "parameters", "op_counts"}


@lru_cache(maxsize=1)
def count_digits_weights() -> int:
    """How many weights the course's DigitsCNN has: what its ONNX file holds as float32."""
    from course_utils.digits import DigitsCNN

    return sum(p.numel() for p in DigitsCNN().parameters())


@register("02.6")
def _model_facts(answer):
    if not isinstance(answer, dict) or set(answer) != _FACT_KEYS:
        got = sorted(answer) if isinstance(answer, dict) else type(answer).__name__
        raise CheckFailed(f"expected a dict with keys {sorted(_FACT_KEYS)}, got {got}")
    # The weights are the model's own parameters (no BatchNorm to fold): counted from its
    # definition here, not stated.
    if answer["parameters"] != count_digits_weights():
        hint = ("count only the float32 initializers: the file also holds an int64 initializer, "
                "a Reshape's target shape, which is no weight"
                if answer["parameters"] == count_digits_weights() + 2 else
                "count the elements of every float32 initializer (the product of its dims), "
                "not the initializers themselves")
        raise CheckFailed(f"{answer['parameters']!r} parameters is not right; {hint}")
    if answer["batch_dim"] != "batch":
        raise CheckFailed(f"batch_dim is {answer['batch_dim']!r}; it is the name stored in "
                          "dim_param of the input's first dimension")


@register("02.6")
def _op_counts_of_onnx_nodes(answer):
    import onnx

    counts = answer["op_counts"]
    if not isinstance(counts, dict) or not counts:
        raise CheckFailed("op_counts should be a dict from op type to the number of nodes of that type")
    for op, n in counts.items():
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise CheckFailed(f"op_counts[{op!r}] is {n!r}; give the number of nodes (an int)")
        if not onnx.defs.has(str(op)):
            raise CheckFailed(f"{op!r} is not an ONNX operator (a PyTorch module's name?); count "
                              "the op_type of the graph's nodes")


# --- 02.7: knowledge questions ----------------------------------------------------------------

_QUESTIONS = {"exported_method": "step 1's introduction", "dynamic_axes": "steps 1 and 2",
              "opset": "step 3, after the two files are compared"}
# A self-test: the public check says which answer is wrong. The letters are kept as digests of
# "02.7:question:letter", out of sight in this shipped file but not out of reach (four tries
# per question), which is why the exercise is worth 1 point.
_RIGHT_DIGESTS = {"exported_method": "f75602fa85bee52d", "dynamic_axes": "1e0f3e1f75ff8903",
                  "opset": "be7125764904e80d"}


def _digest(question: str, letter: str) -> str:
    import hashlib

    return hashlib.sha256(f"02.7:{question}:{letter}".encode()).hexdigest()[:16]


@register("02.7")
def _answers_format(answer):
    if not isinstance(answer, dict) or set(answer) != set(_QUESTIONS):
        raise CheckFailed(f"expected a dict with keys {list(_QUESTIONS)}")
    for key, value in answer.items():
        if not isinstance(value, str) or value.strip().lower() not in ("a", "b", "c", "d"):
            raise CheckFailed(f"answer one letter a-d for {key!r}, got {value!r}")


@register("02.7")
def _answers_right(answer):
    # The course's own keys, not the answer's: the grader hands checks its strings wrapped so
    # that they print as short excerpts, and a digest must be of the plain text.
    wrong = [key for key in _QUESTIONS
             if _digest(key, str.__str__(answer[key]).strip().lower()) != _RIGHT_DIGESTS[key]]
    if wrong:
        raise CheckFailed("not right: " + "; ".join(f"{key!r} (reread {_QUESTIONS[key]})" for key in wrong))


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
