"""The class report's two plots, drawn to be read at a glance and checked as pictures.

Covers: :func:`plot_pass_rates` (one bar per exercise, 0 to 100 %) and
:func:`plot_totals` (one histogram of the students' totals per notebook), as PNG
bytes. Every bar has the one colour :data:`BAR_COLOR` and no anti-aliasing, so a
test can measure the bars in the picture. Does not cover: the figures themselves
(``report.py``).
"""
from __future__ import annotations

import io

from .pages import clean_text

__all__ = ["plot_pass_rates", "plot_totals", "BAR_COLOR"]

#: The one colour of every bar (the tests find the bars by it).
BAR_COLOR = "#2b6cb0"


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def plot_pass_rates(exercises) -> bytes:
    """Bars of the pass rate per exercise (0 to 100 %), as PNG bytes.

    Args:
        exercises: ``report.ExerciseStats`` (``exercise`` and ``pass_rate`` are read).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(max(5.0, 0.55 * len(exercises) + 1.5), 3.4))
    axes = figure.add_subplot()
    labels = [clean_text(e.exercise, 12, newlines=False) for e in exercises]
    rates = [100 * e.pass_rate for e in exercises]
    axes.bar(range(len(rates)), rates, color=BAR_COLOR, width=0.7, antialiased=False, linewidth=0)
    axes.set_xticks(range(len(rates)), labels, rotation=90 if len(rates) > 12 else 0, fontsize=8)
    axes.set_ylim(0, 100)
    axes.set_xlim(-0.6, max(len(rates), 1) - 0.4)
    axes.set_ylabel("students who passed (%)")
    axes.set_title("Pass rate per exercise")
    axes.grid(axis="y", color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    figure.tight_layout()
    return _png(figure)


def plot_totals(notebooks) -> bytes:
    """One histogram of the students' totals per notebook, as PNG bytes.

    Args:
        notebooks: ``report.NotebookStats`` (``notebook``, ``totals`` and ``distribution()`` are read).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    shown = [n for n in notebooks if n.totals] or notebooks[:1]
    columns = min(3, max(1, len(shown)))
    rows = -(-len(shown) // columns)
    figure = Figure(figsize=(3.6 * columns + 0.4, 2.8 * rows + 0.3))
    for index, stats in enumerate(shown):
        axes = figure.add_subplot(rows, columns, index + 1)
        counts = stats.distribution() if stats.totals else {0: 0}
        axes.bar(list(counts), list(counts.values()), color=BAR_COLOR, width=0.8, antialiased=False,
                 linewidth=0)
        axes.set_xlim(-0.6, max(counts) + 0.6)
        axes.set_ylim(0, max([1, *counts.values()]) * 1.1)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_title(clean_text(stats.notebook, 40, newlines=False), fontsize=9)
        axes.set_xlabel("total points", fontsize=8)
        axes.set_ylabel("students", fontsize=8)
    figure.tight_layout()
    return _png(figure)
