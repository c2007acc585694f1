"""Hidden checks for notebook 05 (deployment) and their test data: grader only, never released."""
from __future__ import annotations

import numpy as np

from ...checks import CheckFailed, register
from ...exercise_checks.deployment import (call_predict, load_digits_held_out, load_test_digits,
                                           load_test_labels, make_check_session)
from ..cases import Cases, Right, Wrong, built, context_item


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


# --- test data (grading/cases.py): right and wrong answers, the alternative ----------------------
# The scikit-learn pipelines are fitted and converted once; a logistic regression on the 8x8
# digits stands in for the served CNN (05.1, 05.2).

def _convert(model, folder, name, rows=None, **options):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    options = {LogisticRegression: {"zipmap": False, **options}}  # the classifier's own options
    onnx_model = convert_sklearn(model, initial_types=[("input", FloatTensorType([rows, 64]))], options=options)
    path = folder / f"{name}.onnx"
    path.write_bytes(onnx_model.SerializeToString())
    return path


@context_item
def skl_files(c) -> dict:
    """05.4's pipelines (right and wrong), fitted and converted: name -> file."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folder = c.subfolder("deployment")
    features, targets = load_digits(return_X_y=True)
    f_train, _, t_train, _ = train_test_split(features.astype(np.float32), targets, test_size=0.25,
                                              random_state=0, stratify=targets)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(f_train, t_train)
    shuffled = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(
        f_train, np.random.default_rng(0).permutation(t_train))
    return {"right": _convert(pipeline, folder, "digits-sklearn"),
            "zipmap": _convert(pipeline, folder, "zipmap", zipmap=True),
            "raw_scores": _convert(pipeline, folder, "raw-scores", raw_scores=True),
            "batch_1": _convert(pipeline, folder, "batch-1", rows=1),
            "shuffled_labels": _convert(shuffled, folder, "shuffled")}


def _labels_over_http(model, images) -> list:
    """What the API's JSON reply holds under "labels": ints, one per image."""
    import json

    return json.loads(json.dumps({"labels": model.predict(images.reshape(len(images), -1)).tolist()}))["labels"]


@context_item
def served_models(c) -> dict:
    """Stand-ins for the served digits CNN (right) and a model fitted on shuffled labels, on (n, 1, 8, 8) digits."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ...digits import load_digits_split

    x_train, _, y_train, _ = load_digits_split()  # what the served CNN saw: (n, 1, 8, 8)
    flat = x_train.numpy().reshape(len(x_train), -1)
    return {"right": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(flat, y_train.numpy()),
            "wrong": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(
                flat, np.random.default_rng(0).permutation(y_train.numpy()))}


@context_item
def http_labels(c) -> list:
    """05.2's right answer: the served model's labels of every held-out digit, as the replies hold them."""
    from ...digits import load_digits_split

    return _labels_over_http(served_models(c)["right"], load_digits_split()[1].numpy())


def predictor(c, model="right", layout=None):
    """05.1's answer: predict(batch) giving the log-probabilities of ``model``, reshaping to ``layout``."""
    served = served_models(c)[model]
    return lambda batch: served.predict_log_proba(batch.reshape(len(batch), *(layout or (-1,))))


@context_item
def footprint_ratios(c) -> dict:
    """05.3's ratios measured here (as installed, without the CUDA wheels, top-level packages only)."""
    from ...exercise_checks.deployment import measured_ratios

    return measured_ratios()


def _ratios(**changes):
    """05.3's right answer with ``changes``: key -> a function of the measured ratios."""
    return built(lambda c: {**{key: footprint_ratios(c)[key] for key in ("as installed", "without CUDA wheels")},
                            **{key: change(footprint_ratios(c)) for key, change in changes.items()}})


def _without_cuda_wheels(c):
    """A reason to skip where torch brings no CUDA wheels (both ratios are then the same), or None."""
    ratios = footprint_ratios(c)
    if abs(ratios["as installed"] - ratios["without CUDA wheels"]) < 0.02 * ratios["as installed"]:
        return "torch brings no CUDA wheels here: both ratios are the same"
    return None


def _refused():
    """What response.json() holds after the server refused a batch of all 450 images."""
    return {"detail": "batch of 450, more than the 64 this endpoint takes; send a JSON object "
                      '{"pixels": [...]} holding a float32 array of shape (batch, 8, 8), batch 1 to 64'}


_LOGITS, _LABELS = "deployment:_predict_returns_logits_per_image", "deployment:_labels_of_every_digit"
_RATIOS, _SKL = "deployment:_ratios_match_this_environment", "deployment:_skl_outputs_tensors_dynamic_batch"
CASES = [
    Cases("05.1",
          alternative='''def onnx_loader(model_file, shape_per_item):
    def loader():
        sess = ort.InferenceSession(str(model_file), sess_options=serving_options,
                                    providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        def predict(images):
            images = np.asarray(images, dtype=np.float32)
            shaped = images.reshape((len(images),) + tuple(shape_per_item))
            return sess.run([sess.get_outputs()[0].name], {name: shaped})[0]
        return predict
    return loader


loader = onnx_loader(Path("artifacts") / "digits.onnx", (1, 8, 8))
digits_predict = loader()''',
          right=[Right("log-probabilities", built(predictor))],
          wrong=[Wrong("another-model", built(lambda c: predictor(c, "wrong")),
                       "deployment:_predict_is_the_trained_digits_model",
                       "on all held-out digits, the predicted classes are mostly wrong"),
                 Wrong("a-name", "onnx_loader", _LOGITS, "store the predict function that the loader returns",
                       ["reshape"]),
                 Wrong("the-loader-itself", built(lambda c: lambda: predictor(c)), _LOGITS,
                       "if this is the loader, call it", ["reshape(-1"]),
                 Wrong("expects-the-models-layout", built(lambda c: predictor(c, layout=(1, 8, 8))), _LOGITS,
                       "digits_predict failed on a float32 batch of shape (3, 8, 8)", ["reshape(-1"]),
                 Wrong("labels-not-logits", built(lambda c: lambda batch: predictor(c)(batch).argmax(1)), _LOGITS,
                       "predict returned one number per image"),
                 Wrong("an-extra-axis", built(lambda c: lambda batch: predictor(c)(batch)[:, None]), _LOGITS,
                       "predict returned shape (3, 1, 10)"),
                 Wrong("integer-scores", built(lambda c: lambda batch: (10 * predictor(c)(batch)).astype(np.int64)),
                       _LOGITS, "the logits are floats"),
                 Wrong("batch-fixed-to-3", built(lambda c: lambda batch: predictor(c)(np.resize(batch, (3, 8, 8)))),
                       _LOGITS, "predict returned shape (3, 10) for 1 image")]),
    Cases("05.2",
          alternative='''import math

endpoint = server.url + "/models/digits-ort/predict"
images = x_test[:, 0].numpy()
http_labels = []
with httpx.Client() as client:
    for chunk in np.array_split(images, math.ceil(len(images) / 50)):
        reply = client.post(endpoint, json={"pixels": chunk.tolist()})
        assert reply.status_code == 200, reply.text
        http_labels.extend(int(v) for v in reply.json()["labels"])''',
          right=[Right("every-label-in-order", built(http_labels))],
          wrong=[Wrong("labels-as-floats", built(lambda c: [float(label) for label in http_labels(c)]),
                       "deployment:_labels_are_ints_and_right", "labels should be integers from 0 to 9"),
                 Wrong("batches-in-the-wrong-order", built(lambda c: http_labels(c)[::-1]),
                       "deployment:_labels_are_ints_and_right", "most labels are wrong"),
                 Wrong("refused-422", _refused(), _LABELS, "this is the reply to a refused request",
                       ["range(0", "max_batch"]),
                 Wrong("the-whole-reply", built(lambda c: {"labels": http_labels(c), "scores": []}), _LABELS,
                       "this is a whole response", ["json()"]),
                 Wrong("the-replies", built(lambda c: [{"labels": http_labels(c)[:64]}]), _LABELS,
                       "these are the replies"),
                 Wrong("one-hot-scores", built(lambda c: np.eye(10)[http_labels(c)]), _LABELS,
                       "expected one label per image (a flat list), got shape (450, 10)", ["argmax"]),
                 Wrong("first-request-only", built(lambda c: http_labels(c)[:64]), _LABELS,
                       "expected 450 labels, one per held-out digit (x_test), got 64", ["range(0"]),
                 Wrong("text", "refused", _LABELS, "expected a list of labels, got str")]),
    Cases("05.3",
          alternative='''gpu_names = {d.name for d in torch_fp.distributions
             if d.name.startswith("nvidia") or d.name.startswith("triton")}
cpu_only = sum(d.size_bytes for d in torch_fp.distributions if d.name not in gpu_names)
size_ratios = {}
size_ratios["as installed"] = torch_fp.total_mb / ort_fp.total_mb
size_ratios["without CUDA wheels"] = cpu_only / ort_fp.total_bytes''',
          right=[Right("both-ratios-measured", _ratios())],
          wrong=[Wrong("upside-down", _ratios(**{"as installed": lambda r: 1 / r["as installed"]}), _RATIOS,
                       "'as installed' is below 1", ["total_bytes"]),
                 Wrong("text", _ratios(**{"as installed": lambda r: f"{r['as installed']:.0f}x"}), _RATIOS,
                       "'as installed' should be a number, got str"),
                 Wrong("one-number", built(lambda c: footprint_ratios(c)["as installed"]), _RATIOS,
                       "store a dict with the keys"),
                 Wrong("as-installed-without-the-cuda-wheels",
                       _ratios(**{"as installed": lambda r: r["without CUDA wheels"]}), _RATIOS,
                       "'as installed' leaves something out", ["nvidia"], skip=_without_cuda_wheels),
                 Wrong("top-level-packages-only", _ratios(**{"as installed": lambda r: r["top level"]}), _RATIOS,
                       "compares only the two top-level packages"),
                 Wrong("made-up-ratio", _ratios(**{"as installed": lambda r: 1.5 * r["as installed"]}), _RATIOS,
                       "'as installed' does not match"),
                 Wrong("nothing-left-out", _ratios(**{"without CUDA wheels": lambda r: r["as installed"]}), _RATIOS,
                       "'without CUDA wheels' is the size as installed", skip=_without_cuda_wheels),
                 Wrong("without-made-up",
                       _ratios(**{"without CUDA wheels": lambda r: 0.5 * r["without CUDA wheels"] + 1}),
                       _RATIOS, "'without CUDA wheels' does not match")]),
    Cases("05.4",
          alternative='''import onnx
from sklearn.linear_model import LogisticRegression

model_onnx = convert_sklearn(pipeline, initial_types=[("input", FloatTensorType([None, f_train.shape[1]]))],
                             options={LogisticRegression: {"zipmap": False}}, target_opset=17)
skl_onnx_path = Path("artifacts") / "digits-sklearn.onnx"
onnx.save(model_onnx, skl_onnx_path)''',
          right=[Right("zipmap-off-dynamic-batch", built(lambda c: skl_files(c)["right"])),
                 Right("a-relative-str-path", built(lambda c: str(skl_files(c)["right"].relative_to(c.folder))))],
          wrong=[Wrong("batch-fixed-to-1", built(lambda c: skl_files(c)["batch_1"]), _SKL,
                       "the model does not accept a batch of 7 rows"),
                 Wrong("raw-scores-not-probabilities", built(lambda c: skl_files(c)["raw_scores"]), _SKL,
                       "the probabilities should have shape (batch, 10) and rows summing to 1"),
                 Wrong("fitted-on-shuffled-labels", built(lambda c: skl_files(c)["shuffled_labels"]), _SKL,
                       "the exported model's labels are mostly wrong"),
                 Wrong("never-written", built(lambda c: c.folder / "not-written.onnx"), "deployment:_skl_file_runs",
                       "no file at", ["convert_sklearn"]),
                 Wrong("outside-and-missing", built(lambda c: skl_files(c)["right"].parent / "../nothing.onnx"),
                       "deployment:_skl_file_runs", "no file at"),
                 Wrong("zipmap-on", built(lambda c: skl_files(c)["zipmap"]), "deployment:_skl_file_runs",
                       "ZipMap is still on", ['"zipmap": False'])]),
]
