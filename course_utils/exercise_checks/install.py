"""Checks for notebook 00 (install check)."""
from __future__ import annotations

import importlib.metadata as metadata

import numpy as np

from ..checks import CheckFailed, register
from ..install import _installed_ort_versions


@register("00.1")
def _versions_dict(versions):
    if not isinstance(versions, dict):
        raise CheckFailed(f"expected a dict with the keys 'onnx' and 'onnxruntime', got {type(versions).__name__}")
    missing = {"onnx", "onnxruntime"} - set(versions)
    if missing:
        raise CheckFailed(f"the dict lacks the key(s) {sorted(missing)}")


@register("00.1")
def _versions_not_swapped(versions):
    # A mix-up anyone can make; telling it says nothing a student should find alone.
    try:
        installed = {name: metadata.version(name) for name in ("onnx", "onnxruntime")}
    except metadata.PackageNotFoundError:
        return  # the install report above already names the missing package
    if installed["onnx"] == installed["onnxruntime"]:
        return  # the same version number for both: a swap cannot be told apart
    for key, other in (("onnx", "onnxruntime"), ("onnxruntime", "onnx")):
        if str(versions[key]) == installed[other]:
            raise CheckFailed(f"the version stored under '{key}' is {other}'s ({installed[other]}), "
                              f"not {key}'s: use the __version__ of the {key} module (swapped?)")


@register("00.1", hidden=True)
def _versions_match_installed(versions):
    # onnxruntime's module comes from the distribution onnxruntime or onnxruntime-gpu.
    installed = {"onnx": {metadata.version("onnx")},
                 "onnxruntime": set(_installed_ort_versions().values())}
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


@register("00.2", hidden=True)
def _really_two_runtimes(outputs):
    torch_out, ort_out = outputs
    if torch_out is ort_out:
        raise CheckFailed("both entries are the same object: compare two different runtimes")
    if type(ort_out).__module__.startswith("torch"):
        raise CheckFailed("the second entry is a torch tensor: it should come from session.run")
