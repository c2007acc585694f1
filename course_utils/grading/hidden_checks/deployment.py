"""Hidden checks for notebook 05 (deployment): grader only, never released."""
from __future__ import annotations

import numpy as np

from ...checks import CheckFailed, register
from ...exercise_checks.deployment import (call_predict, load_digits_held_out, load_test_digits,
                                           load_test_labels, make_check_session)


@register("05.1", hidden=True)
def _predict_is_the_trained_digits_model(predict):
    images, labels = load_test_digits()
    logits = call_predict(predict, images)
    if logits.shape != (len(labels), 10) or (logits.argmax(axis=1) == labels).mean() < 0.9:
        raise CheckFailed("on all held-out digits, the predicted classes are mostly wrong: is "
                          "this the exported digits model, fed the images as they came?")


@register("05.2", hidden=True)
def _labels_are_ints_and_right(labels):
    array = np.asarray(labels)
    if array.dtype.kind not in "iu" or array.min() < 0 or array.max() > 9:
        raise CheckFailed("labels should be integers from 0 to 9")
    truth = load_test_labels()
    if (array == truth).mean() < 0.9:
        raise CheckFailed("most labels are wrong: did you send every held-out image, in order, "
                          "scaled as in training?")


@register("05.4", hidden=True)
def _skl_outputs_tensors_dynamic_batch(path):
    session = make_check_session(path)
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
