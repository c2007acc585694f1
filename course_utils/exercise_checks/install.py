"""Checks for notebook 00 (install check): 00.1 versions, 00.2 the smoke test, 00.3 which
distributions provide a module."""
from __future__ import annotations

import importlib.metadata as metadata

import numpy as np

from ..answers import pair_facts, register_answer
from ..checks import CheckFailed, register
from ..install import installed_ort_versions

register_answer("00.1", "versions")
register_answer("00.2", "outputs", extract=pair_facts)


@register("00.1")
def _versions_dict(versions):
    if not isinstance(versions, dict):
        raise CheckFailed(f"expected a dict with the keys 'onnx' and 'onnxruntime', got {type(versions).__name__}")
    missing = {"onnx", "onnxruntime"} - set(versions)
    if missing:
        raise CheckFailed(f"the dict lacks the key(s) {sorted(missing)}")


def read_installed_versions() -> dict[str, set[str]]:
    """The installed version(s) of each module's distributions (onnxruntime may come from
    onnxruntime or onnxruntime-gpu); an empty set where none is installed."""
    try:
        onnx_versions = {metadata.version("onnx")}
    except metadata.PackageNotFoundError:
        onnx_versions = set()
    return {"onnx": onnx_versions, "onnxruntime": set(installed_ort_versions().values())}


@register("00.1")
def _versions_not_swapped(versions):
    # A mix-up anyone can make; telling it says nothing a student should find alone.
    installed = read_installed_versions()
    for key, other in (("onnx", "onnxruntime"), ("onnxruntime", "onnx")):
        value = str(versions[key])
        if value in installed[other] - installed[key]:  # the same number for both: no telling
            raise CheckFailed(f"the version stored under '{key}' is {other}'s ({value}), "
                              f"not {key}'s: use the __version__ of the {key} module (swapped?)")


@register("00.1")
def _versions_match_installed(versions):
    installed = read_installed_versions()  # onnxruntime or onnxruntime-gpu both count
    for name in ("onnx", "onnxruntime"):
        if str(versions[name]) not in installed[name]:
            raise CheckFailed(f"the version given for {name} is not the one installed; "
                              "read it from the module's __version__ attribute")


@register("00.2")
def _outputs_pair(outputs):
    if not isinstance(outputs, (tuple, list)) or len(outputs) != 2:
        raise CheckFailed("expected a pair (torch_out, ort_out)")
    torch_out, ort_out = (np.asarray(o) for o in outputs)
    if torch_out.shape != (2, 3) or ort_out.shape != (2, 3):
        raise CheckFailed(f"both outputs should have shape (2, 3) (batch 2, 3 features); "
                          f"got {torch_out.shape} and {ort_out.shape}")
    if not np.allclose(torch_out, ort_out, rtol=1e-5, atol=1e-5):
        raise CheckFailed("the two outputs differ by more than 1e-5: did both runtimes get the same `x`?")




# --- 00.3: which distributions provide a module --------------------------------------------

register_answer("00.3", "distributions_of", kind="function")


def call_distributions_of(fn, module: str) -> list[str]:
    """The student's ``distributions_of(module)``, as a list of str, or a hint."""
    try:
        result = fn(module)
    except Exception as error:  # the student's code; in the grader only the type's name crosses
        what = str(error) if "raised" in str(error) else f"the function raised {type(error).__name__}"
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
