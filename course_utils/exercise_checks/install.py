"""Checks for notebook 00 (install check): 00.1 versions, 00.2 the smoke test (the student's
exported file run here by ONNX Runtime and compared with the outputs the student reports), 00.3
which distributions provide a module."""
from __future__ import annotations

import numpy as np

from ..answers import CapturedPair, pair_facts, register_answer
from ..checks import CheckFailed, register, what_it_raised
from ..install import installed_ort_versions

# --- 00.1: an installed version against the course's pin -------------------------------------

register_answer("00.1", "pin_status", kind="function")

#: What pin_status may return.
PIN_STATUSES = ("ok", "newer", "too old", "missing")


def call_pin_status(fn, installed, pinned, why: str = "it should return a status") -> str:
    """The student's ``pin_status(installed, pinned)``, checked to be one of PIN_STATUSES, or a hint."""
    try:
        result = fn(installed, pinned)
    except Exception as error:  # the student's code; in the grader only the type's name crosses
        what = what_it_raised(error)
        raise CheckFailed(f"for pin_status({installed!r}, {pinned!r}), {what}: {why}") from None
    if not isinstance(result, str) or result not in PIN_STATUSES:
        shown = repr(result)[:40] if isinstance(result, (str, bool, int, float, type(None))) else type(result).__name__
        raise CheckFailed(f"pin_status({installed!r}, {pinned!r}) returned {shown}; return one of "
                          "'ok', 'newer', 'too old' or 'missing'")
    return result


def _expect(fn, installed, pinned, wanted, why):
    got = call_pin_status(fn, installed, pinned, why)
    if got != wanted:
        raise CheckFailed(f"pin_status({installed!r}, {pinned!r}) gave {got!r}: {why}")


@register("00.1")
def _a_function(fn):
    if not callable(fn):
        raise CheckFailed(f"pass the function itself: check('00.1', pin_status); got {type(fn).__name__}")
    _expect(fn, "1.23.2", "1.23.2", "ok", "a version is the pinned release when it equals the pin")


@register("00.1")
def _missing_is_missing(fn):
    _expect(fn, None, "1.0.0", "missing", "installed is None when the package is not installed at all; "
            "that is the status 'missing'")


@register("00.1")
def _newer_and_too_old(fn):
    _expect(fn, "3.1.0", "3.0.0", "newer", "'newer' means the installed version comes after the pin")
    _expect(fn, "2.9.0", "3.0.0", "too old", "'too old' means the installed version comes before the pin")


@register("00.1")
def _versions_are_not_text(fn):
    why = ("10 comes after 9 in a version: compare the numbers between the dots as numbers, "
           "not the strings letter by letter")
    _expect(fn, "1.10.0", "1.9.0", "newer", why)
    _expect(fn, "2.9.1", "2.10.0", "too old", why)


@register("00.1")
def _a_build_of_the_pin_is_ok(fn):
    _expect(fn, "2.14.1+cpu", "2.14.1", "ok",
            "PyTorch's CPU-only index names its build of release 2.14.1 so; what follows '+' (a local "
            "label) names a build of that release, not a later release")


# --- 00.2: the smoke test, checked on the student's own file ---------------------------------

#: The largest exported file 00.2's answer may name (the tiny model's is about 4.5 kB).
MAX_SMOKE_FILE_BYTES = 16 * 2**20
_SMOKE_KEYS = ("onnx_file", "torch_out", "ort_out")


def smoke_test_facts(value):
    """Extractor (run where the answer lives): 00.2's dict with the exported file's bytes in place
    of its path, and whether the two outputs were one object and which library made each.

    Anything else is left as it is, so the check can say what it got. The file must be a regular
    file inside the notebook's folder (the working folder), as for a file answer.
    """
    if not isinstance(value, dict) or sorted(dict.keys(value)) != sorted(_SMOKE_KEYS):
        return value
    import os

    from ..paths import read_bytes

    given = dict.get(value, "onnx_file")
    facts = {"given": str(given) if isinstance(given, (str, os.PathLike)) else type(given).__name__}
    if not isinstance(given, (str, os.PathLike)) or isinstance(given, bytes):
        facts["problem"] = "not a path"
    else:
        real, work = os.path.realpath(os.fspath(given)), os.path.realpath(os.getcwd())
        if os.path.commonpath([real, work]) != work:
            facts["problem"] = "outside"
        else:
            try:
                facts["bytes"] = np.frombuffer(read_bytes(real, "ONNX file", max_bytes=MAX_SMOKE_FILE_BYTES),
                                               dtype=np.uint8)
            except Exception:  # missing, a folder, a FIFO, too large: the check names it
                facts["problem"] = "unreadable" if os.path.exists(real) else "missing"
    pair = (dict.get(value, "torch_out"), dict.get(value, "ort_out"))
    return {"onnx_file": facts, "pair": pair_facts(pair)}


register_answer("00.2", "smoke", extract=smoke_test_facts)


@register("00.2")
def _smoke_dict(smoke):
    if not isinstance(smoke, dict) or not isinstance(smoke.get("pair"), CapturedPair):
        got = (f"a dict with the keys {sorted(map(str, smoke))[:6]}" if isinstance(smoke, dict)
               else type(smoke).__name__)
        raise CheckFailed(f"expected a dict with the keys 'onnx_file', 'torch_out' and 'ort_out', got {got}")


def smoke_model(smoke):
    """The model of the file 00.2's answer names, read from the answer's bytes, or a hint."""
    from .export import answer_model_from_bytes

    facts = smoke["onnx_file"]
    given, problem = facts.get("given"), facts.get("problem")
    if problem == "not a path":
        raise CheckFailed(f"smoke['onnx_file'] is a {given}: give the path of the exported file (a str or Path)")
    if problem == "outside":
        raise CheckFailed(f"{given} is outside the notebook's folder: export into artifacts/ beside the notebook")
    if problem:
        raise CheckFailed(f"there is no readable file at {given}: export `tiny` there first (did the "
                          "export run?), then run that very file")
    model = answer_model_from_bytes(facts["bytes"].tobytes())
    if model is None:
        raise CheckFailed(f"{given} is not an ONNX file: give the path torch.onnx.export wrote")
    return model


@register("00.2")
def _exported_file(smoke):
    smoke_model(smoke)


def as_float_arrays(pair) -> tuple:
    """00.2's two outputs as float32 arrays of shape (2, 3), or a hint."""
    arrays = []
    for name, item in zip(("torch_out", "ort_out"), pair):
        array = np.asarray(item) if isinstance(item, np.ndarray) else None
        if array is None or array.dtype.kind != "f":
            raise CheckFailed(f"{name} should be a numpy array of floats, got {type(item).__name__}")
        if array.shape != (2, 3):
            raise CheckFailed(f"{name} should have shape (2, 3) (batch 2, 3 features); got {array.shape}")
        arrays.append(array)
    return tuple(arrays)


@register("00.2")
def _outputs_shapes(smoke):
    as_float_arrays(smoke["pair"])


def run_smoke_file(smoke, x):
    """The first output of the answer's file run by ONNX Runtime's CPU provider on ``x``, or a hint."""
    from .export import answer_session

    model = smoke_model(smoke)
    try:
        session = answer_session(model)
    except CheckFailed:
        raise
    except Exception:  # ONNX Runtime refuses the model itself
        raise CheckFailed(f"ONNX Runtime cannot load {smoke['onnx_file']['given']}: write it with "
                          "torch.onnx.export") from None
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise CheckFailed(f"the exported file takes {len(inputs)} inputs; `tiny` takes one (export it alone)")
    try:
        return session.run(None, {inputs[0].name: x})[0]
    except Exception:  # ONNX Runtime refuses x: a fixed batch other than 2, another width
        raise CheckFailed(f"ONNX Runtime cannot run the exported file on `x` (shape {x.shape}): export "
                          "`tiny` with `x` itself as the example input") from None


def tiny_reference(x=None):
    """(x, tiny(x) in PyTorch) for notebook 00's tiny model, rebuilt here (seeded), as float32 arrays."""
    import torch

    from ..install import make_tiny_model

    model, example = make_tiny_model()
    inputs = example if x is None else torch.from_numpy(x)
    with torch.inference_mode():
        return inputs.numpy(), model(inputs).numpy()


@register("00.2")
def _ort_out_from_the_file(smoke):
    torch_out, ort_out = as_float_arrays(smoke["pair"])
    x, expected = tiny_reference()
    from_file = run_smoke_file(smoke, x)
    if from_file.shape == ort_out.shape and np.array_equal(from_file, ort_out):
        return  # the same file, input and CPU give ONNX Runtime the same bits
    # Where PyTorch's and ONNX Runtime's last bits differ, a copy of PyTorch's result shows.
    if np.array_equal(ort_out, expected):
        raise CheckFailed("ort_out is PyTorch's result, not ONNX Runtime's: run the exported file in an "
                          "ONNX Runtime session and keep what that session returns")
    raise CheckFailed(f"ort_out is not what ONNX Runtime's CPU provider computes from {smoke['onnx_file']['given']} "
                      "on `x`: run that very file (after the export) on `x` itself, as numpy")


@register("00.2")
def _torch_out_is_tiny_on_x(smoke):
    torch_out, _ = as_float_arrays(smoke["pair"])
    _, expected = tiny_reference()
    if not np.allclose(torch_out, expected, rtol=1e-5, atol=1e-6):
        raise CheckFailed("torch_out is not what `tiny` gives in PyTorch on `x`: call the model itself on `x`")


# --- 00.3: which distributions provide a module --------------------------------------------

register_answer("00.3", "distributions_of", kind="function")


def call_distributions_of(fn, module: str) -> list[str]:
    """The student's ``distributions_of(module)``, as a list of str, or a hint."""
    try:
        result = fn(module)
    except Exception as error:  # the student's code; in the grader only the type's name crosses
        what = what_it_raised(error)
        raise CheckFailed(f"for {module!r}, {what}; return a list (empty when no installed "
                          "distribution provides the module)") from None
    if not isinstance(result, (list, tuple)) or not all(isinstance(n, str) for n in result):
        raise CheckFailed(f"distributions_of({module!r}) returned {type(result).__name__}; "
                          "return a list of distribution names (str)")
    if list(result) != sorted(result):
        raise CheckFailed(f"distributions_of({module!r}) is not sorted: sort the names")
    return list(result)


@register("00.3")
def _onnxruntime_builds(fn):
    if not callable(fn):
        raise CheckFailed("pass the function itself: check('00.3', distributions_of)")
    # The truth comes from each build's own metadata, not from the function's method.
    builds = sorted(installed_ort_versions())
    found = call_distributions_of(fn, "onnxruntime")
    if found != builds:
        raise CheckFailed(f"distributions_of('onnxruntime') gave {found}, but {len(builds)} installed "
                          "distribution(s) put files in the onnxruntime module folder")


@register("00.3")
def _no_such_module(fn):
    found = call_distributions_of(fn, "no_module_of_this_name")
    if found:
        raise CheckFailed(f"distributions_of('no_module_of_this_name') gave {found}: no installed "
                          "distribution provides such a module, so return []")
