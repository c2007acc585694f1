"""Tests for course_utils/graph_opt.py (the checks of notebook 03 are tested in test_checks_graphs.py).

The fixture ``tests/files/small-cnn.onnx`` is a digits-sized CNN built with
``onnx.helper``: Conv-Relu-Conv-Relu-MaxPool-Flatten-MatMul-Add, input
``x`` of shape (batch, 1, 8, 8), 8 nodes, 7 KB.
"""
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from course_utils.graph_drawing import draw_graph
from course_utils.graph_opt import compare_graphs, name_fused_ops, save_optimized_model
from course_utils.onnx_files import count_ops

FIXTURE = Path(__file__).parent / "files" / "small-cnn.onnx"
# Optimised against unoptimised, every level, measured on an AMD EPYC (Zen 4, AVX-512 VNNI):
# bit-identical (largest abs error 0) at batches 1-8, input seeds 0-4, outputs up to 0.42.
# 1e-6 (about 10x an export's ONNX Runtime-vs-PyTorch error on such a model) leaves room for
# another CPU's kernels to sum in another order; rtol=0.
LEVEL_PARITY = {"rtol": 0, "atol": 1e-6}


@pytest.fixture
def small_cnn(tmp_path) -> Path:
    path = tmp_path / "small-cnn.onnx"
    shutil.copy(FIXTURE, path)
    return path


def _run(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_fixture_is_the_graph_these_tests_assume():
    """Is the fixture still Conv-Relu-Conv-Relu-MaxPool-Flatten-MatMul-Add?"""
    ops = [node.op_type for node in onnx.load(str(FIXTURE)).graph.node]
    assert ops == ["Conv", "Relu", "Conv", "Relu", "MaxPool", "Flatten", "MatMul", "Add"]


@pytest.mark.parametrize("level", ["disabled", "basic", "extended", "all"])
def test_every_level_saves_a_model_that_computes_the_same(small_cnn, level):
    """Does each level save a file next to the original that gives the original's outputs?"""
    out = save_optimized_model(small_cnn, level)
    assert out == small_cnn.with_name(f"small-cnn.{level}.onnx") and out.is_file()
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8), dtype=np.float32)
    np.testing.assert_allclose(_run(out, x), _run(small_cnn, x), **LEVEL_PARITY)


def test_levels_change_the_graph_as_documented(small_cnn):
    """Does extended add com.microsoft ops and all add NCHWc ops, with fewer nodes each time?"""
    counts = {level: count_ops(save_optimized_model(small_cnn, level))
              for level in ["basic", "extended", "all"]}
    assert sum(count_ops(small_cnn).values()) == 8
    assert "Gemm" in counts["basic"] and "MatMul" not in counts["basic"]
    assert counts["extended"]["com.microsoft.FusedConv"] == 2 and "Relu" not in counts["extended"]
    assert any(op.startswith("com.microsoft.nchwc.") for op in counts["all"])


def test_unknown_level_lists_the_valid_ones(small_cnn):
    """Is a misspelt level refused with the valid names?"""
    with pytest.raises(ValueError, match="basic, extended, all"):
        save_optimized_model(small_cnn, "extendet")


def test_missing_model_is_named(tmp_path):
    """Does a missing model raise FileNotFoundError naming the file?"""
    with pytest.raises(FileNotFoundError, match="nothing.onnx"):
        save_optimized_model(tmp_path / "nothing.onnx", "basic")


def test_external_data_travels_with_the_optimised_file(tmp_path):
    """Does a model whose weights live in a .data file still load when saved to another folder?"""
    model = onnx.load(str(FIXTURE))
    source = tmp_path / "src" / "ext.onnx"
    source.parent.mkdir()
    onnx.save(model, str(source), save_as_external_data=True, location="ext.onnx.data",
              size_threshold=0)
    out = save_optimized_model(source, "extended", tmp_path / "elsewhere" / "ext.extended.onnx")
    x = np.ones((2, 1, 8, 8), dtype=np.float32)
    np.testing.assert_allclose(_run(out, x), _run(source, x), **LEVEL_PARITY)


def test_name_fused_ops_traces_nodes_back(small_cnn):
    """Are the fusions named after the original ops, at every level, and none against itself?"""
    assert name_fused_ops(small_cnn, small_cnn) == {}
    assert name_fused_ops(small_cnn, save_optimized_model(small_cnn, "basic")) == {"MatMul+Add": 1}
    extended = save_optimized_model(small_cnn, "extended")
    assert name_fused_ops(small_cnn, extended) == {"Conv+Relu": 2, "MatMul+Add": 1}
    # NCHWc renames the tensors; the nodes' attributes still tell what they absorbed.
    assert name_fused_ops(small_cnn, save_optimized_model(small_cnn, "all"))["Conv+Relu"] == 2


def test_comparison_table_and_chart(small_cnn):
    """Does the comparison count nodes per version and draw one bar series per version?"""
    import matplotlib

    matplotlib.use("Agg")
    comparison = compare_graphs({"original": small_cnn,
                                 "extended": save_optimized_model(small_cnn, "extended")})
    assert comparison.node_counts == {"original": 8, "extended": 5}
    table = str(comparison)
    assert table.splitlines()[0].split() == ["op", "type", "original", "extended"]
    assert table.splitlines()[-1].split() == ["nodes", "8", "5"]
    ax = comparison.plot()
    assert len(ax.containers) == 2 and "extended (5 nodes)" in [t.get_text() for t in ax.get_legend().texts]


def test_draw_graph_draws_every_node(small_cnn):
    """Does the static picture hold one box per node plus the graph's input and output?"""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.patches import FancyBboxPatch

    extended = save_optimized_model(small_cnn, "extended")
    figure = draw_graph({"original": small_cnn, "extended": extended})
    boxes = [sum(isinstance(p, FancyBboxPatch) for p in ax.patches) for ax in figure.axes]
    assert boxes == [8 + 2, 5 + 2]
    labels = [t.get_text() for t in figure.axes[1].texts]
    assert "FusedConv\n+Relu" in labels


def test_draw_graph_fits_long_op_names_in_their_boxes(tmp_path):
    """Does a long op type ("BatchNormalization") stay inside its box, on two lines?"""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    import onnx
    from matplotlib.patches import FancyBboxPatch
    from onnx import TensorProto, helper, numpy_helper

    stats = [numpy_helper.from_array(np.ones(4, np.float32), name) for name in "sbmv"]
    graph = helper.make_graph(
        [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])], "bn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 2, 2])], stats)
    path = tmp_path / "bn.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    figure = draw_graph(path)
    renderer = figure.canvas.get_renderer()
    ax = figure.axes[0]
    label = next(t for t in ax.texts if "Normalization" in t.get_text())
    assert label.get_text() == "Batch\nNormalization"
    box = next(p for p in ax.patches if isinstance(p, FancyBboxPatch)
               and p.get_window_extent(renderer).contains(*label.get_window_extent(renderer).get_points().mean(axis=0)))
    assert label.get_window_extent(renderer).width <= box.get_window_extent(renderer).width


def test_draw_graph_counts_the_nodes_it_leaves_out(small_cnn):
    """Does a graph larger than max_nodes say how many nodes are not drawn?"""
    import matplotlib

    matplotlib.use("Agg")
    figure = draw_graph(small_cnn, max_nodes=3)
    assert "... and 5 more nodes" in [t.get_text() for t in figure.axes[0].texts]


def test_all_level_without_nchwc_is_the_extended_graph(small_cnn, tmp_path):
    """With the NchwcTransformer disabled (as on a build without NCHWc kernels), does "all"
    give the extended graph, and does the probe say so?"""
    from course_utils.graph_opt import uses_nchwc_layout

    extended = save_optimized_model(small_cnn, "extended", tmp_path / "extended.onnx")
    plain_all = save_optimized_model(small_cnn, "all", tmp_path / "all.onnx",
                                     disabled_optimizers=["NchwcTransformer"])
    counts = compare_graphs({"extended": extended, "all": plain_all}).op_counts
    assert counts["all"] == counts["extended"]
    assert uses_nchwc_layout(disabled_optimizers=["NchwcTransformer"]) is False
