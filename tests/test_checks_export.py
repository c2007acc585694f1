"""Tests for the checks of notebook 02: course_utils/exercise_checks/export.py and
course_utils/grading/hidden_checks/export.py.

Every answer goes through what the grader does with it (``check_support.grade``): files
are copied out of the work folder, 02.4's function is called across the data boundary.
The right answers are made as the notebook makes them (resnet18 and the trained digits
CNN, exported once per module); most wrong answers are those files edited to have exactly
one thing wrong (a renamed dimension, a stripped exporter stamp, a 10-class head), so each
fails one hidden check and nothing else.
"""
import collections
import warnings

import numpy as np
import onnx
import pytest
import torch
import torchvision
from onnx import helper, numpy_helper

from check_support import assert_fails_hidden, assert_fails_public, assert_right, grade, registered_checks


def _dynamo(model, example, path, dims):
    torch.onnx.export(model, (example,), str(path), dynamo=True, dynamic_shapes={"x": dims},
                      external_data=False, verbose=False)
    return path


def _torchscript(model, example, path, axes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's notice
        torch.onnx.export(model, (example,), str(path), dynamo=False, input_names=["x"],
                          output_names=["logits"], dynamic_axes=axes)
    return path


def _edited(source, path, *edits):
    """A copy of the ONNX file ``source`` with ``edits`` (functions of the ModelProto) applied."""
    model = onnx.load(str(source))
    for edit in edits:
        edit(model)
    onnx.save(model, str(path))
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


def _keep_10_classes(model):
    """The first output sliced to its first 10 columns: a 10-class head on the same body."""
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
        (reshape,) = [n for n in model.graph.node if n.op_type == "Reshape"]
        (target,) = [t for t in model.graph.initializer if t.name == reshape.input[1]]
        target.CopyFrom(numpy_helper.from_array(np.array([batch, -1], np.int64), target.name))
    return edit


class TinyImageNet(torch.nn.Module):
    """Takes (batch, 3, 224, 224) and gives (batch, 1000), as resnet18 does, with 1 Conv."""

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


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Every file answer of notebook 02, right and wrong, made once (all in one work folder)."""
    from course_utils.digits import load_digits_split, train_digits_cnn

    folder = tmp_path_factory.mktemp("notebook02")
    torch.manual_seed(0)
    resnet, example = torchvision.models.resnet18().eval(), torch.randn(2, 3, 224, 224)
    batch = {0: torch.export.Dim("batch")}
    both = {"x": {0: "batch"}, "logits": {0: "batch"}}
    f = {"resnet_dynamo": _dynamo(resnet, example, folder / "resnet18.onnx", batch),
         "resnet_torchscript": _torchscript(resnet, example, folder / "resnet18_ts.onnx", both),
         "resnet_fixed": _torchscript(resnet, example, folder / "resnet18_fixed.onnx", None),
         "any_size": _torchscript(resnet, example, folder / "any_size.onnx",
                                  {"x": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}})}
    f["any_size_no_pooling"] = _torchscript(FlattenedFeatures().eval(), example, folder / "no_pooling.onnx",
                                            {"x": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}})
    f["tiny_dynamo"] = _dynamo(TinyImageNet().eval(), example, folder / "tiny.onnx", batch)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny CNN trains fastest on one thread
    try:
        cnn = train_digits_cnn()
    finally:
        torch.set_num_threads(threads)
    x_train, x_test, _, _ = load_digits_split()
    f["digits"] = _dynamo(cnn, x_train[:2], folder / "digits_cnn.onnx", batch)
    f["digits_torchscript"] = _torchscript(cnn, x_train[:2], folder / "digits_ts.onnx", both)
    f["digits_untrained"] = _dynamo(type(cnn)().eval(), x_train[:2], folder / "untrained.onnx", batch)
    f["digits_batch_450"] = _edited(f["digits"], folder / "digits_450.onnx", _fix_reshape_batch(len(x_test)))

    edit = lambda name, source, *edits: f.setdefault(name, _edited(f[source], folder / f"{name}.onnx", *edits))  # noqa: E731
    edit("resnet_batch_named_n", "resnet_dynamo", _rename_dim("input", 0, "N"), _rename_dim("output", 0, "N"))
    edit("resnet_torchscript_stamped_away", "resnet_dynamo", _strip_exporter_stamp)
    edit("resnet_10_classes", "resnet_dynamo", _keep_10_classes)
    edit("resnet_dynamo_named", "resnet_dynamo", _rename_value(onnx.load(str(f["resnet_dynamo"])).graph.output[0].name,
                                                              "logits"))
    edit("ts_output_batch_named_n", "resnet_torchscript", _rename_dim("output", 0, "N"))
    edit("ts_10_classes", "resnet_torchscript", _keep_10_classes)
    edit("any_size_square", "any_size", _rename_dim("input", 2, "side"), _rename_dim("input", 3, "side"))
    edit("any_size_10_classes", "any_size", _keep_10_classes)
    return folder, f, cnn


@pytest.fixture
def graded(tmp_path, files):
    folder = files[0]
    return lambda exercise, answer: grade(exercise, answer, folder, tmp_path / "grader")


def outputs_match(expected, actual, rtol, atol):
    """02.4's right answer: numpy's allclose rule against |expected|, no broadcasting, no NaN."""
    expected, actual = np.asarray(expected), np.asarray(actual)
    return expected.shape == actual.shape and bool(
        np.all(np.abs(actual - expected) <= atol + rtol * np.abs(expected)))


def reference_logits(files, dtype=np.float32):
    """02.5's right answer: onnx's reference evaluator on the first 64 held-out digits."""
    from onnx.reference import ReferenceEvaluator

    from course_utils.digits import load_digits_split

    x_test = load_digits_split()[1]
    return ReferenceEvaluator(str(files[1]["digits"])).run(None, {"x": x_test[:64].numpy()})[0].astype(dtype)


def model_facts(files):
    """02.6's right answer, read from the exported digits model here, not from the check."""
    model = onnx.load(str(files[1]["digits"]))
    first = model.graph.input[0]
    return {"input_name": first.name, "batch_dim": first.type.tensor_type.shape.dim[0].dim_param,
            "opset": next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
            "ir_version": model.ir_version,
            "parameters": sum(int(np.prod(t.dims)) for t in model.graph.initializer
                              if t.data_type == onnx.TensorProto.FLOAT),
            "op_counts": dict(collections.Counter(n.op_type for n in model.graph.node))}


RIGHT = {
    "02.1": lambda files: files[1]["resnet_dynamo"],
    "02.2": lambda files: files[1]["resnet_torchscript"],
    "02.3": lambda files: files[1]["digits"],
    "02.4": lambda files: outputs_match,
    "02.5": reference_logits,
    "02.6": model_facts,
    "02.7": lambda files: {"exported_method": "b", "dynamic_axes": "d", "opset": "a"},
    "02.8": lambda files: files[1]["any_size"],
}


@pytest.mark.parametrize("exercise", sorted(RIGHT))
def test_right_answer_passes(graded, files, exercise):
    """Does the notebook's answer, made as the notebook makes it, pass every check?"""
    assert_right(graded(exercise, RIGHT[exercise](files)))


def test_model_facts_are_those_the_checks_expect(files):
    """Does the digits model exported here have the facts the checks hard-code (9930 float
    parameters, 2 Conv, 2 Relu, 1 Gemm, 1 MaxPool, a 'batch' dimension, input 'x')?"""
    facts = model_facts(files)
    assert facts["parameters"] == 9930 and facts["batch_dim"] == "batch" and facts["input_name"] == "x"
    assert {op: facts["op_counts"].get(op) for op in ("Conv", "Relu", "Gemm", "MaxPool")} == {
        "Conv": 2, "Relu": 2, "Gemm": 1, "MaxPool": 1}


# --- one wrong answer (at least) per hidden check ------------------------------------------

def _file(name):
    return lambda files: files[1][name]


def _comparison(rule):
    return lambda files: rule


def _shape_checked(rule):
    def compare(expected, actual, rtol, atol):
        expected, actual = np.asarray(expected), np.asarray(actual)
        return expected.shape == actual.shape and bool(rule(expected, actual, rtol, atol))
    return compare


signed_difference = _shape_checked(lambda e, a, rtol, atol: np.all(a - e <= atol + rtol * np.abs(e)))
absolute_only = _shape_checked(lambda e, a, rtol, atol: np.all(np.abs(a - e) <= atol))
relative_to_at_least_one = _shape_checked(
    lambda e, a, rtol, atol: np.all(np.abs(a - e) <= atol + rtol * np.maximum(np.abs(e), 1.0)))
ignores_nan = _shape_checked(lambda e, a, rtol, atol: not np.any(np.abs(a - e) > atol + rtol * np.abs(e)))
allows_a_few_outliers = _shape_checked(
    lambda e, a, rtol, atol: np.mean(~(np.abs(a - e) <= atol + rtol * np.abs(e))) <= 1e-3)


relative_to_actual = _shape_checked(
    lambda e, a, rtol, atol: np.all(np.abs(a - e) <= atol + rtol * np.abs(a)))


def broadcasting_allclose(expected, actual, rtol, atol):
    return np.allclose(actual, expected, rtol=rtol, atol=atol)


WRONG_FOR_HIDDEN = [
    pytest.param("02.1", _file("tiny_dynamo"), "export:_resnet_named_batch_runs",
                 "this is not resnet18", id="02.1-not-resnet18"),
    pytest.param("02.1", _file("resnet_10_classes"), "export:_resnet_named_batch_runs",
                 "batch 3 gave an output of shape (3, 10), expected (3, 1000)", id="02.1-10-class-head"),
    pytest.param("02.2", _file("ts_10_classes"), "export:_torchscript_exporter_used",
                 "batch 3 gave an output of shape (3, 10), expected (3, 1000)", id="02.2-10-class-head"),
    pytest.param("02.3", _file("digits_batch_450"), "export:_digits_any_batch",
                 "the model does not run on a batch of 1 digits", id="02.3-batch-fixed-inside"),
    pytest.param("02.4", _comparison(relative_to_at_least_one), "export:_match_edge_cases",
                 "wrong answer for: rtol does not cover small values", id="02.4-rtol-floor-of-one"),
    pytest.param("02.4", _comparison(ignores_nan), "export:_match_edge_cases",
                 "wrong answer for: NaN never matches", id="02.4-nan-passes"),
    pytest.param("02.4", _comparison(allows_a_few_outliers), "export:_match_edge_cases",
                 "wrong answer for: one bad element is enough", id="02.4-tolerates-outliers"),
    pytest.param("02.4", _comparison(relative_to_actual), "export:_match_edge_cases",
                 "wrong answer for: rtol is relative to |expected|, not to |actual|", id="02.4-rtol-of-actual"),
    pytest.param("02.5", lambda files: reference_logits(files, np.float64), "export:_reference_dtype",
                 "the logits should be finite float32", id="02.5-float64"),
    pytest.param("02.6", lambda files: {**model_facts(files), "opset": "20", "ir_version": "10"},
                 "export:_model_facts_versions", "opset and ir_version should be ints", id="02.6-versions-as-text"),
    pytest.param("02.6", lambda files: {**model_facts(files), "opset": model_facts(files)["ir_version"],
                                        "ir_version": model_facts(files)["opset"]},
                 "export:_model_facts_versions", "opset or ir_version is out of range (swapped?)",
                 id="02.6-opset-and-ir-swapped"),
    pytest.param("02.6", lambda files: {**model_facts(files), "input_name": "input"},
                 "export:_model_facts_versions", "input_name is not the graph input's name",
                 id="02.6-made-up-input-name"),
    pytest.param("02.6", lambda files: {**model_facts(files), "op_counts": {"Conv": 2, "Relu": 2}},
                 "export:_model_facts_versions", "op_counts is not this graph's histogram",
                 id="02.6-only-conv-and-relu"),
    pytest.param("02.6", lambda files: {**model_facts(files), "op_counts": {op: 1 for op in model_facts(files)["op_counts"]}},
                 "export:_model_facts_versions", "op_counts is not this graph's histogram",
                 id="02.6-each-op-type-once"),
    pytest.param("02.8", _file("any_size_10_classes"), "export:_any_image_size_runs",
                 "an image of size (96, 160) gave logits of shape (1, 10), not (1, 1000)", id="02.8-10-class-head"),
    pytest.param("02.8", _file("any_size_no_pooling"), "export:_any_image_size_runs",
                 "a batch of 1 inputs of shape (3, 96, 160) does not run", id="02.8-classifier-for-224-px-only"),
]


@pytest.mark.parametrize("exercise, make, check, feedback", WRONG_FOR_HIDDEN)
def test_wrong_answer_fails_its_hidden_check(graded, files, exercise, make, check, feedback):
    """Does an answer that passes the public checks fail this hidden check, with its feedback?"""
    assert_fails_hidden(graded(exercise, make(files)), check, feedback)


# --- one wrong answer (at least) per public check ------------------------------------------

def always_true(expected, actual, rtol, atol):
    return True


def returns_an_array(expected, actual, rtol, atol):
    return np.abs(np.asarray(actual) - np.asarray(expected)) <= atol + rtol * np.abs(expected)


WRONG_FOR_PUBLIC = [
    pytest.param("02.1", _file("resnet_fixed"), "export:_resnet_dynamic_batch",
                 "the batch dimension of the first input is fixed to 2", ["dynamic_shapes", "Dim("],
                 id="02.1-batch-fixed-by-the-example"),
    pytest.param("02.1", lambda files: files[0] / "nothing.onnx", "export:_resnet_dynamic_batch",
                 "there is no file at", ["dynamic_shapes"], id="02.1-file-never-written"),
    pytest.param("02.2", _file("resnet_dynamo"), "export:_torchscript_names_and_axes",
                 "name them 'x' and 'logits'", ["input_names", "output_names"], id="02.2-default-names"),
    pytest.param("02.2", _file("resnet_fixed"), "export:_torchscript_names_and_axes",
                 "the batch dimension of the first input is fixed to 2", ["dynamic_axes"], id="02.2-batch-fixed"),
    pytest.param("02.3", _file("digits_untrained"), "export:_digits_exported_and_trained",
                 "export the trained model", ["dynamo", "x_train"], id="02.3-untrained"),
    pytest.param("02.4", _comparison(always_true), "export:_match_basics",
                 "arrays that differ by 0.5 everywhere must not match", ["np.abs", "allclose"],
                 id="02.4-always-true"),
    pytest.param("02.4", _comparison(returns_an_array), "export:_match_basics",
                 "outputs_match returned a ndarray; return True or False", ["np.all"], id="02.4-returns-an-array"),
    pytest.param("02.5", lambda files: reference_logits(files)[:32], "export:_reference_logits",
                 "expected shape (64, 10) for the first 64 held-out digits, got (32, 10)", ["ReferenceEvaluator"],
                 id="02.5-32-digits"),
    pytest.param("02.5", lambda files: reference_logits(files)[::-1].copy(), "export:_reference_logits",
                 "of the first 64 held-out digits are right; run the trained model on x_test[:64]",
                 ["argmax"], id="02.5-rows-in-another-order"),
    pytest.param("02.5", lambda files: [reference_logits(files)], "export:_reference_logits",
                 "the evaluator's run() returns a list of outputs", [], id="02.5-the-list-of-outputs"),
    pytest.param("02.6", lambda files: {**model_facts(files), "parameters": 9932}, "export:_model_facts",
                 "an int64 initializer, a Reshape's target shape, which is no weight", ["9930"], id="02.6-int64-shape-counted"),
    pytest.param("02.6", lambda files: {**model_facts(files), "parameters": 7}, "export:_model_facts",
                 "not the initializers themselves", ["9930"], id="02.6-initializers-counted"),
    pytest.param("02.6", lambda files: {**model_facts(files), "op_counts": {"Conv2d": 2, "ReLU": 2, "MaxPool2d": 1,
                                                                            "Linear": 1}},
                 "export:_op_counts_of_onnx_nodes", "is not an ONNX operator (a PyTorch module's name?)", ["Gemm"],
                 id="02.6-pytorch-module-names"),
    pytest.param("02.6", lambda files: {**model_facts(files), "op_counts": [n.op_type for n in
                                                                            onnx.load(str(files[1]["digits"])).graph.node]},
                 "export:_op_counts_of_onnx_nodes", "op_counts should be a dict from op type", [],
                 id="02.6-a-list-of-op-types"),
    pytest.param("02.6", lambda files: {**model_facts(files), "op_counts": {"Conv": 2.0, "Relu": 2}},
                 "export:_op_counts_of_onnx_nodes", "give the number of nodes (an int)", [],
                 id="02.6-float-count"),
    pytest.param("02.7", lambda files: {"exported_method": "forward", "dynamic_axes": "d", "opset": "a"},
                 "export:_answers_format", "answer one letter a-d for 'exported_method'", ["'b'"],
                 id="02.7-a-word-not-a-letter"),
    pytest.param("02.7", lambda files: {"exported_method": None, "dynamic_axes": None, "opset": None},
                 "export:_answers_format", "answer one letter a-d for 'exported_method', got None", [],
                 id="02.7-template-left-as-is"),
    pytest.param("02.7", lambda files: {"exported_method": "b", "dynamic_axes": "d", "opset": "c"},
                 "export:_answers_right", "not right: 'opset' (reread step 3", ["'a'"], id="02.7-one-wrong-letter"),
    pytest.param("02.7", lambda files: {"exported_method": "d", "dynamic_axes": "a", "opset": "a"},
                 "export:_answers_right", "not right: 'exported_method' (reread step 1's introduction); "
                 "'dynamic_axes'", ["'b'"], id="02.7-two-wrong-letters"),
    pytest.param("02.8", _file("resnet_dynamo"), "export:_any_image_size",
                 "dimension 2 (height) is fixed to 224 and dimension 3 (width) is fixed to 224",
                 ["Dim(", "dynamic_shapes"], id="02.8-only-the-batch-varies"),
    pytest.param("02.8", _file("resnet_fixed"), "export:_any_image_size",
                 "the batch dimension of the first input is fixed to 2", ["Dim("], id="02.8-nothing-varies"),
    pytest.param("02.1", _file("resnet_batch_named_n"), "export:_resnet_dynamic_batch",
                 "dimension 0 of the first input is named 'N'; the task names it 'batch'", ["Dim("],
                 id="02.1-batch-named-N"),
    pytest.param("02.1", _file("resnet_torchscript"), "export:_resnet_dynamic_batch",
                 "the TorchScript exporter wrote it (dynamo=False)", ["dynamo=True"], id="02.1-torchscript-exporter"),
    pytest.param("02.1", _file("resnet_torchscript_stamped_away"), "export:_resnet_dynamic_batch",
                 "this file was not written by the dynamo exporter", ["dynamo=True"], id="02.1-no-dynamo-stamp"),
    pytest.param("02.2", _file("resnet_dynamo_named"), "export:_torchscript_names_and_axes",
                 "this file was written by the dynamo exporter; the task asks for the TorchScript exporter",
                 ["dynamo=False"], id="02.2-dynamo-exporter"),
    pytest.param("02.2", _file("ts_output_batch_named_n"), "export:_torchscript_names_and_axes",
                 "dimension 0 of the first output is named 'N'", ["dynamic_axes="], id="02.2-output-batch-named-N"),
    pytest.param("02.3", _file("digits_torchscript"), "export:_digits_exported_and_trained",
                 "this file was not written by the dynamo exporter", ["dynamo=True"], id="02.3-torchscript-exporter"),
    pytest.param("02.4", _comparison(signed_difference), "export:_match_basics",
                 "whatever its sign", ["np.abs"], id="02.4-signed-difference"),
    pytest.param("02.4", _comparison(absolute_only), "export:_match_basics",
                 "rtol scales with |expected|", ["np.abs"], id="02.4-ignores-rtol"),
    pytest.param("02.4", _comparison(broadcasting_allclose), "export:_match_basics",
                 "compare the shapes first", [".shape =="], id="02.4-np-allclose-broadcasts"),
    pytest.param("02.8", _file("any_size_square"), "export:_any_image_size",
                 "dimension 2 of the first input is named 'side'; the task names it 'height'", ["Dim("],
                 id="02.8-square-only"),
]


@pytest.mark.parametrize("exercise, make, check, feedback, answer_words", WRONG_FOR_PUBLIC)
def test_wrong_answer_fails_a_public_check_with_a_hint(graded, files, exercise, make, check, feedback,
                                                      answer_words):
    """Does the student's own check() refuse this answer with a hint that gives nothing away?"""
    assert_fails_public(graded(exercise, make(files)), check, feedback, answer_words)


def test_every_check_of_this_notebook_has_a_wrong_answer_here():
    """Is every hidden and every public check of notebook 02 tried with a wrong answer above?"""
    assert registered_checks("export", hidden=True) == {p.values[2] for p in WRONG_FOR_HIDDEN}
    assert registered_checks("export", hidden=False) == {p.values[2] for p in WRONG_FOR_PUBLIC}
