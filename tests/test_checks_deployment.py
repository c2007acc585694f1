"""Tests for the checks of notebook 05: course_utils/exercise_checks/deployment.py and
course_utils/grading/hidden_checks/deployment.py.

Every answer goes through what the grader does with it (``check_support.grade``): 05.1's
predict function is called across the grader's boundary, 05.4's file is copied out of the
work folder. The scikit-learn pipelines are fitted and converted once per module; a
logistic regression on the 8x8 digits stands in for the served CNN (05.1, 05.2).
"""
import json

import numpy as np
import pytest

from check_support import assert_fails_hidden, assert_fails_public, assert_right, grade, registered_checks


def _labels_over_http(model, images):
    """What the API's JSON reply holds under "labels": ints, one per image."""
    return json.loads(json.dumps({"labels": model.predict(images.reshape(len(images), -1)).tolist()}))["labels"]


def _convert(model, folder, name, rows=None, **options):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    from sklearn.linear_model import LogisticRegression

    options = {LogisticRegression: {"zipmap": False, **options}}  # the classifier's own options
    onnx_model = convert_sklearn(model, initial_types=[("input", FloatTensorType([rows, 64]))], options=options)
    path = folder / f"{name}.onnx"
    path.write_bytes(onnx_model.SerializeToString())
    return path


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """The pipelines of 05.2 and 05.4 (right and wrong), fitted, converted and measured once."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from course_utils.digits import load_digits_split
    from course_utils.footprint import measure_footprint

    folder = tmp_path_factory.mktemp("notebook05")
    features, targets = load_digits(return_X_y=True)
    f_train, _, t_train, _ = train_test_split(features.astype(np.float32), targets, test_size=0.25,
                                              random_state=0, stratify=targets)
    fit = lambda model, labels=t_train: make_pipeline(StandardScaler(), model).fit(f_train, labels)  # noqa: E731
    pipeline = fit(LogisticRegression(max_iter=1000))
    shuffled = fit(LogisticRegression(max_iter=1000), np.random.default_rng(0).permutation(t_train))
    files = {"right": _convert(pipeline, folder, "digits-sklearn"),
             "zipmap": _convert(pipeline, folder, "zipmap", zipmap=True),
             "raw_scores": _convert(pipeline, folder, "raw-scores", raw_scores=True),
             "batch_1": _convert(pipeline, folder, "batch-1", rows=1),
             "shuffled_labels": _convert(shuffled, folder, "shuffled")}

    x_train, x_test, y_train, _ = load_digits_split()  # what the served CNN saw: (n, 1, 8, 8)
    served = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(
        x_train.numpy().reshape(len(x_train), -1), y_train.numpy())
    wrong_model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(
        x_train.numpy().reshape(len(x_train), -1), np.random.default_rng(0).permutation(y_train.numpy()))
    everything = x_test.numpy()
    labels = {"right": _labels_over_http(served, everything),
              "first_64": _labels_over_http(served, everything[:64]),
              "reversed": _labels_over_http(served, everything)[::-1]}
    predictors = {"right": lambda batch: served.predict_log_proba(batch.reshape(len(batch), -1)),
                  "wrong_model": lambda batch: wrong_model.predict_log_proba(batch.reshape(len(batch), -1)),
                  "model_layout": lambda batch: served.predict_log_proba(batch.reshape(len(batch), 1, 8, 8))}

    from course_utils.exercise_checks.deployment import measured_ratios

    ratios = measured_ratios()
    return folder, files, labels, ratios, predictors


@pytest.fixture
def graded(tmp_path, work):
    return lambda exercise, answer: grade(exercise, answer, work[0], tmp_path / "grader")


RIGHT = {
    "05.1": lambda work: work[4]["right"],
    "05.2": lambda work: work[2]["right"],
    "05.3": lambda work: {key: work[3][key] for key in ("as installed", "without CUDA wheels")},
    "05.4": lambda work: work[1]["right"],
}


@pytest.mark.parametrize("exercise", sorted(RIGHT))
def test_right_answer_passes(graded, work, exercise):
    """Does the notebook's kind of answer pass every check?"""
    assert_right(graded(exercise, RIGHT[exercise](work)))


def test_the_relative_path_the_notebook_stores_passes(graded, work):
    """Does 05.4's answer pass as the notebook stores it, a str relative to its folder?"""
    assert_right(graded("05.4", work[1]["right"].name))


# --- one wrong answer (at least) per hidden check ----------------------------------------------

WRONG_FOR_HIDDEN = [
    pytest.param("05.1", lambda work: work[4]["wrong_model"], "deployment:_predict_is_the_trained_digits_model",
                 "on all held-out digits, the predicted classes are mostly wrong", id="05.1-another-model"),
    pytest.param("05.2", lambda work: [float(label) for label in work[2]["right"]],
                 "deployment:_labels_are_ints_and_right", "labels should be integers from 0 to 9",
                 id="05.2-labels-as-floats"),
    pytest.param("05.2", lambda work: work[2]["reversed"], "deployment:_labels_are_ints_and_right",
                 "most labels are wrong", id="05.2-batches-in-the-wrong-order"),
    pytest.param("05.4", lambda work: work[1]["batch_1"], "deployment:_skl_outputs_tensors_dynamic_batch",
                 "the model does not accept a batch of 7 rows", id="05.4-batch-fixed-to-1"),
    pytest.param("05.4", lambda work: work[1]["raw_scores"], "deployment:_skl_outputs_tensors_dynamic_batch",
                 "the probabilities should have shape (batch, 10) and rows summing to 1",
                 id="05.4-raw-scores-not-probabilities"),
    pytest.param("05.4", lambda work: work[1]["shuffled_labels"], "deployment:_skl_outputs_tensors_dynamic_batch",
                 "the exported model's labels are mostly wrong", id="05.4-fitted-on-shuffled-labels"),
]


@pytest.mark.parametrize("exercise, make, check, feedback", WRONG_FOR_HIDDEN)
def test_wrong_answer_fails_its_hidden_check(graded, work, exercise, make, check, feedback):
    """Does an answer that passes the public checks fail this hidden check, with its feedback?"""
    assert_fails_hidden(graded(exercise, make(work)), check, feedback)


# --- one wrong answer (at least) per public check -----------------------------------------------

def _ratios(work, **changes):
    return {**RIGHT["05.3"](work), **changes}


def _refused(work):
    """What response.json() holds after the server refused a batch of all 450 images."""
    return {"detail": "batch of 450, more than the 64 this endpoint takes; send a JSON object "
                      '{"pixels": [...]} holding a float32 array of shape (batch, 8, 8), batch 1 to 64'}


WRONG_FOR_PUBLIC = [
    pytest.param("05.1", lambda work: "onnx_loader", "deployment:_predict_returns_logits_per_image",
                 "store the predict function that the loader returns", ["reshape"], id="05.1-a-name"),
    pytest.param("05.1", lambda work: (lambda: work[4]["right"]), "deployment:_predict_returns_logits_per_image",
                 "if this is the loader, call it", ["reshape(-1"], id="05.1-the-loader-itself"),
    pytest.param("05.1", lambda work: work[4]["model_layout"], "deployment:_predict_returns_logits_per_image",
                 "digits_predict failed on a float32 batch of shape (3, 8, 8)", ["reshape(-1"],
                 id="05.1-expects-the-models-layout"),
    pytest.param("05.1", lambda work: (lambda batch: work[4]["right"](batch).argmax(1)),
                 "deployment:_predict_returns_logits_per_image", "predict returned one number per image",
                 [], id="05.1-labels-not-logits"),
    pytest.param("05.1", lambda work: (lambda batch: work[4]["right"](batch)[:, None]),
                 "deployment:_predict_returns_logits_per_image", "predict returned shape (3, 1, 10)",
                 [], id="05.1-an-extra-axis"),
    pytest.param("05.1", lambda work: (lambda batch: (10 * work[4]["right"](batch)).astype(np.int64)),
                 "deployment:_predict_returns_logits_per_image", "the logits are floats", [],
                 id="05.1-integer-scores"),
    pytest.param("05.1", lambda work: (lambda batch: work[4]["right"](np.resize(batch, (3, 8, 8)))),
                 "deployment:_predict_returns_logits_per_image", "predict returned shape (3, 10) for 1 image",
                 [], id="05.1-batch-fixed-to-3"),
    pytest.param("05.2", _refused, "deployment:_labels_of_every_digit",
                 "this is the reply to a refused request", ["range(0", "max_batch"], id="05.2-refused-422"),
    pytest.param("05.2", lambda work: {"labels": work[2]["right"], "scores": []}, "deployment:_labels_of_every_digit",
                 "this is a whole response", ["json()"], id="05.2-the-whole-reply"),
    pytest.param("05.2", lambda work: [{"labels": work[2]["right"][:64]}], "deployment:_labels_of_every_digit",
                 "these are the replies", [], id="05.2-the-replies"),
    pytest.param("05.2", lambda work: np.eye(10)[work[2]["right"]], "deployment:_labels_of_every_digit",
                 "expected one label per image (a flat list), got shape (450, 10)", ["argmax"], id="05.2-one-hot-scores"),
    pytest.param("05.2", lambda work: work[2]["first_64"], "deployment:_labels_of_every_digit",
                 "expected 450 labels, one per held-out digit (x_test), got 64", ["range(0"],
                 id="05.2-first-request-only"),
    pytest.param("05.2", lambda work: "refused", "deployment:_labels_of_every_digit",
                 "expected a list of labels, got str", [], id="05.2-text"),
    pytest.param("05.3", lambda work: _ratios(work, **{"as installed": 1 / work[3]["as installed"]}),
                 "deployment:_ratios_match_this_environment", "'as installed' is below 1", ["total_bytes"],
                 id="05.3-upside-down"),
    pytest.param("05.3", lambda work: _ratios(work, **{"as installed": f"{work[3]['as installed']:.0f}x"}),
                 "deployment:_ratios_match_this_environment", "'as installed' should be a number, got str", [],
                 id="05.3-text"),
    pytest.param("05.3", lambda work: work[3]["as installed"], "deployment:_ratios_match_this_environment",
                 "store a dict with the keys", [], id="05.3-one-number"),
    pytest.param("05.3", lambda work: _ratios(work, **{"as installed": work[3]["without CUDA wheels"]}),
                 "deployment:_ratios_match_this_environment", "'as installed' leaves something out",
                 ["nvidia"], id="05.3-as-installed-without-the-cuda-wheels"),
    pytest.param("05.3", lambda work: _ratios(work, **{"as installed": work[3]["top level"]}),
                 "deployment:_ratios_match_this_environment", "compares only the two top-level packages",
                 [], id="05.3-top-level-packages-only"),
    pytest.param("05.3", lambda work: _ratios(work, **{"as installed": 1.5 * work[3]["as installed"]}),
                 "deployment:_ratios_match_this_environment", "'as installed' does not match", [],
                 id="05.3-made-up-ratio"),
    pytest.param("05.3", lambda work: _ratios(work, **{"without CUDA wheels": work[3]["as installed"]}),
                 "deployment:_ratios_match_this_environment", "'without CUDA wheels' is the size as installed",
                 [], id="05.3-nothing-left-out"),
    pytest.param("05.3", lambda work: _ratios(work, **{"without CUDA wheels": 0.5 * work[3]["without CUDA wheels"] + 1}),
                 "deployment:_ratios_match_this_environment", "'without CUDA wheels' does not match", [],
                 id="05.3-without-made-up"),
    pytest.param("05.4", lambda work: work[0] / "not-written.onnx", "deployment:_skl_file_runs",
                 "no file at", ["convert_sklearn"], id="05.4-never-written"),
    pytest.param("05.4", lambda work: work[1]["right"].parent / "../nothing.onnx", "deployment:_skl_file_runs",
                 "no file at", [], id="05.4-outside-and-missing"),
    pytest.param("05.4", lambda work: work[1]["zipmap"], "deployment:_skl_file_runs",
                 "ZipMap is still on", ['"zipmap": False'], id="05.4-zipmap-on"),
]


@pytest.mark.parametrize("exercise, make, check, feedback, answer_words", WRONG_FOR_PUBLIC)
def test_wrong_answer_fails_a_public_check_with_a_hint(graded, work, exercise, make, check, feedback,
                                                      answer_words):
    """Does the student's own check() refuse this answer with a hint that gives nothing away?"""
    no_cuda_here = abs(work[3]["as installed"] - work[3]["without CUDA wheels"]) < 0.02 * work[3]["as installed"]
    if no_cuda_here and feedback.startswith(("'as installed' leaves", "'without CUDA wheels' is the size")):
        pytest.skip("torch brings no CUDA wheels here: both ratios are the same")
    assert_fails_public(graded(exercise, make(work)), check, feedback, answer_words)


def test_every_check_of_this_notebook_has_a_wrong_answer_here():
    """Is every hidden and every public check of notebook 05 tried with a wrong answer above?"""
    assert registered_checks("deployment", hidden=True) == {p.values[2] for p in WRONG_FOR_HIDDEN}
    assert registered_checks("deployment", hidden=False) == {p.values[2] for p in WRONG_FOR_PUBLIC}
