"""Hidden checks for notebook 05 (deployment): grader only, never released."""
from __future__ import annotations

import numpy as np

from ..checks import CheckFailed, register
from ..exercise_checks.deployment import load_digits_held_out, make_check_session, load_test_labels, make_tiny_model_bytes

_ORT_STACK = ("onnxruntime", "fastapi", "uvicorn")
_TORCH_STACK = ("torch", "fastapi", "uvicorn")


@register("05.1", hidden=True)
def _threads_match_torch(options):
    if options.intra_op_num_threads != options.torch_threads:
        raise CheckFailed("the thread counts of the two backends do not match")


@register("05.1", hidden=True)
def _options_make_a_session(options):
    import onnxruntime as ort

    rebuilt = ort.SessionOptions()  # the same settings, in the grader's process
    rebuilt.intra_op_num_threads = options.intra_op_num_threads
    rebuilt.inter_op_num_threads = options.inter_op_num_threads
    for key, value in options.config.items():
        rebuilt.add_session_config_entry(key, value)
    session = ort.InferenceSession(make_tiny_model_bytes(), sess_options=rebuilt,
                                   providers=["CPUExecutionProvider"])
    out = session.run(None, {"x": np.ones((3, 2), np.float32)})[0]
    if out.shape != (3, 2):
        raise CheckFailed("a session made with these options does not run")


@register("05.2", hidden=True)
def _labels_are_ints_and_right(labels):
    array = np.asarray(labels)
    if array.dtype.kind not in "iu" or array.min() < 0 or array.max() > 9:
        raise CheckFailed("labels should be integers from 0 to 9")
    truth = load_test_labels(32)
    if (array == truth).mean() < 0.9:
        raise CheckFailed("most labels are wrong: did you send the first 32 test images, "
                          "scaled as in training?")


@register("05.3", hidden=True)
def _ratio_counts_dependencies(ratio):
    from ..footprint import measure_footprint

    ort_fp, torch_fp = measure_footprint(*_ORT_STACK), measure_footprint(*_TORCH_STACK)
    expected = torch_fp.total_bytes / ort_fp.total_bytes
    if abs(ratio - expected) > 0.02 * expected:
        own = torch_fp.size_mb_of("torch") / ort_fp.size_mb_of("onnxruntime")
        if abs(ratio - own) <= 0.02 * own:
            raise CheckFailed("this compares only the two top-level packages; "
                              "a serving environment needs their dependencies too")
        raise CheckFailed("the ratio does not match the two environments' total sizes")


@register("05.4", hidden=True)
def _skl_outputs_tensors_dynamic_batch(path):
    session = make_check_session(path)
    label, probabilities = session.get_outputs()
    if probabilities.type != "tensor(float)":
        raise CheckFailed("the probabilities are a sequence of maps: the zipmap option is still on")
    x_test, y_test = load_digits_held_out()
    name = session.get_inputs()[0].name
    try:
        labels, proba = session.run(None, {name: x_test[:7]})
    except Exception:  # onnxruntime raises its own exception types
        raise CheckFailed("the model does not accept a batch of 7 rows: is the batch "
                          "dimension fixed?") from None
    if proba.shape != (7, 10) or not np.allclose(proba.sum(axis=1), 1, atol=1e-4):
        raise CheckFailed("the probabilities should have shape (batch, 10) and rows summing to 1")
    labels, _ = session.run(None, {name: x_test})
    if (labels == y_test).mean() < 0.9:
        raise CheckFailed("the exported model's labels are mostly wrong on held-out digits")


@register("05.5", hidden=True)
def _methods_exact(methods):
    if set(methods) != {"predict", "predict_proba"}:
        raise CheckFailed("compare each output with the pipeline's methods again")
