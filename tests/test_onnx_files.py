"""Tests for course_utils/onnx_files.py: the one loader, the one op histogram, the size on disk."""
import onnx
import pytest
from onnx import TensorProto, helper

from course_utils.errors import CourseError
from course_utils.onnx_files import count_ops, load_onnx_file, model_size_bytes


def _model_with_a_subgraph_and_a_custom_op():
    """x -> Relu -> If(cond){then: Neg, else: Abs} plus one com.microsoft op."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    cond = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, [2])

    def branch(op, name):
        out = helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [2])
        return helper.make_graph([helper.make_node(op, ["r"], [f"{name}_out"])], name, [], [out])

    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("If", ["cond"], ["y"], then_branch=branch("Neg", "then"),
                              else_branch=branch("Abs", "else")),
             helper.make_node("Gelu", ["x"], ["z"], domain="com.microsoft")]
    graph = helper.make_graph(nodes, "g", [x, cond], [y, z])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                   helper.make_opsetid("com.microsoft", 1)])


def test_op_histogram_counts_subgraphs_and_names_foreign_domains(tmp_path):
    """Are the nodes of an If's branches counted, and a com.microsoft op named with its domain?"""
    model = _model_with_a_subgraph_and_a_custom_op()
    expected = {"Relu": 1, "If": 1, "Neg": 1, "Abs": 1, "com.microsoft.Gelu": 1}
    assert dict(count_ops(model)) == expected
    onnx.save(model, tmp_path / "m.onnx")
    assert dict(count_ops(tmp_path / "m.onnx")) == expected  # a path gives the same counts


def test_every_unusable_file_is_a_course_error(tmp_path):
    """Are a missing file, a folder and a foreign file all expected failures (one CLI line)?"""
    (tmp_path / "notes.onnx").write_text("not a model")
    for path, builtin in [(tmp_path / "missing.onnx", FileNotFoundError),
                          (tmp_path, IsADirectoryError), (tmp_path / "notes.onnx", ValueError)]:
        with pytest.raises(CourseError) as raised:
            load_onnx_file(path)
        assert isinstance(raised.value, builtin)  # existing `except` clauses still work
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        model_size_bytes(tmp_path / "missing.onnx")
