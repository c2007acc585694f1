"""Hidden checks for notebook 05 (deployment) and their test data: grader only, never released."""
from __future__ import annotations

import numpy as np

from ...checks import CheckFailed, register
from ...exercise_checks.deployment import (LOADER_CALL, close_ratios, load_digits_held_out, load_test_labels,
                                           make_check_session, observed_loader)
from ..cases import Cases, Right, Wrong, built, context_item


@register("05.1", hidden=True)
def _predict_answers_with_its_session(facts):
    calls = observed_loader(facts)["calls"]
    if not calls or not all(call["is_session_output"] for call in calls):
        raise CheckFailed("what predict returns is not what its session computed: return the "
                          "session's logits as they come out of run")


@register("05.1", hidden=True)
def _predict_is_the_trained_digits_model(facts):
    logits, labels = observed_loader(facts)["calls"][-1]["result"], load_test_labels()
    if np.shape(logits) != (len(labels), 10) or (np.argmax(logits, axis=1) == labels).mean() < 0.9:
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

def _convert(model, folder, name, rows=None, input_name="input", **options):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    options = {LogisticRegression: {"zipmap": False, **options}}  # the classifier's own options
    onnx_model = convert_sklearn(model, initial_types=[(input_name, FloatTensorType([rows, 64]))], options=options)
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
            "float_input": _convert(pipeline, folder, "float-input", input_name="float_input"),
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


def _logistic_onnx(model, path):
    """An ONNX file of a logistic regression on (batch, 1, 8, 8) digits: Flatten, then Gemm (the logits)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["flat"], axis=1),
         helper.make_node("Gemm", ["flat", "weight", "bias"], ["logits"], transB=1)], "digits",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        [numpy_helper.from_array(model.coef_.astype(np.float32), "weight"),
         numpy_helper.from_array(model.intercept_.astype(np.float32), "bias")])
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx_model.ir_version = 8
    path.parent.mkdir(exist_ok=True)
    onnx.save(onnx_model, str(path))
    return path


@context_item
def digits_files(c) -> dict:
    """Stand-ins for notebook 05's digits.onnx (at the place 05.1's check loads it) and another model."""
    from sklearn.linear_model import LogisticRegression

    from ...digits import load_digits_split

    x_train, _, y_train, _ = load_digits_split()  # (n, 1, 8, 8) in [0, 1]
    flat, labels = x_train.numpy().reshape(len(x_train), -1), y_train.numpy()
    right = LogisticRegression(max_iter=1000).fit(flat, labels)
    shuffled = LogisticRegression(max_iter=1000).fit(flat, np.random.default_rng(0).permutation(labels))
    return {"right": _logistic_onnx(right, c.folder / LOADER_CALL[0]),
            "other": _logistic_onnx(shuffled, c.subfolder("deployment") / "other-digits.onnx")}


def _serving_session(path, options=True):
    """A CPU session of ``path`` with the serving options of step 2 (threads as PyTorch's, no spinning)."""
    import onnxruntime as ort
    import torch

    settings = ort.SessionOptions()
    if options:
        settings.intra_op_num_threads = torch.get_num_threads()
        settings.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), settings, providers=["CPUExecutionProvider"])


def _run(session, batch, shape):
    return session.run(None, {session.get_inputs()[0].name: batch.reshape(-1, *shape)})[0]


def loader(c, variant="right"):
    """05.1's answer, ``onnx_loader(path, model_shape)``, written as a student might (``variant``)."""
    files = digits_files(c)

    def onnx_loader(path, shape):
        if variant == "session-in-factory":
            session = _serving_session(path)
            return lambda: (lambda batch: _run(session, batch, shape))
        if variant == "returns-the-session":
            return lambda: _serving_session(path)

        def load():
            if variant == "session-per-call":
                return lambda batch: _run(_serving_session(path), batch, shape)
            if variant == "no-onnx-runtime":
                return lambda batch: np.zeros((len(batch), 10), np.float32)
            session = _serving_session(files["other"] if variant == "another-model" else path,
                                       options=variant != "default-options")
            predict = {"no-reshape": lambda batch: _run(session, batch, batch.shape[1:]),
                       "labels-not-logits": lambda batch: _run(session, batch, shape).argmax(1),
                       "integer-scores": lambda batch: (10 * _run(session, batch, shape)).astype(np.int64),
                       "batch-fixed-to-3": lambda batch: _run(session, np.resize(batch, (3, 8, 8)), shape),
                       "probabilities": lambda batch: _softmax(_run(session, batch, shape)),
                       "session-never-run": lambda batch: np.ones((len(batch), 10), np.float32)}
            return predict.get(variant, lambda batch: _run(session, batch, shape))
        return load
    return onnx_loader


def _class_loader(c):
    """05.1 as a class: the instance is the loader, make_session with the serving options."""
    import onnxruntime as ort
    import torch

    from ...providers import make_session

    digits_files(c)

    class OnnxLoader:
        def __init__(self, path, shape):
            self.path, self.shape = path, shape

        def __call__(self):
            options = ort.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session = make_session(self.path, prefer=["CPUExecutionProvider"], options=options)
            return lambda batch: session.run(None, {"x": np.asarray(batch).reshape(-1, *self.shape)})[0]
    return OnnxLoader


def _spinning_loader(c):
    """05.1 with matched threads but spinning left as ONNX Runtime's default."""
    import onnxruntime as ort
    import torch

    digits_files(c)

    def onnx_loader(path, shape):
        def load():
            options = ort.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()
            session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            return lambda batch: _run(session, batch, shape)
        return load
    return onnx_loader


def _softmax(logits):
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def _lazy_loader(c):
    """A loader whose predict creates the session at its first call (and keeps it)."""
    digits_files(c)

    def onnx_loader(path, shape):
        def load():
            held = []

            def predict(batch):
                if not held:
                    held.append(_serving_session(path))
                return _run(held[0], batch, shape)
            return predict
        return load
    return onnx_loader


@context_item
def footprint_ratios(c) -> dict:
    """05.3's ratios measured here, and the slips its check names (``measured_ratios``)."""
    from ...exercise_checks.deployment import measured_ratios

    return measured_ratios()


def _ratios(**changes):
    """05.3's right answer with ``changes``: key -> a function of the measured ratios."""
    return built(lambda c: {**{key: footprint_ratios(c)[key] for key in ("as installed", "CPU only")},
                            **{key: change(footprint_ratios(c)) for key, change in changes.items()}})


def _skip_unless_apart(first, second, why):
    def skip(c):
        ratios = footprint_ratios(c)
        return why if close_ratios(ratios[first], ratios[second]) else None
    return skip


_without_gpu_files = _skip_unless_apart("as installed", "CPU only",
                                        "no GPU library is installed here: both ratios are the same")
_without_cuda_files = _skip_unless_apart("wheels only", "CPU only",
                                         "no wheel here holds CUDA libraries of its own")
_onnxruntime_without_gpu_files = _skip_unless_apart("pytorch side only", "CPU only",
                                                    "the ONNX Runtime installed here holds no GPU library")


def _refused():
    """What response.json() holds after the server refused a batch of all 450 images."""
    return {"detail": "batch of 450, more than the 64 this endpoint takes; send a JSON object "
                      '{"pixels": [...]} holding a float32 array of shape (batch, 8, 8), batch 1 to 64'}


_LOGITS, _LABELS = "deployment:_predict_returns_logits_per_image", "deployment:_labels_of_every_digit"
_FACTORY, _SESSIONS = "deployment:_loader_then_predict_run", "deployment:_one_onnx_runtime_session_per_load"
_SETTINGS = "deployment:_session_has_the_serving_settings"
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
    return loader''',
          right=[Right("session-made-in-the-loader", built(loader)),
                 Right("class-with-call", built(lambda c: _class_loader(c)))],
          wrong=[Wrong("session-per-call", built(lambda c: loader(c, "session-per-call")), _SESSIONS,
                       "predict created 4 new session(s)", ["InferenceSession"]),
                 Wrong("session-at-first-call", built(_lazy_loader), _SESSIONS,
                       "predict created 2 new session(s)"),
                 Wrong("session-in-factory", built(lambda c: loader(c, "session-in-factory")), _SESSIONS,
                       "created 1 session(s) as soon as it was called"),
                 Wrong("no-onnx-runtime", built(lambda c: loader(c, "no-onnx-runtime")), _SESSIONS,
                       "no ONNX Runtime session was created"),
                 Wrong("default-options", built(lambda c: loader(c, "default-options")), _SETTINGS,
                       "the session runs 0 intra-op threads", ["serving_options"]),
                 Wrong("spinning-left-on", built(lambda c: _spinning_loader(c)), _SETTINGS,
                       "may spin after each run"),
                 Wrong("session-never-run", built(lambda c: loader(c, "session-never-run")), _LOGITS,
                       "a call of predict ran no session that its loader created"),
                 Wrong("a-name", "onnx_loader", _FACTORY, "store the function onnx_loader itself",
                       ["reshape"]),
                 Wrong("the-loader-itself", built(lambda c: loader(c)(*LOADER_CALL)), _FACTORY,
                       "raised TypeError", ["reshape(-1"]),
                 Wrong("returns-the-session", built(lambda c: loader(c, "returns-the-session")), _FACTORY,
                       "the loader returned InferenceSession"),
                 Wrong("no-reshape", built(lambda c: loader(c, "no-reshape")), _LOGITS,
                       "predict failed on a float32 batch of shape (3, 8, 8)", ["reshape(-1"]),
                 Wrong("labels-not-logits", built(lambda c: loader(c, "labels-not-logits")), _LOGITS,
                       "predict returned one number per image"),
                 Wrong("integer-scores", built(lambda c: loader(c, "integer-scores")), _LOGITS,
                       "the logits are floats"),
                 Wrong("batch-fixed-to-3", built(lambda c: loader(c, "batch-fixed-to-3")), _LOGITS,
                       "predict returned shape (3, 10) for 1 image"),
                 Wrong("probabilities", built(lambda c: loader(c, "probabilities")),
                       "deployment:_predict_answers_with_its_session",
                       "what predict returns is not what its session computed"),
                 Wrong("another-model", built(lambda c: loader(c, "another-model")),
                       "deployment:_predict_is_the_trained_digits_model",
                       "on all held-out digits, the predicted classes are mostly wrong")]),
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
          alternative='''import importlib.metadata

def without_gpu(fp):
    kept = fp.total_bytes
    for dist in fp.distributions:
        if dist.name.lower().startswith(("nvidia-", "cuda-", "triton")):
            kept -= dist.size_bytes
        else:
            kept -= sum(f.size or 0 for f in importlib.metadata.files(dist.name) or []
                        if "cuda" in f.name.lower())
    return kept

size_ratios = {}
size_ratios["as installed"] = torch_fp.total_mb / ort_fp.total_mb
size_ratios["CPU only"] = without_gpu(torch_fp) / without_gpu(ort_fp)''',
          right=[Right("both-ratios-measured", _ratios())],
          wrong=[Wrong("upside-down", _ratios(**{"as installed": lambda r: 1 / r["as installed"]}), _RATIOS,
                       "'as installed' is below 1", ["total_bytes"]),
                 Wrong("text", _ratios(**{"as installed": lambda r: f"{r['as installed']:.0f}x"}), _RATIOS,
                       "'as installed' should be a number, got str"),
                 Wrong("one-number", built(lambda c: footprint_ratios(c)["as installed"]), _RATIOS,
                       "store a dict with the keys"),
                 Wrong("sum-of-the-distributions",
                       _ratios(**{"as installed": lambda r: r["as installed without python"]}), _RATIOS,
                       "'as installed' leaves out the Python layer", ["base"]),
                 Wrong("top-level-packages-only", _ratios(**{"as installed": lambda r: r["top level"]}), _RATIOS,
                       "compares only the two top-level packages"),
                 Wrong("made-up-ratio", _ratios(**{"as installed": lambda r: 1.5 * r["as installed"]}), _RATIOS,
                       "'as installed' does not match"),
                 Wrong("nothing-left-out", _ratios(**{"CPU only": lambda r: r["as installed"]}), _RATIOS,
                       "'CPU only' is the size as installed", skip=_without_gpu_files),
                 Wrong("cpu-without-python", _ratios(**{"CPU only": lambda r: r["CPU only without python"]}),
                       _RATIOS, "'CPU only' leaves out the Python layer"),
                 Wrong("the-cuda-wheels-only", _ratios(**{"CPU only": lambda r: r["wheels only"]}), _RATIOS,
                       "'CPU only' still holds CUDA libraries that are not wheels", ["cuda", "files("],
                       skip=_without_cuda_files),
                 Wrong("pytorch-side-only", _ratios(**{"CPU only": lambda r: r["pytorch side only"]}), _RATIOS,
                       "leaves the GPU libraries out of the PyTorch environment only",
                       skip=_onnxruntime_without_gpu_files),
                 Wrong("cpu-made-up", _ratios(**{"CPU only": lambda r: 0.5 * r["CPU only"] + 1}),
                       _RATIOS, "'CPU only' does not match")]),
    Cases("05.4",
          alternative='''import onnx
from sklearn.linear_model import LogisticRegression

model_onnx = convert_sklearn(pipeline, initial_types=[("input", FloatTensorType([None, f_train.shape[1]]))],
                             options={LogisticRegression: {"zipmap": False}}, target_opset=17)
skl_onnx_path = Path("artifacts") / "digits-sklearn.onnx"
onnx.save(model_onnx, skl_onnx_path)''',
          right=[Right("zipmap-off-dynamic-batch", built(lambda c: skl_files(c)["right"])),
                 Right("a-relative-str-path", built(lambda c: str(skl_files(c)["right"].relative_to(c.folder))))],
          wrong=[Wrong("batch-fixed-to-1", built(lambda c: skl_files(c)["batch_1"]), "deployment:_skl_file_runs",
                       "the input's batch dimension is fixed to 1", ["None"]),
                 Wrong("input-named-otherwise", built(lambda c: skl_files(c)["float_input"]),
                       "deployment:_skl_file_runs", "the input is named 'float_input'", ['"input"']),
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
