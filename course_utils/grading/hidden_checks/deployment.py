"""Hidden checks for notebook 05 (deployment): grader only, never released."""
from __future__ import annotations

import numpy as np

from ...checks import CheckFailed, register
from ...exercise_checks.deployment import load_digits_held_out, load_test_labels, make_check_session

_ORT_STACK = ("onnxruntime", "fastapi", "uvicorn")
_TORCH_STACK = ("torch", "fastapi", "uvicorn")


@register("05.1", hidden=True)
def _threads_match_torch(options):
    if options.intra_op_num_threads != options.torch_threads:
        raise CheckFailed("the thread counts of the two backends do not match")


@register("05.1", hidden=True)
def _one_inter_op_thread(options):
    # 0 lets ONNX Runtime size the inter-op pool to every core, should the mode ever be parallel
    if options.inter_op_num_threads != 1:
        raise CheckFailed("the inter-op thread count is not the one the exercise asks for")


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
    from ...footprint import measure_footprint

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
