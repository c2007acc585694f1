"""Text formatting shared by the reports: sizes in SI units.

Covers: ``format_size`` (bytes as B, kB, MB, GB with 10**3 steps, as the
notebooks and ``footprint.py`` count). Does not cover: tables and plots (each
report still draws its own).
"""
from __future__ import annotations

__all__ = ["format_size"]


def format_size(n_bytes: float) -> str:
    """A size in SI units: ``format_size(46_800_000) == "46.8 MB"``; bytes below 1 kB exact.

    Example:
        >>> format_size(512), format_size(48_700), format_size(46_800_000)
        ('512 B', '48.7 kB', '46.8 MB')
    """
    if n_bytes < 1000:
        return f"{int(n_bytes):,} B"
    for unit in ("kB", "MB", "GB"):
        n_bytes /= 1000
        if n_bytes < 1000 or unit == "GB":
            return f"{n_bytes:.1f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover
