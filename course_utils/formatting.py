"""Text formatting shared by the reports: sizes in SI units and fixed-width tables.

Covers: :func:`format_size` (bytes as B, kB, MB, GB with 10**3 steps, as the
notebooks and ``footprint.py`` count) and :func:`format_table` (the text tables
of every report). Does not cover: plots (each report draws its own).
"""
from __future__ import annotations

__all__ = ["format_size", "format_table"]


def format_table(header, rows, *, align: str, widths=None, gap: str = " ",
                 rule: str | None = None) -> list[str]:
    """The lines of a fixed-width text table: header, optional rule, one line per row.

    Cells are strings formatted by the caller (``f"{ms:.2f}"``); this only pads
    them. A left-aligned last column is not padded (a line ends where its text
    ends, unless that last cell is empty).

    Args:
        header: the column titles.
        rows: one sequence of cells per row.
        align: one character per column, ``"<"`` (left) or ``">"`` (right).
        widths: minimum width per column (default: its widest cell or title).
        gap: the text between two columns.
        rule: a character for a line under the header, as wide as the header.

    Returns:
        The lines (the caller joins them and may append a total line).

    Example:
        >>> print("\\n".join(format_table(["op", "ms"], [["Conv", "1.50"]], align="<>", rule="-")))
        op     ms
        ---------
        Conv 1.50
    """
    if len(align) != len(header):
        raise ValueError(f"align has {len(align)} characters for {len(header)} columns")
    rows = [[str(cell) for cell in row] for row in rows]
    widths = list(widths or [max([len(str(title))] + [len(row[i]) for row in rows])
                             for i, title in enumerate(header)])

    def line(cells) -> str:
        padded = [f"{cell:{side}{width}}" for cell, side, width in zip(cells, align, widths)]
        if align[-1] == "<":
            padded[-1] = cells[-1]
        return gap.join(padded)

    head = line([str(title) for title in header])
    return [head, *([rule * len(head)] if rule else []), *(line(row) for row in rows)]


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
        if n_bytes < 1000:
            break
    return f"{n_bytes:.1f} {unit}"
