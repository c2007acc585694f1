"""Hidden checks, one module per notebook: only the grader imports them.

Students never receive this package (the sandbox and the student release leave out
the whole of ``course_utils/grading/``), so its checks and answer constants stay with
the instructor. Each module registers its checks with ``register(..., hidden=True)``;
:func:`load_hidden_checks` imports every module here, so a new one needs no edit.
"""
from __future__ import annotations

import importlib
import pkgutil

from ...checks import hidden_checks_loaded, load_check_modules, mark_hidden_checks_loaded

__all__ = ["load_hidden_checks"]


def load_hidden_checks() -> None:
    """Import every hidden-check module once (after the public ones), registering its checks."""
    load_check_modules()
    if hidden_checks_loaded():
        return
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    mark_hidden_checks_loaded()
