"""Tests for the checks of notebook 05: course_utils/exercise_checks/deployment.py and
course_utils/grading/hidden_checks/deployment.py.

Every answer goes through what the grader does with it (``check_support.grade``): 05.1's
SessionOptions reaches the checks as its extractor's facts, 05.4's file is copied out of
the work folder. The scikit-learn pipelines are fitted and converted once per module.
"""
import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from check_support import assert_fails_hidden, assert_fails_public, assert_right, grade, registered_checks


def serving_options(threads=None, inter_op=1, spinning="0"):
    """05.1 as the notebook answers it: PyTorch's threads, 1 inter-op thread, no spinning."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads() if threads is None else threads
    if inter_op is not None:
        options.inter_op_num_threads = inter_op
    if spinning is not None:
        options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
    return options


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
    labels = {"right": _labels_over_http(served, x_test[:32].numpy()),
              "next_32": _labels_over_http(served, x_test[32:64].numpy())}

    ort_fp = measure_footprint("onnxruntime", "fastapi", "uvicorn")
    torch_fp = measure_footprint("torch", "fastapi", "uvicorn")
    ratios = {"total": torch_fp.total_bytes / ort_fp.total_bytes,
              "top_level": torch_fp.size_mb_of("torch") / ort_fp.size_mb_of("onnxruntime")}
    return folder, files, labels, ratios


@pytest.fixture
def graded(tmp_path, work):
    return lambda exercise, answer: grade(exercise, answer, work[0], tmp_path / "grader")


RIGHT = {
    "05.1": lambda work: serving_options(),
    "05.2": lambda work: work[2]["right"],
    "05.3": lambda work: work[3]["total"],
    "05.4": lambda work: work[1]["right"],
    "05.5": lambda work: ["predict", "predict_proba"],
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
    pytest.param("05.1", lambda work: serving_options(threads=torch.get_num_threads() + 1),
                 "deployment:_threads_match_torch", "the thread counts of the two backends do not match",
                 id="05.1-more-threads-than-pytorch"),
    pytest.param("05.1", lambda work: serving_options(inter_op=None), "deployment:_one_inter_op_thread",
                 "the inter-op thread count is not the one the exercise asks for", id="05.1-inter-op-left-at-0"),
    pytest.param("05.2", lambda work: [float(label) for label in work[2]["right"]],
                 "deployment:_labels_are_ints_and_right", "labels should be integers from 0 to 9",
                 id="05.2-labels-as-floats"),
    pytest.param("05.2", lambda work: work[2]["next_32"], "deployment:_labels_are_ints_and_right",
                 "most labels are wrong", id="05.2-the-next-32-images"),
    pytest.param("05.3", lambda work: work[3]["top_level"], "deployment:_ratio_counts_dependencies",
                 "this compares only the two top-level packages", id="05.3-top-level-packages-only"),
    pytest.param("05.3", lambda work: work[3]["total"] * 1.5, "deployment:_ratio_counts_dependencies",
                 "the ratio does not match the two environments' total sizes", id="05.3-made-up-ratio"),
    pytest.param("05.4", lambda work: work[1]["zipmap"], "deployment:_skl_outputs_tensors_dynamic_batch",
                 "the probabilities are a sequence of maps: the zipmap option is still on", id="05.4-zipmap-on"),
    pytest.param("05.4", lambda work: work[1]["batch_1"], "deployment:_skl_outputs_tensors_dynamic_batch",
                 "the model does not accept a batch of 7 rows", id="05.4-batch-fixed-to-1"),
    pytest.param("05.4", lambda work: work[1]["raw_scores"], "deployment:_skl_outputs_tensors_dynamic_batch",
                 "the probabilities should have shape (batch, 10) and rows summing to 1",
                 id="05.4-raw-scores-not-probabilities"),
    pytest.param("05.4", lambda work: work[1]["shuffled_labels"], "deployment:_skl_outputs_tensors_dynamic_batch",
                 "the exported model's labels are mostly wrong", id="05.4-fitted-on-shuffled-labels"),
    pytest.param("05.5", lambda work: ["predict", "decision_function"], "deployment:_methods_exact",
                 "compare each output with the pipeline's methods again", id="05.5-decision-function"),
]


@pytest.mark.parametrize("exercise, make, check, feedback", WRONG_FOR_HIDDEN)
def test_wrong_answer_fails_its_hidden_check(graded, work, exercise, make, check, feedback):
    """Does an answer that passes the public checks fail this hidden check, with its feedback?"""
    if exercise == "05.3":  # the two wrong ratios must really differ from the right one here
        assert abs(make(work) - work[3]["total"]) > 0.02 * work[3]["total"]
    assert_fails_hidden(graded(exercise, make(work)), check, feedback)


# --- one wrong answer (at least) per public check -----------------------------------------------

WRONG_FOR_PUBLIC = [
    pytest.param("05.1", lambda work: serving_options(spinning=None), "deployment:_options_type_and_spinning",
                 "intra-op spinning is still on", ["allow_spinning"], id="05.1-spinning-on"),
    pytest.param("05.1", lambda work: serving_options(spinning="false"), "deployment:_options_type_and_spinning",
                 "the spinning entry is 'false'", [], id="05.1-spinning-false"),
    pytest.param("05.1", lambda work: serving_options(threads=0), "deployment:_options_type_and_spinning",
                 "intra_op_num_threads is 0", [], id="05.1-threads-left-at-0"),
    pytest.param("05.1", lambda work: "serving_options", "deployment:_options_type_and_spinning",
                 "expected an onnxruntime.SessionOptions, got str", [], id="05.1-a-name"),
    pytest.param("05.2", lambda work: {"labels": work[2]["right"], "scores": []}, "deployment:_labels_list",
                 "this is the whole response", ["json()"], id="05.2-the-whole-reply"),
    pytest.param("05.2", lambda work: np.eye(10)[work[2]["right"]], "deployment:_labels_list",
                 "expected one label per image (a flat list), got shape (32, 10)", ["argmax"], id="05.2-one-hot-scores"),
    pytest.param("05.2", lambda work: work[2]["right"][:8], "deployment:_labels_list",
                 "expected 32 labels (one per image of the batch), got 8", ["x_test[:32]"], id="05.2-first-8-only"),
    pytest.param("05.3", lambda work: 1 / work[3]["total"], "deployment:_ratio_is_number",
                 "the ratio is below 1", ["total_bytes"], id="05.3-upside-down"),
    pytest.param("05.3", lambda work: f"{work[3]['total']:.0f}x", "deployment:_ratio_is_number",
                 "expected a number, got str", ["total_bytes"], id="05.3-text"),
    pytest.param("05.4", lambda work: work[0] / "not-written.onnx", "deployment:_skl_file_runs",
                 "no file at", ["convert_sklearn"], id="05.4-never-written"),
    pytest.param("05.4", lambda work: work[1]["right"].parent / "../nothing.onnx", "deployment:_skl_file_runs",
                 "no file at", [], id="05.4-outside-and-missing"),
    pytest.param("05.5", lambda work: "predict", "deployment:_methods_spelled_right",
                 "expected a list of method names", ["predict_proba"], id="05.5-a-string"),
    pytest.param("05.5", lambda work: ["predict", "probabilities"], "deployment:_methods_spelled_right",
                 "'probabilities' is not a scikit-learn method name", ["predict_proba"], id="05.5-output-name"),
    pytest.param("05.5", lambda work: ["predict"], "deployment:_methods_spelled_right",
                 "the exported graph has two outputs", ["predict_proba"], id="05.5-one-method"),
]


@pytest.mark.parametrize("exercise, make, check, feedback, answer_words", WRONG_FOR_PUBLIC)
def test_wrong_answer_fails_a_public_check_with_a_hint(graded, work, exercise, make, check, feedback,
                                                      answer_words):
    """Does the student's own check() refuse this answer with a hint that gives nothing away?"""
    assert_fails_public(graded(exercise, make(work)), check, feedback, answer_words)


def test_every_check_of_this_notebook_has_a_wrong_answer_here():
    """Is every hidden and every public check of notebook 05 tried with a wrong answer above?"""
    assert registered_checks("deployment", hidden=True) == {p.values[2] for p in WRONG_FOR_HIDDEN}
    assert registered_checks("deployment", hidden=False) == {p.values[2] for p in WRONG_FOR_PUBLIC}
