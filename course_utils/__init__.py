"""course_utils: the small helper library behind the ONNX course notebooks.

The public face is a short list of verbs; everything else is private. Heavy
dependencies (torch, onnxruntime, netron) are imported lazily inside the
functions that need them, so ``import course_utils`` and the install check work
even in a half-broken environment.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# verb -> module that defines it, or "module:name" (imported on first use)
_EXPORTS = {
    "check": "checks",
    "check_install": "install",
    "list_providers": "providers",
    "make_session": "providers",
    "register_openvino": "devices",
    "export_model": "export",
    "compare_outputs": "parity",
    "summarize_model": "inspection",
    "serve_netron": "netron_view",
    "show_netron": "netron_view",
    "save_optimized_model": "graph_opt",
    "serve_app": "serving",
    "run_in_browser": "browser_run",
    "run_load_test": "loadtest",
    "measure_footprint": "footprint",
    "run_benchmark": "benchmark:benchmark",  # the module is named benchmark too
    "grade_notebooks": "grading",
    "build_notebooks": "build",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'course_utils' has no attribute {name!r}")
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), attribute or name)


def __dir__():
    return sorted(list(globals()) + __all__)
