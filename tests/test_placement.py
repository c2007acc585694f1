"""Tests for course_utils/placement.py: which provider runs which node.

The four profiles in tests/files were recorded with ONNX Runtime 1.31.1 and
onnxruntime-ep-openvino 1.8.1 on a CPU with bf16 instructions (two runs each, batch 2) and
trimmed to the fields read here: the digits CNN taken whole by OpenVINO, precision pinned to
f32 and left at its default, a model whose Det node OpenVINO does not take (it falls back to
the CPU between two OpenVINO subgraphs), and the digits CNN asked for OpenVINO through the
name list, which the CPU ran alone. The one session here is
a hand-built model of that last kind: Relu and Mul for any provider, Det for the CPU only.
"""
import json

import pytest

from course_utils.cli import main
from course_utils.devices import OPENVINO, register_openvino
from course_utils.placement import (assigned_nodes, format_placement, kernel_precisions,
                                    placement_from_profile, placement_table)

CPU = "CPUExecutionProvider"


def _profile(root, name):
    return json.loads((root / "tests" / "files" / f"profile-{name}.json").read_text())


def test_a_model_taken_whole_is_one_kernel_of_one_provider(root):
    """Does a model OpenVINO took whole show one provider with one kernel and all the time?"""
    shares = placement_from_profile(_profile(root, "openvino-whole-model"))
    assert list(shares) == [OPENVINO]
    assert shares[OPENVINO].kernels == 1 and shares[OPENVINO].share == pytest.approx(1.0)
    assert shares[OPENVINO].kernel_names[0].startswith(f"{OPENVINO}_")


def test_the_profile_says_which_precision_openvino_ran(root):
    """Does OpenVINO's own part of the profile show f32 kernels with the precision pinned and
    bf16 ones with its default on a CPU with bf16, and nothing for the CPU provider?"""
    pinned = kernel_precisions(_profile(root, "openvino-whole-model"))
    default = kernel_precisions(_profile(root, "openvino-whole-model-default-precision"))
    assert set(pinned) == {"f32"} and sum(pinned.values()) == sum(default.values())
    assert list(default)[0] == "bf16" and default["bf16"] > default.get("f32", 0)
    assert kernel_precisions(_profile(root, "openvino-asked-by-name-cpu-ran")) == {}


def test_a_node_the_provider_does_not_take_falls_back_to_the_cpu(root):
    """Does the Det node show on the CPU between OpenVINO's two subgraphs, shares adding to 1?"""
    events = _profile(root, "openvino-and-cpu-det")
    shares = placement_from_profile(events)
    assert set(shares) == {OPENVINO, CPU}
    assert shares[OPENVINO].kernels == 2 and shares[CPU].kernel_names == ("Det",)
    assert sum(s.share for s in shares.values()) == pytest.approx(1.0)
    first = placement_from_profile(events, run=0)  # each run counted apart
    assert first[CPU].kernels == 1 and first[OPENVINO].ms != shares[OPENVINO].ms


def test_a_provider_asked_for_but_not_used_is_absent(root):
    """Asked for OpenVINO by name, did the CPU run every kernel, OpenVINO none?"""
    shares = placement_from_profile(_profile(root, "openvino-asked-by-name-cpu-ran"))
    assert list(shares) == [CPU] and shares[CPU].kernels > 1
    assert "Conv" in shares[CPU].kernel_names


def test_a_profile_without_that_run_is_refused(root):
    """Is a run the profile does not hold, or a profile without runs, one clear error?"""
    with pytest.raises(ValueError, match="holds 2 runs"):
        placement_from_profile(_profile(root, "openvino-whole-model"), run=5)
    with pytest.raises(ValueError, match="holds 0 runs"):
        placement_from_profile([])


def test_the_table_joins_nodes_and_time_per_provider(root):
    """Does the table give each provider its nodes, op types, kernels and share, in one row?"""
    shares = placement_from_profile(_profile(root, "openvino-and-cpu-det"))
    nodes = {OPENVINO: ["Conv", "Relu", "Slice", "Slice", "Unsqueeze", "Mul", "Conv"],
             CPU: ["Det"]}
    rows = placement_table(nodes, shares)
    assert [r["provider"] for r in rows] == [OPENVINO, CPU]
    assert rows[0]["nodes"] == 7 and rows[0]["kernels"] == 2
    assert rows[0]["op_types"] == {"Conv": 2, "Slice": 2, "Relu": 1, "Unsqueeze": 1, "Mul": 1}
    text = format_placement(rows)
    assert "Det x1" in text and "Conv x2" in text


@pytest.fixture(scope="module")
def det_model(tmp_path_factory):
    """Relu and Mul, which any provider takes, and Det, which OpenVINO leaves to the CPU."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Det", ["r"], ["det"]),
         helper.make_node("Mul", ["r", "r"], ["square"])], "det",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2, 2])],
        [helper.make_tensor_value_info("det", TensorProto.FLOAT, ["batch"]),
         helper.make_tensor_value_info("square", TensorProto.FLOAT, ["batch", 2, 2])])
    path = tmp_path_factory.mktemp("placement") / "det.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10), path)
    return path


def test_a_session_without_the_record_says_how_to_get_it(det_model):
    """Is a session made without the assignment record refused with the config entry to set?"""
    import onnxruntime as ort

    session = ort.InferenceSession(str(det_model), providers=[CPU])
    with pytest.raises(ValueError, match="session.record_ep_graph_assignment_info"):
        assigned_nodes(session)


def test_placement_cli_on_a_model_two_providers_share(det_model, capsys):
    """With OpenVINO first, does `providers --placement` give Det to the CPU and the rest to
    OpenVINO (CPU alone, with the reason, where the plugin offers no device)?"""
    status = register_openvino()
    assert main(["providers", "--placement", str(det_model), "--prefer", OPENVINO]) == 0
    out = capsys.readouterr().out
    cpu_row = next(line for line in out.splitlines() if line.startswith(CPU))
    assert "Det x1" in cpu_row
    if status.usable:
        ov_row = next(line for line in out.splitlines() if line.startswith(OPENVINO))
        assert "Relu x1" in ov_row and "Mul x1" in ov_row and "Det" not in ov_row
    else:
        assert status.reason in out and "Relu x1" in cpu_row


def test_placement_cli_errors_are_one_line(det_model, tmp_path, capsys):
    """An unknown provider (with the ones available), a missing or broken model: one line each?"""
    assert main(["providers", "--placement", str(det_model), "--prefer", "GPUExecutionProvider"]) == 1
    error = capsys.readouterr().err
    assert "'GPUExecutionProvider' is no execution provider; available here:" in error
    assert CPU in error and len(error.strip().splitlines()) == 1
    assert main(["providers", "--placement", str(tmp_path / "none.onnx")]) == 1
    assert "no file at" in capsys.readouterr().err
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    assert main(["providers", "--placement", str(tmp_path / "broken.onnx")]) == 1
    assert "not a binary ONNX model" in capsys.readouterr().err
    assert main(["providers", "--prefer", CPU]) == 1
    assert "go with --placement" in capsys.readouterr().err


def test_events_written_for_described_runs_read_back_the_same():
    """Do events made by profile_events, in any order and with OpenVINO's own operations among
    them, give placement_from_profile the kernels and time of the last run described?"""
    from course_utils.placement import profile_events

    runs = [[(OPENVINO, f"{OPENVINO}_9_0", 900), (CPU, "Det", 30)],
            [(OPENVINO, f"{OPENVINO}_9_0", 120), (CPU, "Det", 10)]]
    for order in ("written", "by_ts"):
        shares = placement_from_profile(profile_events(runs, openvino_ops=3, order=order))
        assert {p: (s.kernels, s.ms) for p, s in shares.items()} == {OPENVINO: (1, 0.12), CPU: (1, 0.01)}
    assert kernel_precisions(profile_events(runs, openvino_ops=3)) == {"f32": 6}
