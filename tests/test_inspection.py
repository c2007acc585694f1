"""Tests for course_utils/inspection.py: reading .onnx files and summarizing them."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import ROOT
from course_utils.cli import main
from course_utils.inspection import summarize_model
from course_utils.onnx_files import load_onnx_file

FILES = ROOT / "tests" / "files"


def tiny_model(op: str = "Relu") -> onnx.ModelProto:
    """x (batch, 1, 8, 8) -> Conv(4 filters) -> op -> y: a valid model of a few hundred bytes."""
    weight = numpy_helper.from_array(np.ones((4, 1, 3, 3), np.float32), "conv.weight")
    shape = numpy_helper.from_array(np.array([0, -1], np.int64), "flat_shape")  # not a weight
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "conv.weight"], ["h"], pads=[1, 1, 1, 1]),
         helper.make_node(op, ["h"], ["a"]),
         helper.make_node("Relu", ["a"], ["b"]),
         helper.make_node("Reshape", ["b", "flat_shape"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 256])],
        [weight, shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)],
                              producer_name="course-tests")
    model.ir_version = 10
    return model


@pytest.mark.parametrize("name, problem, next_step", [
    ("empty.onnx", "is empty (0 bytes)", "; export the model again"),
    ("truncated.onnx", "truncated", "; export or copy it again"),
    ("garbage.onnx", "is not an ONNX model",
     "; export the model again (python -m course_utils export torchvision:resnet18 model.onnx)"),
    ("checkpoint_renamed.onnx", "zip archive", ". Load the checkpoint in PyTorch and export it with "
     "torch.onnx.export"),
    ("lfs_pointer.onnx", "git lfs pull", "; run `git lfs pull` to fetch the real file"),
])
def test_unusable_file_is_rejected_with_its_name_and_problem(name, problem, next_step):
    """Is each kind of broken file rejected with the file's name, the problem and a next step?"""
    with pytest.raises(ValueError) as error:
        load_onnx_file(FILES / name)
    message = str(error.value)
    assert message.startswith(name) and problem in message
    assert message.endswith(next_step)  # the next step for this kind of file, not any step


def test_every_prefix_of_a_model_is_rejected(tmp_path):
    """Is a model cut at any byte refused, never half-read as a smaller model?"""
    data = tiny_model().SerializeToString()
    path = tmp_path / "cut.onnx"
    for size in range(1, len(data)):
        path.write_bytes(data[:size])
        with pytest.raises(ValueError, match="truncated|empty"):
            load_onnx_file(path)
    path.write_bytes(data)
    assert load_onnx_file(path).graph.name == "tiny"


def test_missing_file_names_the_folder_contents_and_the_next_step(tmp_path):
    """Is a missing file reported with the .onnx files that do exist and how to make one?"""
    onnx.save(tiny_model(), tmp_path / "resnet18.onnx")
    with pytest.raises(FileNotFoundError) as error:
        load_onnx_file(tmp_path / "resnet81.onnx")
    assert "resnet18.onnx" in str(error.value) and "course_utils export" in str(error.value)
    with pytest.raises(IsADirectoryError, match="folder"):
        load_onnx_file(tmp_path)


def test_missing_external_weights_are_named():
    """Does a model whose weights file is missing say which file to copy beside it?"""
    with pytest.raises(FileNotFoundError, match="missing_external_data.onnx.data"):
        load_onnx_file(FILES / "missing_external_data.onnx")
    # Reading the graph alone still works: inspection does not need the weights.
    assert load_onnx_file(FILES / "missing_external_data.onnx", load_weights=False).graph.node


def test_summary_lists_format_io_ops_and_parameters(tmp_path):
    """Does the summary give I/O with dtypes and named dims, opset, IR, op counts and weights?"""
    path = tmp_path / "tiny.onnx"
    onnx.save(tiny_model(), path)
    summary = summarize_model(path)
    assert (summary.name, summary.ir_version, summary.opset) == ("tiny.onnx", 10, 18)
    assert [str(t) for t in summary.inputs] == ["x: float32[batch, 1, 8, 8]"]
    assert [str(t) for t in summary.outputs] == ["y: float32[batch, 256]"]
    assert summary.dynamic_dims == ["batch"]
    assert summary.op_counts == {"Relu": 2, "Conv": 1, "Reshape": 1} and summary.node_count == 4
    assert summary.parameter_count == 36  # the int64 shape constant is not a weight
    assert summary.checker == "ok" and summary.inferred_values == 3

    assert summary.file_size == path.stat().st_size
    text = str(summary)
    assert "opset ai.onnx 18" in text and "parameters  36" in text and "Relu 2" in text
    assert summarize_model(tiny_model()).file_size is None  # in memory


def test_weights_listed_in_value_info_are_not_counted_as_intermediates(tmp_path):
    """Does the intermediate-tensor count leave out weights an exporter also typed in value_info?"""
    model = tiny_model()
    weight = model.graph.initializer[0]
    model.graph.value_info.append(onnx.helper.make_tensor_value_info(
        weight.name, weight.data_type, list(weight.dims)))
    assert summarize_model(model).inferred_values == 3


def test_summary_counts_external_weights_in_the_size(tmp_path):
    """Does the file size include a weights file stored beside the model?"""
    path = tmp_path / "split.onnx"
    onnx.save_model(tiny_model(), path, save_as_external_data=True, location="split.onnx.data",
                    size_threshold=0)
    summary = summarize_model(path)
    expected = path.stat().st_size + (tmp_path / "split.onnx.data").stat().st_size
    assert summary.file_size == expected and summary.checker == "ok"


def test_summary_of_an_invalid_model_reports_the_checker_message():
    """Does a model the checker rejects still get a summary, with the checker's message?"""
    summary = summarize_model(tiny_model(op="NoSuchOp"))
    assert summary.checker.startswith("failed:") and "NoSuchOp" in summary.checker
    assert summary.op_counts["NoSuchOp"] == 1


def test_summary_counts_nodes_inside_subgraphs():
    """Are nodes inside an If's branches counted in the histogram?"""
    branch = lambda name: helper.make_graph(  # noqa: E731
        [helper.make_node("Neg", ["x"], [f"{name}_out"])], name, [],
        [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [2])])
    graph = helper.make_graph(
        [helper.make_node("If", ["cond"], ["y"], then_branch=branch("then"),
                          else_branch=branch("else"))],
        "with_if",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    summary = summarize_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    assert summary.op_counts == {"Neg": 2, "If": 1} and summary.node_count == 3


def test_inspect_cli_prints_the_summary(tmp_path, capsys):
    """Does `inspect` print the summary and exit 0 for a valid model?"""
    path = tmp_path / "tiny.onnx"
    onnx.save(tiny_model(), path)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "input       x: float32[batch, 1, 8, 8]" in out and "checker     ok" in out


@pytest.mark.parametrize("name", ["empty.onnx", "truncated.onnx", "garbage.onnx", "nope.onnx"])
def test_inspect_cli_gives_one_line_for_a_bad_file(name, capsys):
    """Does `inspect` answer a bad or missing file with one error line, no traceback?"""
    assert main(["inspect", str(FILES / name)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and name in lines[0]
    assert "Traceback" not in captured.err + captured.out
