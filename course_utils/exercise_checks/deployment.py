"""Checks for notebook 05 (deployment: serving, calling the API, footprint, scikit-learn to ONNX).

05.1 the ONNX Runtime loader, observed in the student's process (the sessions it creates per
load and per prediction, their settings, the logits its predict functions return on held-out
digits),
05.2 the labels of every held-out digit over HTTP, 05.3 the footprint ratios (recomputed from
the environment installed here), 05.4 a scikit-learn pipeline converted with skl2onnx.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..answers import register_answer
from ..checks import CheckFailed, register

register_answer("05.2", "http_labels")
register_answer("05.3", "size_ratios")
register_answer("05.4", "skl_onnx_path", kind="file")


def load_test_digits(n: int | None = None):
    """The first ``n`` held-out digits of :func:`load_digits_split`: (images (n, 8, 8) float32, labels)."""
    from ..digits import load_digits_split

    _, x_test, _, y_test = load_digits_split()
    return x_test[:n, 0].numpy(), y_test[:n].numpy()


def load_test_labels(n: int | None = None) -> np.ndarray:
    """The labels of the first ``n`` held-out digits (of :func:`load_digits_split`)."""
    return load_test_digits(n)[1]


def make_tiny_model_bytes() -> bytes:
    """A one-node ONNX model (Identity on a (batch, 2) float tensor), serialised.

    Enough to prove that session options make a working session.
    """
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


# 05.1: the loader and the predict function it returns ----------------------------------

#: How the check calls the student's ``onnx_loader``: the notebook's own digits file (made in
#: the student's folder by step 1) and the model's layout of one image.
LOADER_CALL = ("artifacts/digits.onnx", (1, 8, 8))


def _array_or_type(value):
    try:
        array = np.asarray(value)
    except Exception:  # whatever the student's predict returned
        return type(value).__name__
    return array if array.dtype.kind in "biuf" else type(value).__name__


def _error_facts(stage, error, shape=None) -> dict:
    name = str(error) if type(error).__name__ == "FunctionRaised" else type(error).__name__
    return {"stage": stage, "type": name, "message": str(error)[:200], "shape": shape}


def loader_facts(factory):
    """Extractor (run in the student's process): what ``onnx_loader`` does, observed.

    Calls ``factory(*LOADER_CALL)`` once, the loader it returns twice, and the two predict
    functions on 3, 1, 3 and all held-out digits (the API's layout, (n, 8, 8) float32),
    while :func:`~course_utils.session_count.count_sessions` watches the ONNX Runtime
    sessions created and run at each step. Returns plain facts, never the function.
    """
    if not callable(factory):
        return {"stored": type(factory).__name__}
    import torch

    from ..session_count import count_sessions

    images, _ = load_test_digits()
    facts = {"stored": "function", "torch_threads": int(torch.get_num_threads()), "per_load": [],
             "calls": []}
    with count_sessions() as seen:
        stage, shape = "factory", None
        try:
            loader = factory(*LOADER_CALL)
            facts["at_factory"] = seen.created
            if not callable(loader):
                facts["loader_returned"] = type(loader).__name__
                return facts
            stage, predicts = "load", []
            for _ in range(2):
                before = seen.created
                predicts.append(loader())
                facts["per_load"].append(seen.created - before)
            if not all(callable(p) for p in predicts):
                facts["predict_returned"] = type(predicts[0]).__name__
                return facts
            stage = "predict"
            for which, batch in ((0, images[:3]), (0, images[:1]), (1, images[:3]), (1, images)):
                shape = list(batch.shape)
                created, runs = seen.created, [s.runs for s in seen.sessions]
                result = _array_or_type(predicts[which](batch.copy()))
                ran = [s.number for s, before in zip(seen.sessions, runs) if s.runs > before]
                same = (isinstance(result, np.ndarray) and seen.last_output is not None
                        and np.shape(seen.last_output) == result.shape
                        and bool(np.array_equal(np.asarray(seen.last_output), result)))
                facts["calls"].append({"load": which, "created": seen.created - created, "ran": ran,
                                       "result": result, "is_session_output": same})
        except Exception as error:  # whatever the student's code raises, reported as data
            facts["error"] = _error_facts(stage, error, shape)
        finally:
            facts["sessions"] = [{"number": s.number, "providers": s.providers, "runs": s.runs,
                                  "intra_op_threads": s.intra_op_threads, "spinning": s.spinning}
                                 for s in seen.sessions]
    return facts


register_answer("05.1", "onnx_loader", extract=loader_facts)


def observed_loader(value) -> dict:
    """The facts ``loader_facts`` observed, or a hint when the answer was not the function."""
    if not isinstance(value, dict) or "stored" not in value:
        raise CheckFailed("store the function onnx_loader itself, which takes a path and a model "
                          "shape; check() observes what it does")
    if value["stored"] != "function":
        raise CheckFailed(f"store the function onnx_loader itself (it takes a path and a model "
                          f"shape and returns a loader), got {value['stored']}")
    return value


def _sessions_of_load(facts, which: int) -> set:
    """The numbers of the sessions the ``which``-th loader call created."""
    before = facts.get("at_factory", 0) + sum(facts["per_load"][:which])
    return set(range(before + 1, before + facts["per_load"][which] + 1))


@register("05.1")
def _loader_then_predict_run(facts):
    facts = observed_loader(facts)
    error = facts.get("error")
    if error and error["stage"] == "factory":
        raise CheckFailed(f"onnx_loader{LOADER_CALL!r} raised {error['type']} ({error['message']}); "
                          "onnx_loader takes the file's path and the model's shape of one image and "
                          "returns the loader, a function without arguments")
    if "loader_returned" in facts:
        raise CheckFailed(f"onnx_loader{LOADER_CALL!r} returned {facts['loader_returned']}, not a "
                          "loader: return a function without arguments that the server calls once")
    if error and error["stage"] == "load":
        raise CheckFailed(f"calling the loader raised {error['type']} ({error['message']}); the "
                          "server calls it without arguments, once, at start-up")
    if "predict_returned" in facts:
        raise CheckFailed(f"the loader returned {facts['predict_returned']}; it should return "
                          "predict, the function that answers one batch")


@register("05.1")
def _one_onnx_runtime_session_per_load(facts):
    facts = observed_loader(facts)
    sessions = facts.get("sessions") or []
    if not sessions:
        raise CheckFailed("no ONNX Runtime session was created by the loader, nor by predict: "
                          "this exercise serves the .onnx file with onnxruntime (the PyTorch "
                          "twin comes next)")
    if facts.get("at_factory"):
        raise CheckFailed(f"onnx_loader(...) created {facts['at_factory']} session(s) as soon as it "
                          "was called, before the server ran the loader: create the session "
                          "inside the loader, which the server calls at start-up")
    during_predict = sum(call["created"] for call in facts["calls"])
    if during_predict:
        raise CheckFailed(f"over {len(facts['calls'])} calls, predict created {during_predict} new "
                          "session(s): creating a session costs far more than a prediction "
                          "(step 2); create it once, in the loader, and let predict only run it")
    if facts["per_load"] and any(n != 1 for n in facts["per_load"]):
        raise CheckFailed(f"each call of the loader should create exactly one session; two calls "
                          f"created {facts['per_load']}")


@register("05.1")
def _session_has_the_serving_settings(facts):
    facts = observed_loader(facts)
    for session in facts.get("sessions") or []:
        if list(session["providers"]) != ["CPUExecutionProvider"]:
            raise CheckFailed(f"the session registered {list(session['providers'])}; the exercise "
                              "asks for the CPU provider, named in an explicit providers list")
        threads, torch_threads = session["intra_op_threads"], facts["torch_threads"]
        if threads != torch_threads:
            raise CheckFailed(f"the session runs {threads} intra-op threads (0 is ONNX Runtime's "
                              f"default, one per core) where PyTorch runs {torch_threads}: create it "
                              "with the serving options of step 2, whose threads match PyTorch's")
        if session["spinning"] != "0":
            raise CheckFailed("the session's intra-op threads may spin after each run, which steals "
                              "CPU time from PyTorch in the same process: create it with the "
                              "serving options of step 2")


@register("05.1")
def _predict_returns_logits_per_image(facts):
    facts = observed_loader(facts)
    error = facts.get("error")
    if error and error["stage"] == "predict":
        raise CheckFailed(f"predict failed on a float32 batch of shape {tuple(error['shape'])}, the "
                          f"API's layout ({error['type']}: {error['message']}): reshape it to the "
                          "model's layout inside predict")
    calls = facts["calls"]
    for call in calls:
        if not call["ran"] or not set(call["ran"]) <= _sessions_of_load(facts, call["load"]):
            raise CheckFailed("a call of predict ran no session that its loader created: predict "
                              "answers with the ONNX Runtime session made when the server loaded "
                              "the model")
    logits, one = calls[0]["result"], calls[1]["result"]
    if not isinstance(logits, np.ndarray):
        raise CheckFailed(f"predict returned a {logits}; it should return the logits as an array")
    if logits.shape == (3,):
        raise CheckFailed("predict returned one number per image; it should return the logits, "
                          "one row of 10 scores per image (the API computes the labels)")
    if logits.shape != (3, 10):
        raise CheckFailed(f"predict returned shape {logits.shape} for 3 images; expected (3, 10), "
                          "one row of logits per image")
    if logits.dtype.kind != "f":
        raise CheckFailed(f"predict returned {logits.dtype} values; the logits are floats")
    if np.shape(one) != (1, 10):
        raise CheckFailed(f"predict returned shape {np.shape(one)} for 1 image; the batch size must "
                          "come from the batch, not be fixed")


# 05.2: labels over HTTP -------------------------------------------------------------

@register("05.2")
def _labels_of_every_digit(labels):
    if isinstance(labels, dict) and "detail" in labels:
        detail = str(labels["detail"])[:300]
        raise CheckFailed(f"this is the reply to a refused request: the server answered with an "
                          f"error, whose detail says: {detail}. Change the request until the "
                          "server answers 200, then keep the 'labels' of its replies")
    if isinstance(labels, dict) or hasattr(labels, "status_code"):
        raise CheckFailed("this is a whole response; store only the predicted labels")
    if not isinstance(labels, (list, tuple, np.ndarray)):
        raise CheckFailed(f"expected a list of labels, got {type(labels).__name__}")
    if len(labels) and all(isinstance(item, dict) for item in labels):
        raise CheckFailed("these are the replies; store the labels they hold, one per image")
    try:
        array = np.asarray(labels)
    except ValueError:
        raise CheckFailed("expected one label per image, a flat list of ints") from None
    if array.ndim != 1:
        raise CheckFailed(f"expected one label per image (a flat list), got shape {array.shape}; "
                          "the replies' 'labels' are already arg-maxed")
    expected = len(load_test_labels())
    if len(array) != expected:
        raise CheckFailed(f"expected {expected} labels, one per held-out digit (x_test), got "
                          f"{len(array)}: every image must be sent, each request within the "
                          "endpoint's limit")


# 05.3: footprint ratios, as installed and like for like --------------------------------

_RATIO_KEYS = ("as installed", "CPU only")


def _gpu_bytes(footprint) -> tuple[int, int]:
    """(bytes of the GPU-library wheels, bytes of the other distributions' files named *cuda*)."""
    import importlib.metadata as metadata

    from ..footprint import GPU_WHEEL_PREFIXES

    wheels = inside = 0
    for dist in footprint.distributions:
        if dist.name.lower().startswith(GPU_WHEEL_PREFIXES):
            wheels += dist.size_bytes
            continue
        for entry in metadata.files(dist.name) or []:
            if "cuda" in entry.name.lower():
                inside += entry.size if entry.size is not None else _size_on_disk(entry)
    return wheels, inside


def _size_on_disk(entry) -> int:
    try:
        return entry.locate().stat().st_size
    except OSError:
        return 0


@functools.lru_cache(maxsize=1)
def _measured_ratios() -> dict:
    from ..footprint import measure_footprint, onnxruntime_requirement

    web = ("fastapi", "uvicorn")
    ort_fp = measure_footprint(onnxruntime_requirement(), *web, base=True)
    torch_fp = measure_footprint("torch", *web, base=True)
    (t_wheels, t_inside), (o_wheels, o_inside) = _gpu_bytes(torch_fp), _gpu_bytes(ort_fp)
    t, o, base = torch_fp.total_bytes, ort_fp.total_bytes, torch_fp.base.size_bytes
    return {"as installed": t / o,
            "CPU only": (t - t_wheels - t_inside) / (o - o_wheels - o_inside),
            "as installed without python": (t - base) / (o - base),
            "CPU only without python": (t - t_wheels - t_inside - base) / (o - o_wheels - o_inside - base),
            "wheels only": (t - t_wheels) / (o - o_wheels),
            "pytorch side only": (t - t_wheels - t_inside) / o,
            "top level": torch_fp.size_mb_of("torch") / ort_fp.size_mb_of(ort_fp.distributions[0].name)}


def measured_ratios() -> dict:
    """05.3's two ratios measured from this environment, and the slips the check names.

    Measured once per process (the installed distributions do not change while it runs).
    """
    return dict(_measured_ratios())


def close_ratios(a, b, tolerance=0.02) -> bool:
    """True when ``a`` is within ``tolerance`` (relative) of ``b``."""
    return abs(a - b) <= tolerance * abs(b)


@register("05.3")
def _ratios_match_this_environment(ratios):
    if not isinstance(ratios, dict) or set(ratios) != set(_RATIO_KEYS):
        raise CheckFailed(f"store a dict with the keys {list(_RATIO_KEYS)}")
    for key in _RATIO_KEYS:
        value = ratios[key]
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
            raise CheckFailed(f"{key!r} should be a number, got {type(value).__name__}")
        if not np.isfinite(value) or value <= 0:
            raise CheckFailed(f"{key!r} should be a positive ratio, got {value}")
        if value < 1:
            raise CheckFailed(f"{key!r} is below 1: divide the PyTorch environment's size by the "
                              "ONNX Runtime one's")
    measured = measured_ratios()  # of the distributions installed here, as the notebook measures
    installed, cpu = ratios["as installed"], ratios["CPU only"]
    if not close_ratios(installed, measured["as installed"]):
        if close_ratios(installed, measured["as installed without python"]):
            raise CheckFailed("'as installed' leaves out the Python layer that both environments "
                              "run on: each footprint's total counts it, a sum over its "
                              "distributions does not")
        if close_ratios(installed, measured["top level"]):
            raise CheckFailed("'as installed' compares only the two top-level packages; a serving "
                              "environment needs their dependencies too")
        raise CheckFailed("'as installed' does not match the total sizes of torch_fp and ort_fp")
    if not close_ratios(cpu, measured["CPU only"]):
        if close_ratios(cpu, measured["as installed"]):
            raise CheckFailed("'CPU only' is the size as installed: leave out what only a GPU uses")
        if close_ratios(cpu, measured["CPU only without python"]):
            raise CheckFailed("'CPU only' leaves out the Python layer that both environments run "
                              "on: keep it in both sizes, as in 'as installed'")
        if close_ratios(cpu, measured["wheels only"]):
            raise CheckFailed("'CPU only' still holds CUDA libraries that are not wheels of their "
                              "own: list the files of the largest distribution and look at their "
                              "names")
        if close_ratios(cpu, measured["pytorch side only"]):
            raise CheckFailed("'CPU only' leaves the GPU libraries out of the PyTorch environment "
                              "only: like for like, leave them out of both")
        raise CheckFailed("'CPU only' does not match the two environments without their GPU "
                          "libraries")


# 05.4: scikit-learn pipeline to ONNX -------------------------------------------------

def load_digits_held_out():
    """The held-out digits as 64 pixel features and labels (of :func:`split_digits`)."""
    from ..digits import split_digits

    _, x_test, _, y_test = split_digits()
    return x_test, y_test


def make_check_session(path):
    """A CPU-only ONNX Runtime session of the file at ``path`` (through the checks' one door)."""
    from .export import answer_session, load_answer_onnx

    return answer_session(load_answer_onnx(path))


SKL_INPUT_NAME = "input"  # the name 05.4's statement gives, which step 8's later cells feed


@register("05.4")
def _skl_file_runs(path):
    if not isinstance(path, (str, Path)):
        raise CheckFailed(f"expected the path of the .onnx file, got {type(path).__name__}")
    if not Path(path).is_file():
        raise CheckFailed(f"no file at {path}: save the converted model first")
    session = make_check_session(path)
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].type != "tensor(float)" or inputs[0].shape[-1] != 64:
        raise CheckFailed("expected one float input of 64 features per row, got "
                          f"{[(i.name, i.type, i.shape) for i in inputs]}")
    if inputs[0].name != SKL_INPUT_NAME:
        raise CheckFailed(f"the input is named {inputs[0].name!r}; clients (and the cells after "
                          "this one) feed it by the name the exercise gives: name it so in "
                          "initial_types")
    batch = inputs[0].shape[0]
    if not (batch is None or isinstance(batch, str)):
        raise CheckFailed(f"the input's batch dimension is fixed to {batch}: a server gets batches "
                          "of any size; leave that dimension open in initial_types")
    outputs = session.get_outputs()
    if len(outputs) != 2:
        raise CheckFailed(f"expected 2 outputs (a label and the probabilities), got "
                          f"{[o.name for o in outputs]}")
    if outputs[1].type != "tensor(float)":
        raise CheckFailed(f"the probabilities come out as {outputs[1].type}, one {{class: "
                          "probability} map per row, not a (batch, 10) tensor: ZipMap is still on")
