"""Hidden checks for notebook 02 (export and verification) and their test data: grader only, never released."""
from __future__ import annotations

from ...checks import CheckFailed, register
from ...exercise_checks.export import (call_answer, load_answer_onnx, load_digits_test, measure_digits_accuracy,
                                      probed_facts, run_answer_onnx, true_model_facts)
from ..cases import (Cases, Right, Wrong, built, context_item, digits_cnn, edited_onnx, resnet18_model,
                     resnet18_onnx)


@register("02.1", hidden=True)
def _resnet_named_batch_runs(answer):
    model = load_answer_onnx(answer)
    if sum(n.op_type == "Conv" for n in model.graph.node) != 20:
        raise CheckFailed("this is not resnet18 (it has 20 convolutions)")
    (out,) = run_answer_onnx(answer, 3, (3, 224, 224))
    if out.shape != (3, 1000):
        raise CheckFailed(f"batch 3 gave an output of shape {out.shape}, expected (3, 1000)")


@register("02.2", hidden=True)
def _torchscript_exporter_used(answer):
    (out,) = run_answer_onnx(answer, 3, (3, 224, 224))
    if out.shape != (3, 1000):
        raise CheckFailed(f"batch 3 gave an output of shape {out.shape}, expected (3, 1000)")


@register("02.3", hidden=True)
def _digits_any_batch(answer):
    x, y = load_digits_test()
    for batch in (1, 7):
        measure_digits_accuracy(answer, x[:batch], y[:batch])  # fails on a wrong output shape


@register("02.4", hidden=True)
def _match_edge_cases(answer):
    import numpy as np

    e = np.array([0.001, 1000.0, 5.0, -3.0])
    cases = [
        ("rtol is relative to |expected|, not to |actual|", np.array([1.0, 2.0]), np.array([1.9, 2.0]),
         0.5, 0.0, False),
        ("rtol does not cover small values", e, e + [0.0005, 0, 0, 0], 1e-3, 0.0, False),
        ("NaN never matches", e, np.array([0.001, np.nan, 5.0, -3.0]), 1e-3, 1e-3, False),
        ("one bad element is enough", np.zeros(1000), np.r_[np.zeros(999), 1.0], 1e-3, 1e-3, False),
    ]
    for what, expected, actual, rtol, atol, want in cases:
        try:
            got = call_answer(answer, expected, np.asarray(actual), rtol, atol)
        except CheckFailed:
            raise
        except Exception:  # raising on a shape mismatch or NaN counts as "no match"
            got = None if want else False
        if got is not want:
            raise CheckFailed(f"wrong answer for: {what}")


#: The names the digits CNN's input and weights have in its graph (forward's argument, the
#: PyTorch parameters' names): the keys of the reference evaluator's results include them.
_DIGITS_TENSOR_NAMES = {"x", "features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias",
                        "head.weight", "head.bias"}


@register("02.5", hidden=True)
def _reference_results_named(answer):
    import numpy as np

    if not _DIGITS_TENSOR_NAMES <= set(answer):
        raise CheckFailed("the dict's keys are not the graph's tensor names (its input and weights are "
                          "not found under their names)")
    if any(isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.dtype != np.float32 for v in answer.values()):
        raise CheckFailed("the tensors should be float32, as the model computes them")


@register("02.6", hidden=True)
def _model_facts_exact(answer):
    for _where, _model, facts, truth in probed_facts(answer):
        if facts["input_name"] != truth["input_name"]:
            raise CheckFailed("input_name is not the graph input's name")
        if facts["op_counts"] != truth["op_counts"]:
            raise CheckFailed("op_counts is not this graph's histogram of node op types")


_RIGHT_LETTERS = {"exported_method": "b", "dynamic_axes": "d", "opset": "a"}


@register("02.7", hidden=True)
def _answers_right(answer):
    # The course's own keys, not the answer's: the grader hands checks its strings wrapped so
    # that they print as short excerpts. The feedback never says which answer is wrong.
    if any(str.__str__(answer[key]).strip().lower() != letter for key, letter in _RIGHT_LETTERS.items()):
        raise CheckFailed("not every answer is right; reread steps 1 to 3 (the feedback does not say "
                          "which answer is wrong, so that tries cannot find the letters)")


@register("02.8", hidden=True)
def _any_image_size_runs(answer):
    for shape in ((3, 96, 160), (3, 320, 256)):  # not square, not 224
        (logits,) = run_answer_onnx(answer, 1, shape)
        if logits.shape != (1, 1000):
            raise CheckFailed(f"an image of size {shape[1:]} gave logits of shape {logits.shape}, "
                              "not (1, 1000)")


# --- test data (grading/cases.py): right and wrong answers, the alternative ----------------------
# Made as the notebook makes them (resnet18 and the trained digits CNN); most wrong files are those
# files edited to have exactly one thing wrong (a renamed dimension, a stripped exporter stamp, a
# 10-class head), so each fails one check and nothing else.

def _dynamo(model, example, path, dims):
    import torch

    torch.onnx.export(model, (example,), str(path), dynamo=True, dynamic_shapes={"x": dims},
                      external_data=False, verbose=False)
    return path


def _torchscript(model, example, path, axes):
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's notice
        torch.onnx.export(model, (example,), str(path), dynamo=False, input_names=["x"],
                          output_names=["logits"], dynamic_axes=axes)
    return path


def _rename_dim(where, axis, name):
    def edit(model):
        values = model.graph.input if where == "input" else model.graph.output
        values[0].type.tensor_type.shape.dim[axis].dim_param = name
    return edit


def _strip_exporter_stamp(model):
    for node in model.graph.node:
        del node.metadata_props[:]


def _rename_value(old, new):
    def edit(model):
        for node in model.graph.node:
            node.input[:] = [new if name == old else name for name in node.input]
            node.output[:] = [new if name == old else name for name in node.output]
        for value in [*model.graph.input, *model.graph.output]:
            if value.name == old:
                value.name = new
    return edit


def _rename_first_output(new):
    def edit(model):
        _rename_value(model.graph.output[0].name, new)(model)
    return edit


def _keep_10_classes(model):
    """The first output sliced to its first 10 columns: a 10-class head on the same body."""
    import numpy as np
    from onnx import helper, numpy_helper

    output = model.graph.output[0]
    name = output.name
    _rename_value(name, "all_classes")(model)
    output.name = name
    output.type.tensor_type.shape.dim[1].ClearField("dim_param")
    output.type.tensor_type.shape.dim[1].dim_value = 10
    model.graph.initializer.extend(numpy_helper.from_array(np.array([v], np.int64), n)
                                   for n, v in (("head_start", 0), ("head_end", 10), ("head_axis", 1)))
    model.graph.node.append(helper.make_node("Slice", ["all_classes", "head_start", "head_end", "head_axis"],
                                             [name]))


def _fix_reshape_batch(batch):
    """The Reshape before the classifier told to produce ``batch`` rows: only that batch runs."""
    def edit(model):
        import numpy as np
        from onnx import numpy_helper

        (reshape,) = [n for n in model.graph.node if n.op_type == "Reshape"]
        (target,) = [t for t in model.graph.initializer if t.name == reshape.input[1]]
        target.CopyFrom(numpy_helper.from_array(np.array([batch, -1], np.int64), target.name))
    return edit


def _small_image_models():
    """(TinyImageNet, FlattenedFeatures): (batch, 3, 224, 224) -> (batch, 1000) as resnet18, smaller."""
    import torch

    class TinyImageNet(torch.nn.Module):
        """As resnet18 does, with 1 Conv."""

        def __init__(self):
            super().__init__()
            self.conv, self.fc = torch.nn.Conv2d(3, 8, 7, stride=8), torch.nn.Linear(8, 1000)

        def forward(self, x):
            return self.fc(torch.nn.functional.adaptive_avg_pool2d(self.conv(x), 1).flatten(1))

    class FlattenedFeatures(torch.nn.Module):
        """A classifier that flattens its feature map instead of pooling it: 224 px images only."""

        def __init__(self):
            super().__init__()
            self.conv, self.fc = torch.nn.Conv2d(3, 8, 32, stride=32), torch.nn.Linear(8 * 7 * 7, 1000)

        def forward(self, x):  # (batch, 3, 224, 224) -> (batch, 8, 7, 7) -> (batch, 1000)
            return self.fc(self.conv(x).flatten(1))

    return TinyImageNet, FlattenedFeatures


@context_item
def export_files(c) -> dict:
    """Every file answer of notebook 02, right and wrong, by name (all in the work folder)."""
    import torch

    from ...digits import load_digits_split

    folder = c.subfolder("export")
    resnet, example = resnet18_model(c)
    batch = {0: torch.export.Dim("batch")}
    both = {"x": {0: "batch"}, "logits": {0: "batch"}}
    any_size = {"x": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}}
    tiny, flattened = _small_image_models()
    f = {"resnet_dynamo": resnet18_onnx(c),
         "resnet_torchscript": _torchscript(resnet, example, folder / "resnet18_ts.onnx", both),
         "resnet_fixed": _torchscript(resnet, example, folder / "resnet18_fixed.onnx", None),
         "any_size": _torchscript(resnet, example, folder / "any_size.onnx", any_size),
         "any_size_no_pooling": _torchscript(flattened().eval(), example, folder / "no_pooling.onnx", any_size),
         "tiny_dynamo": _dynamo(tiny().eval(), example, folder / "tiny.onnx", batch)}
    cnn = digits_cnn(c)
    x_train, x_test, _, _ = load_digits_split()
    f["digits"] = _dynamo(cnn, x_train[:2], folder / "digits_cnn.onnx", batch)
    f["digits_torchscript"] = _torchscript(cnn, x_train[:2], folder / "digits_ts.onnx", both)
    f["digits_untrained"] = _dynamo(type(cnn)().eval(), x_train[:2], folder / "untrained.onnx", batch)
    edits = {"digits_batch_450": ("digits", _fix_reshape_batch(len(x_test))),
             "resnet_batch_named_n": ("resnet_dynamo", _rename_dim("input", 0, "N"), _rename_dim("output", 0, "N")),
             "resnet_torchscript_stamped_away": ("resnet_dynamo", _strip_exporter_stamp),
             "resnet_10_classes": ("resnet_dynamo", _keep_10_classes),
             "resnet_dynamo_named": ("resnet_dynamo", _rename_first_output("logits")),
             "ts_output_batch_named_n": ("resnet_torchscript", _rename_dim("output", 0, "N")),
             "ts_10_classes": ("resnet_torchscript", _keep_10_classes),
             "any_size_square": ("any_size", _rename_dim("input", 2, "side"), _rename_dim("input", 3, "side")),
             "any_size_10_classes": ("any_size", _keep_10_classes)}
    for name, (source, *changes) in edits.items():
        f[name] = edited_onnx(f[source], folder / f"{name}.onnx", *changes)
    return f


def _file(name):
    return built(lambda c: export_files(c)[name])


def outputs_match(expected, actual, rtol, atol):
    """02.4's right answer: numpy's allclose rule against |expected|, no broadcasting, no NaN."""
    import numpy as np

    expected, actual = np.asarray(expected), np.asarray(actual)
    return expected.shape == actual.shape and bool(
        np.all(np.abs(actual - expected) <= atol + rtol * np.abs(expected)))


def _shape_checked(rule):
    def compare(expected, actual, rtol, atol):
        import numpy as np

        expected, actual = np.asarray(expected), np.asarray(actual)
        return expected.shape == actual.shape and bool(rule(np, expected, actual, rtol, atol))
    return compare


def _broadcasting_allclose(expected, actual, rtol, atol):
    import numpy as np

    return np.allclose(actual, expected, rtol=rtol, atol=atol)


def _returns_an_array(expected, actual, rtol, atol):
    import numpy as np

    return np.abs(np.asarray(actual) - np.asarray(expected)) <= atol + rtol * np.abs(expected)


def _digits_x(c, start=0):
    from ...digits import load_digits_split

    return load_digits_split()[1][start:start + 64].numpy()


@context_item
def reference_runs(c) -> dict:
    """The reference evaluator's intermediate results of each run the cases use, by (file, first digit)."""
    from onnx.reference import ReferenceEvaluator

    return {(file, start): ReferenceEvaluator(str(export_files(c)[file])).run(
                None, {"x": _digits_x(c, start)}, intermediate=True)
            for file, start in (("digits", 0), ("digits", 64), ("digits_untrained", 0))}


def reference_results(c, dtype="float32", file="digits", start=0) -> dict:
    """02.5's right answer: onnx's reference evaluator on 64 held-out digits, every intermediate result."""
    return {name: (value.astype(dtype) if getattr(value, "dtype", None) == "float32" else value)
            for name, value in reference_runs(c)[file, start].items()}


def _other_runtime_logits(c, runtime):
    """The logits of the first 64 held-out digits from ONNX Runtime or PyTorch: not the reference evaluator's."""
    import onnxruntime as ort
    import torch

    if runtime == "onnxruntime":
        session = ort.InferenceSession(str(export_files(c)["digits"]), providers=["CPUExecutionProvider"])
        return session.run(None, {"x": _digits_x(c)})[0]
    with torch.inference_mode():
        return digits_cnn(c)(torch.from_numpy(_digits_x(c))).numpy()


def _without(results: dict, names) -> dict:
    return {k: v for k, v in results.items() if k not in names}


def _read_model_facts(model):
    """02.6's right answer written otherwise: loops, the opset found by its domain."""
    import numpy as np
    from onnx import TensorProto

    counts, weights = {}, 0
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    for tensor in model.graph.initializer:
        if tensor.data_type == TensorProto.FLOAT:
            weights += int(np.prod(tensor.dims))
    opsets = {o.domain: o.version for o in model.opset_import}
    first = model.graph.input[0]
    return dict(input_name=first.name, batch_dim=first.type.tensor_type.shape.dim[0].dim_param,
                opset=opsets.get("", opsets.get("ai.onnx")), ir_version=int(model.ir_version),
                parameters=weights, op_counts=counts)


def _facts_but(**changes):
    """A ``read_model_facts`` that reads the model but returns ``changes`` (a fact typed in, or a
    function of the model for a fact read the wrong way)."""
    def read(model):
        facts = true_model_facts(model)
        return {**facts, **{k: (v(model) if callable(v) else v) for k, v in changes.items()}}
    return read


def _every_initializer_element(model) -> int:
    import numpy as np

    return sum(int(np.prod(t.dims)) for t in model.graph.initializer)


def _digits_facts(c):
    import onnx

    return true_model_facts(onnx.load(str(export_files(c)["digits"])))


_DYNAMIC, _NAMES = "export:_resnet_dynamic_batch", "export:_torchscript_names_and_axes"
_BASICS, _EDGES, _RESULTS = "export:_match_basics", "export:_match_edge_cases", "export:_reference_results"
_FACTS, _EXACT = "export:_model_facts", "export:_model_facts_exact"
_ANY = "export:_any_image_size"
CASES = [
    Cases("02.1",
          right=[Right("dynamo-named-batch", _file("resnet_dynamo"))],
          wrong=[Wrong("not-resnet18", _file("tiny_dynamo"), "export:_resnet_named_batch_runs", "this is not resnet18"),
                 Wrong("10-class-head", _file("resnet_10_classes"), "export:_resnet_named_batch_runs",
                       "batch 3 gave an output of shape (3, 10), expected (3, 1000)"),
                 Wrong("batch-fixed-by-the-example", _file("resnet_fixed"), _DYNAMIC,
                       "the batch dimension of the first input is fixed to 2", ["dynamic_shapes", "Dim("]),
                 Wrong("file-never-written", built(lambda c: c.folder / "nothing.onnx"), _DYNAMIC,
                       "there is no file at", ["dynamic_shapes"]),
                 Wrong("batch-named-N", _file("resnet_batch_named_n"), _DYNAMIC,
                       "dimension 0 of the first input is named 'N'; the task names it 'batch'", ["Dim("]),
                 Wrong("torchscript-exporter", _file("resnet_torchscript"), _DYNAMIC,
                       "the TorchScript exporter wrote it (dynamo=False)", ["dynamo=True"]),
                 Wrong("no-dynamo-stamp", _file("resnet_torchscript_stamped_away"), _DYNAMIC,
                       "this file was not written by the dynamo exporter", ["dynamo=True"])]),
    Cases("02.2",
          alternative='''torchscript_path = "artifacts/resnet18_torchscript.onnx"
axes = {name: {0: "batch"} for name in ("x", "logits")}
torch.onnx.export(resnet, (example,), torchscript_path, dynamo=False, input_names=["x"],
                  output_names=["logits"], dynamic_axes=axes)''',
          right=[Right("torchscript-named-axes", _file("resnet_torchscript"))],
          wrong=[Wrong("10-class-head", _file("ts_10_classes"), "export:_torchscript_exporter_used",
                       "batch 3 gave an output of shape (3, 10), expected (3, 1000)"),
                 Wrong("default-names", _file("resnet_dynamo"), _NAMES, "name them 'x' and 'logits'",
                       ["input_names", "output_names"]),
                 Wrong("batch-fixed", _file("resnet_fixed"), _NAMES,
                       "the batch dimension of the first input is fixed to 2", ["dynamic_axes"]),
                 Wrong("dynamo-exporter", _file("resnet_dynamo_named"), _NAMES,
                       "this file was written by the dynamo exporter; the task asks for the TorchScript exporter",
                       ["dynamo=False"]),
                 Wrong("output-batch-named-N", _file("ts_output_batch_named_n"), _NAMES,
                       "dimension 0 of the first output is named 'N'", ["dynamic_axes="])]),
    Cases("02.3",
          alternative='''digits_path = str(ARTIFACTS / "digits_cnn.onnx")
n = torch.export.Dim("batch")
torch.onnx.export(cnn, (x_train[:8],), digits_path, dynamic_shapes=({0: n},), external_data=False,
                  verbose=False)''',
          right=[Right("dynamo-trained", _file("digits"))],
          wrong=[Wrong("batch-fixed-inside", _file("digits_batch_450"), "export:_digits_any_batch",
                       "the model does not run on a batch of 1 digits"),
                 Wrong("untrained", _file("digits_untrained"), "export:_digits_exported_and_trained",
                       "export the trained model", ["dynamo", "x_train"]),
                 Wrong("torchscript-exporter", _file("digits_torchscript"), "export:_digits_exported_and_trained",
                       "this file was not written by the dynamo exporter", ["dynamo=True"])]),
    Cases("02.4",
          alternative='''def outputs_match(expected, actual, rtol, atol):
    e, a = np.asarray(expected), np.asarray(actual)
    return e.shape == a.shape and bool(np.isclose(a, e, rtol=rtol, atol=atol).all())''',
          right=[Right("abs-and-all", outputs_match)],
          wrong=[Wrong("rtol-floor-of-one", _shape_checked(
                     lambda np, e, a, rtol, atol: np.all(np.abs(a - e) <= atol + rtol * np.maximum(np.abs(e), 1.0))),
                       _EDGES, "wrong answer for: rtol does not cover small values"),
                 Wrong("nan-passes", _shape_checked(
                     lambda np, e, a, rtol, atol: not np.any(np.abs(a - e) > atol + rtol * np.abs(e))),
                       _EDGES, "wrong answer for: NaN never matches"),
                 Wrong("tolerates-outliers", _shape_checked(
                     lambda np, e, a, rtol, atol: np.mean(~(np.abs(a - e) <= atol + rtol * np.abs(e))) <= 1e-3),
                       _EDGES, "wrong answer for: one bad element is enough"),
                 Wrong("rtol-of-actual", _shape_checked(
                     lambda np, e, a, rtol, atol: np.all(np.abs(a - e) <= atol + rtol * np.abs(a))),
                       _EDGES, "wrong answer for: rtol is relative to |expected|, not to |actual|"),
                 Wrong("always-true", lambda expected, actual, rtol, atol: True, _BASICS,
                       "arrays that differ by 0.5 everywhere must not match", ["np.abs", "allclose"]),
                 Wrong("returns-an-array", _returns_an_array, _BASICS,
                       "outputs_match returned a ndarray; return True or False", ["np.all"]),
                 Wrong("signed-difference", _shape_checked(
                     lambda np, e, a, rtol, atol: np.all(a - e <= atol + rtol * np.abs(e))),
                       _BASICS, "whatever its sign", ["np.abs"]),
                 Wrong("ignores-rtol", _shape_checked(lambda np, e, a, rtol, atol: np.all(np.abs(a - e) <= atol)),
                       _BASICS, "rtol scales with |expected|", ["np.abs"]),
                 Wrong("np-allclose-broadcasts", _broadcasting_allclose, _BASICS, "compare the shapes first",
                       [".shape =="])]),
    Cases("02.5",
          alternative='''ref = ReferenceEvaluator(onnx.load(digits_path))
reference_results = ref.run(None, {ref.input_names[0]: x_test[:64].numpy()}, intermediate=True)''',
          right=[Right("every-intermediate-result", built(reference_results))],
          wrong=[Wrong("onnxruntime-logits", built(lambda c: _other_runtime_logits(c, "onnxruntime")), _RESULTS,
                       "this is one array of shape (64, 10); the task asks for the dict of every tensor",
                       ["intermediate=True"]),
                 Wrong("pytorch-logits", built(lambda c: _other_runtime_logits(c, "pytorch")), _RESULTS,
                       "this is one array of shape (64, 10)", ["intermediate=True"]),
                 Wrong("only-the-output", built(lambda c: {"linear": reference_results(c)["linear"]}), _RESULTS,
                       "none of the tensors is the first 64 held-out digits", ["intermediate=True"]),
                 Wrong("other-digits", built(lambda c: reference_results(c, start=64)), _RESULTS,
                       "none of the tensors is the first 64 held-out digits"),
                 Wrong("no-weights", built(lambda c: _without(reference_results(c), [
                     "features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias",
                     "head.weight", "head.bias"])), _RESULTS, "no tensor of shape (16, 1, 3, 3)"),
                 Wrong("onnxruntime-logits-in-another-order", built(lambda c: {
                     **reference_results(c), "linear": _other_runtime_logits(c, "onnxruntime")[::-1].copy()}),
                       _RESULTS, "no tensor of the dict is the logits"),
                 Wrong("untrained-model", built(lambda c: reference_results(c, file="digits_untrained")), _RESULTS,
                       "of the first 64 held-out digits are right; run the trained model's file"),
                 Wrong("a-list", built(lambda c: list(reference_results(c).values())), _RESULTS,
                       "expected a dict (tensor name -> array), got list"),
                 Wrong("float64", built(lambda c: reference_results(c, "float64")), "export:_reference_results_named",
                       "the tensors should be float32"),
                 Wrong("keys-renamed", built(lambda c: {
                     f"t{i}": v for i, v in enumerate(reference_results(c).values())}),
                       "export:_reference_results_named", "the dict's keys are not the graph's tensor names")]),
    Cases("02.6",
          alternative='''def read_model_facts(model):
    graph = model.graph
    counts = {}
    for node in graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    weights = 0
    for tensor in graph.initializer:
        if tensor.data_type == onnx.TensorProto.FLOAT:
            weights += int(np.prod(tensor.dims))
    return dict(input_name=graph.input[0].name,
                batch_dim=graph.input[0].type.tensor_type.shape.dim[0].dim_param,
                opset=[o.version for o in model.opset_import if o.domain in ("", "ai.onnx")][0],
                ir_version=int(model.ir_version), parameters=weights, op_counts=counts)''',
          right=[Right("loops-and-a-domain-map", _read_model_facts), Right("counter", true_model_facts)],
          wrong=[Wrong("digits-facts-typed-in", built(lambda c: (lambda model, f=_digits_facts(c): dict(f))), _FACTS,
                       "'parameters' is 9930, not the model's; count the elements"),
                 Wrong("versions-typed-in", _facts_but(opset=18, ir_version=8), _FACTS,
                       "'opset' is 18, not the model's; read it from the model's opset_import"),
                 Wrong("ir-version-typed-in", _facts_but(ir_version=10), _FACTS,
                       "'ir_version' is 10, not the model's; read it from the ModelProto"),
                 Wrong("first-opset-entry", _facts_but(opset=lambda m: m.opset_import[0].version), _FACTS,
                       "the first entry of opset_import belongs to another domain"),
                 Wrong("opset-and-ir-swapped", _facts_but(opset=lambda m: m.ir_version,
                                                          ir_version=lambda m: true_model_facts(m)["opset"]),
                       _FACTS, "'opset' is 8, not the model's"),
                 Wrong("int64-shape-counted", _facts_but(parameters=_every_initializer_element), _FACTS,
                       "the int64 ones (shapes, indices) are no weights", ["TensorProto.FLOAT"]),
                 Wrong("initializers-counted", _facts_but(parameters=lambda m: len(m.graph.initializer)), _FACTS,
                       "not the initializers themselves", ["np.prod"]),
                 Wrong("batch-typed-in", _facts_but(batch_dim="batch"), _FACTS,
                       "'batch_dim' is 'batch'; it is the name stored in dim_param"),
                 Wrong("a-list-of-op-types", _facts_but(op_counts=lambda m: [n.op_type for n in m.graph.node]),
                       _FACTS, "op_counts is not a dict from op type to the number of nodes"),
                 Wrong("the-facts-not-the-function", built(_digits_facts), _FACTS,
                       "expected the function read_model_facts itself"),
                 Wrong("digits-only", lambda model: model.facts, _FACTS, "read_model_facts raised AttributeError"),
                 Wrong("input-name-typed-in", _facts_but(input_name="x"), _EXACT,
                       "input_name is not the graph input's name"),
                 Wrong("each-op-type-once", _facts_but(op_counts=lambda m: {n.op_type: 1 for n in m.graph.node}),
                       _EXACT, "op_counts is not this graph's histogram")]),
    Cases("02.7",
          alternative='''answers["exported_method"] = "B"
answers["dynamic_axes"] = "d "
answers["opset"] = "a"''',
          right=[Right("the-three-letters", {"exported_method": "b", "dynamic_axes": "d", "opset": "a"})],
          wrong=[Wrong("a-word-not-a-letter", {"exported_method": "forward", "dynamic_axes": "d", "opset": "a"},
                       "export:_answers_format", "answer one letter a-d for 'exported_method'", ["'b'"]),
                 Wrong("template-left-as-is", {"exported_method": None, "dynamic_axes": None, "opset": None},
                       "export:_answers_format", "answer one letter a-d for 'exported_method', got None"),
                 Wrong("one-wrong-letter", {"exported_method": "b", "dynamic_axes": "d", "opset": "c"},
                       "export:_answers_right", "not every answer is right; reread steps 1 to 3"),
                 Wrong("two-wrong-letters", {"exported_method": "d", "dynamic_axes": "a", "opset": "a"},
                       "export:_answers_right", "not every answer is right; reread steps 1 to 3")]),
    Cases("02.8",
          alternative='''any_size_path = Path("artifacts/resnet18_any_size.onnx")
sizes = (torch.export.Dim("batch"), torch.export.Dim("height"), torch.export.Dim("width"))
torch.onnx.export(resnet, (example,), any_size_path,
                  dynamic_shapes=({0: sizes[0], 2: sizes[1], 3: sizes[2]},), external_data=False,
                  verbose=False)''',
          right=[Right("three-named-dimensions", _file("any_size"))],
          wrong=[Wrong("10-class-head", _file("any_size_10_classes"), "export:_any_image_size_runs",
                       "an image of size (96, 160) gave logits of shape (1, 10), not (1, 1000)"),
                 Wrong("classifier-for-224-px-only", _file("any_size_no_pooling"), "export:_any_image_size_runs",
                       "a batch of 1 inputs of shape (3, 96, 160) does not run"),
                 Wrong("only-the-batch-varies", _file("resnet_dynamo"), _ANY,
                       "dimension 2 (height) is fixed to 224 and dimension 3 (width) is fixed to 224",
                       ["Dim(", "dynamic_shapes"]),
                 Wrong("nothing-varies", _file("resnet_fixed"), _ANY,
                       "the batch dimension of the first input is fixed to 2", ["Dim("]),
                 Wrong("square-only", _file("any_size_square"), _ANY,
                       "dimension 2 of the first input is named 'side'; the task names it 'height'", ["Dim("])]),
]
