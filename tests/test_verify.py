"""Tests for course_utils/verify.py: parity reports, feed checks, PyTorch-vs-ONNX runs."""
import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from course_utils.cli import main
from course_utils.export import export_model, load_model_spec
from course_utils.verify import (DEFAULT_ATOL, DEFAULT_RTOL, ParityReport, check_feed,
                                 compare_outputs, verify_model)

DIGITS = "course_utils.digits:DigitsCNN"  # a small real CNN: (batch, 1, 8, 8) -> (batch, 10)
# Measured on an AMD EPYC (Zen 4, AVX-512 VNNI, 2 cores), DigitsCNN from its spec against
# PyTorch: largest abs error 1.8e-7 on random inputs (seeds 0-4, batches 1-32, ONNX Runtime
# and onnx's reference evaluator) and 8.2e-8 on the 450 held-out digits; outputs up to 0.37.
# Tolerances are 10x that, rounded up; rtol=0 because near-zero logits differ by up to 5e-2
# relatively. (verify's defaults, 1e-3, are the students' and cover other hardware.)
RANDOM_PARITY = {"rtol": 0.0, "atol": 2e-6}
REAL_PARITY = {"rtol": 0.0, "atol": 1e-6}


@pytest.fixture(scope="module")
def digits_onnx(tmp_path_factory):
    """DigitsCNN exported from its spec (seeded weights), dynamic batch."""
    path = tmp_path_factory.mktemp("verify") / "digits.onnx"
    return export_model(DIGITS, path, input_shape=(1, 8, 8))


@pytest.fixture(scope="module")
def two_input_session(tmp_path_factory):
    """A session over Add(a, b) with a (batch, 3) float input and a (batch, 3) float input."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["y"])], "add",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


# --- compare_outputs ----------------------------------------------------------------------

def test_identical_outputs_pass_with_zero_error():
    """Do identical outputs pass, with zero error and the defaults in the report?"""
    x = np.random.default_rng(0).standard_normal((4, 10)).astype(np.float32)
    report = compare_outputs(x, x.copy())
    assert report.passed and report.max_abs == 0.0
    assert (report.rtol, report.atol) == (DEFAULT_RTOL, DEFAULT_ATOL)
    assert str(report).splitlines()[-1].startswith("PASS: 1 of 1 outputs")


def test_failure_says_where_and_how_large():
    """Does a failure name the runtime, batch, output, worst element and both values?"""
    expected = np.zeros((2, 5), np.float32)
    actual = expected.copy()
    actual[1, 3] = 0.25
    actual[0, 0] = 0.01
    report = compare_outputs(expected, actual, names=["logits"], runtime="onnxruntime", batch=2)
    assert not report.passed
    row = report.rows[0]
    assert row.worst_index == (1, 3) and row.mismatched == 2 and row.max_abs == pytest.approx(0.25)
    verdict = report.verdict()
    assert "onnxruntime" in verdict and "batch 2" in verdict and "'logits'" in verdict
    assert "[1, 3]" in verdict and "got 0.25" in verdict and "2 of 10 elements" in verdict
    assert "FAIL" in str(report)


def test_tolerance_is_relative_to_the_reference():
    """Is rtol applied to |expected| (PyTorch), with atol carrying values near zero?"""
    expected = np.array([1000.0, 1e-6])
    assert compare_outputs(expected, expected + [0.9, 0.0], rtol=1e-3, atol=0).passed
    assert not compare_outputs(expected, expected + [1.1, 0.0], rtol=1e-3, atol=0).passed
    assert not compare_outputs(expected, expected + [0, 1e-5], rtol=1e-3, atol=0).passed
    assert compare_outputs(expected, expected + [0, 1e-5], rtol=1e-3, atol=1e-4).passed


def test_a_comparison_that_always_passes_is_impossible():
    """Are shape mismatches, NaNs and missing outputs failures, never broadcast or skipped?"""
    x = np.ones((8, 10), np.float32)
    assert not compare_outputs(x, x[:1]).passed  # (1, 10) would broadcast against (8, 10)
    assert "shape (1, 10) != expected (8, 10)" in compare_outputs(x, x[:1]).verdict()
    with_nan = x.copy()
    with_nan[3, 3] = np.nan
    assert not compare_outputs(x, with_nan).passed
    assert "NaN" in compare_outputs(x, with_nan).verdict()
    assert not compare_outputs([x, x], [x]).passed
    assert not compare_outputs({"a": x}, {"b": x}).passed
    assert not ParityReport().passed  # nothing compared is not a pass
    infinite = np.array([np.inf, -np.inf])
    assert compare_outputs(infinite, infinite.copy()).passed


def test_tensors_dicts_and_names_are_accepted():
    """Can PyTorch tensors be compared with numpy arrays, and dicts matched by name?"""
    t = torch.arange(6.0).reshape(2, 3)
    assert compare_outputs(t, t.numpy().copy()).passed
    report = compare_outputs({"b": t, "a": t * 2}, {"a": (t * 2).numpy(), "b": t.numpy()})
    assert report.passed and [r.output for r in report.rows] == ["b", "a"]


def test_tiny_reference_outputs_get_a_warning():
    """Does a pass on outputs that are all within atol of zero come with a warning?"""
    x = np.full((2, 3), 1e-9, np.float32)
    report = compare_outputs(x, x * 0)
    assert report.passed and report.warnings and "warning:" in str(report)


def test_bad_tolerances_and_mixed_reports_are_refused():
    """Are negative tolerances refused, and reports with other tolerances never merged?"""
    x = np.ones(3)
    with pytest.raises(ValueError, match="tolerances"):
        compare_outputs(x, x, atol=-1)
    with pytest.raises(ValueError, match="different tolerances"):
        compare_outputs(x, x) + compare_outputs(x, x, atol=0.5)


# --- check_feed ---------------------------------------------------------------------------

def test_a_correct_feed_passes(two_input_session):
    """Does a feed that matches the inputs pass silently?"""
    a = np.zeros((4, 3), np.float32)
    check_feed(two_input_session, {"a": a, "b": a})


@pytest.mark.parametrize("feed, error, text", [
    ({"A": np.zeros((1, 3), np.float32), "b": np.zeros((1, 3), np.float32)}, ValueError,
     "unknown input name 'A' (did you mean 'a'?)"),
    ({"a": np.zeros((1, 3), np.float32)}, ValueError, "missing input 'b'"),
    ({"a": np.zeros((1, 3)), "b": np.zeros((1, 3), np.float32)}, TypeError,
     "dtype float64 but the model expects float32; convert it with .astype(np.float32)"),
    ({"a": torch.zeros(1, 3), "b": np.zeros((1, 3), np.float32)}, TypeError, ".numpy()"),
    ({"a": [[0.0, 0.0, 0.0]], "b": np.zeros((1, 3), np.float32)}, TypeError, "not a numpy array"),
    ({"a": np.zeros(3, np.float32), "b": np.zeros((1, 3), np.float32)}, ValueError,
     "add the batch dimension with x[None]"),
    ({"a": np.zeros((1, 4), np.float32), "b": np.zeros((1, 4), np.float32)}, ValueError,
     "size 4 in dimension 1 but the model expects 3"),
    ({"a": np.zeros((2, 3), np.float32), "b": np.zeros((5, 3), np.float32)}, ValueError,
     "dimension 'batch' is 2 in input 'a' but 5 in input 'b'"),
    ([np.zeros((1, 3), np.float32)], TypeError, "must be a dict"),
])
def test_a_wrong_feed_names_the_problem_and_lists_the_inputs(two_input_session, feed, error, text):
    """Does each wrong name, dtype, type or shape get one error listing the expected inputs?"""
    with pytest.raises(error) as raised:
        check_feed(two_input_session, feed)
    message = str(raised.value)
    assert text in message
    assert "the model expects a: float32[batch, 3]; b: float32[batch, 3]" in message


# --- verify_model ---------------------------------------------------------------------------

def test_export_matches_pytorch_over_batch_sizes_and_runtimes(digits_onnx):
    """Does a fresh export match PyTorch at several batch sizes in ORT and the reference evaluator?"""
    report = verify_model(digits_onnx, DIGITS, batch_sizes=(1, 3, 8),
                          runtimes=("onnxruntime", "reference"), **RANDOM_PARITY)
    assert report.passed and not report.warnings, str(report)
    assert {(r.runtime, r.batch) for r in report.rows} == {
        (rt, b) for rt in ("onnxruntime", "reference") for b in (1, 3, 8)}


def test_real_inputs_can_replace_random_ones(digits_onnx):
    """Can real example inputs be used instead of random batches?"""
    from course_utils.digits import load_digits_split

    x_test = load_digits_split()[1]
    report = verify_model(digits_onnx, load_model_spec(DIGITS), inputs=x_test[:20], **REAL_PARITY)
    assert report.passed and [r.batch for r in report.rows] == [20]


def test_other_weights_fail_with_statistics(digits_onnx):
    """Does a model with other weights fail, with the error size reported rather than just False?"""
    other = load_model_spec(DIGITS, seed=1)
    report = verify_model(digits_onnx, other, batch_sizes=(2,))
    assert not report.passed and report.max_abs > 1e-2
    assert "elements out of tolerance" in report.verdict()


def test_a_fixed_batch_fails_other_batch_sizes_with_the_reason(tmp_path):
    """Does a file with a fixed batch fail the other batch sizes, saying why?"""
    path = export_model(DIGITS, tmp_path / "fixed.onnx", input_shape=(1, 8, 8),
                        dynamic_batch=False, example_batch=1)
    report = verify_model(path, DIGITS, batch_sizes=(1, 4), **RANDOM_PARITY)
    assert [r.passed for r in report.rows] == [True, False]
    assert "batch size is fixed" in report.rows[1].note


def test_unknown_runtime_is_refused(digits_onnx):
    """Is a misspelt runtime refused with the valid choices?"""
    with pytest.raises(ValueError, match="'onnxruntime', 'reference'"):
        verify_model(digits_onnx, DIGITS, runtimes=("onnxrt",))


def test_verify_cli_exit_codes(digits_onnx, capsys):
    """Does `verify` exit 0 within tolerance and 1 with the statistics otherwise?"""
    assert main(["verify", str(digits_onnx), DIGITS, "--batch-sizes", "1,4"]) == 0
    assert "PASS: 2 of 2 outputs" in capsys.readouterr().out
    assert main(["verify", str(digits_onnx), DIGITS, "--atol", "0", "--rtol", "0"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "max abs" in out and "worst" in out


def test_verify_cli_bad_file_is_one_line(capsys):
    """Does `verify` on an empty file print one error line and no traceback?"""
    from conftest import ROOT

    assert main(["verify", str(ROOT / "tests/files/empty.onnx"), DIGITS]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: empty.onnx is empty")
