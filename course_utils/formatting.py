"""Text formatting shared by the reports: sizes in SI units, and plain text tables.

Covers: ``format_size`` (bytes as B, kB, MB, GB with 10**3 steps, as the
notebooks and ``footprint.py`` count) and ``format_table``. Does not cover:
plots (each report draws its own).
"""
from __future__ import annotations

__all__ = ["format_size", "format_table"]


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


def format_table(header: list[str], rows: list[list], align: str | None = None) -> str:
    """A plain text table with a header and one line per row.

    Args:
        header: the column titles.
        rows: the cells (any value; ``str()`` is used).
        align: one character per column, ``"<"`` (left) or ``">"`` (right);
            numbers right, text left by default.

    Example:
        >>> print(format_table(["op", "count"], [["Conv", 20], ["Relu", 17]]))
        op    count
        Conv     20
        Relu     17
    """
    cells = [[str(c) for c in row] for row in rows]
    if align is None:
        align = "".join(">" if rows and isinstance(rows[0][i], (int, float)) else "<"
                        for i in range(len(header)))
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]
    lines = []
    for row in [header] + cells:
        lines.append("  ".join(f"{c:{a}{w}}" for c, a, w in zip(row, align, widths)).rstrip())
    return "\n".join(lines)
