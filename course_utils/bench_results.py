"""Benchmark results: the records with derived figures, the table, JSON and plots.

Covers: :class:`BenchmarkResult` (what ``benchmark`` returns and ``bench --json``
writes, with the ``"headline"`` object), the derived figures of each record
(GFLOP/s; its share of the fp32 ceiling measured on this machine, of the nominal
peak and of one library's matrix product; speedup over eager PyTorch with its
bootstrap interval), the int8 verdict of ``bench --int8``, and the two matplotlib
plots. Does not cover: taking the measurements (``benchmark.py``, ``roofline.py``).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .formatting import format_table
from .paths import write_atomic
from .timing import MIN_INTERVAL_SAMPLES, ratio_interval

__all__ = ["BenchmarkResult", "add_derived_figures", "plot_latency", "plot_speedup"]


def add_derived_figures(records, flops, peak, gemm=None, ceiling=None):
    """Add work per second, its shares of the ceilings and the speedup over eager PyTorch.

    Per record: ``gflops_per_s`` (FLOPs over the median), ``ceiling_share`` (of the
    fp32 ceiling measured on this machine), ``peak_share`` (of the nominal peak, a
    figure computed from an assumed clock and FMA count: above 1 it shows that an
    assumption is wrong), ``gemm_share`` (of the best matrix product measured for
    the library, ``torch.mm`` for PyTorch's rows, MLAS's MatMul for ONNX Runtime's:
    a yardstick of that library, not of the kernels that ran the row; PyTorch's
    convolutions run in oneDNN, not in the BLAS behind ``torch.mm``).

    Args:
        records: the benchmark's records (dicts), changed in place.
        flops: ``{(batch, size): FLOPs or None}``.
        peak: the nominal fp32 peak in GFLOP/s, or None.
        gemm: ``{library: {"best_gflops": ...}}`` (optional).
        ceiling: a :class:`course_utils.roofline.Ceiling` (optional).

    Returns:
        The ceiling the shares are of: ``ceiling``, raised to the best record's
        rate where a record beat it (:meth:`~course_utils.roofline.Ceiling.at_least`),
        so that no share of it exceeds 1; None without a ceiling.
    """
    gemm = gemm or {}
    eager = {(r["batch"], r["size"]): r for r in records if r["backend"] == "torch-eager"}
    for r in records:
        work = flops.get((r["batch"], r["size"]))
        r["flops"] = work
        r["gflops_per_s"] = work / 1e9 / (r["median_ms"] / 1e3) if work else None
    rated = [r for r in records if r["gflops_per_s"]]
    if ceiling is not None and rated:
        best = max(rated, key=lambda r: r["gflops_per_s"])
        ceiling = ceiling.at_least(best["gflops_per_s"], f"{best['backend']} at batch "
                                   f"{best['batch']}, {best['size']} px")
    for r in records:
        work = r["flops"]
        r["ceiling_share"] = ceiling.share(r["gflops_per_s"]) if work and ceiling else None
        r["peak_share"] = r["gflops_per_s"] / peak if work and peak else None
        library = gemm.get("torch" if r["backend"].startswith("torch") else "onnxruntime")
        r["gemm_share"] = (r["gflops_per_s"] / library["best_gflops"]
                           if work and library else None)
        base = eager.get((r["batch"], r["size"]))
        if base is None:
            r["speedup"] = r["speedup_low"] = r["speedup_high"] = None
            continue
        # > 1: faster than eager PyTorch; the range is a 95 % bootstrap interval
        r["speedup"] = base["median_ms"] / r["median_ms"]
        if "samples_ms" in base and "samples_ms" in r:
            enough = min(len(base["samples_ms"]), len(r["samples_ms"])) >= MIN_INTERVAL_SAMPLES
            r["speedup_low"], r["speedup_high"] = (  # too few samples: no interval at all
                ratio_interval(base["samples_ms"], r["samples_ms"]) if enough else (None, None))
        else:  # records without samples: pair opposite quartiles (a cautious band)
            r["speedup_low"] = base["q1_ms"] / r["q3_ms"]
            r["speedup_high"] = base["q3_ms"] / r["q1_ms"]
    return ceiling


# ---------------------------------------------------------------- results
@dataclass
class BenchmarkResult:
    """Everything one :func:`benchmark` run measured, with the machine it ran on."""

    model: str
    device: str
    records: list
    hardware: dict
    settings: dict
    peak_gflops: float | None = None  # the nominal fp32 peak (see ``peak``)
    peak: dict | None = None  # hardware.theoretical_peak: formula and assumptions
    gemm: dict | None = None  # {"torch": ..., "onnxruntime": ...}: each library's best GEMM
    ceiling: dict | None = None  # roofline.Ceiling.to_dict(): the measured fp32 ceiling
    nominal: dict | None = None  # roofline.compare_with_nominal: ratio, implied clock, sentences
    int8: dict | None = None  # bench --int8: rows, the winning recipe and sentences
    contenders: list | None = None  # bench --runtimes: contenders.compare_runtimes rows
    fastest: dict | None = None  # contenders.fastest_row of those rows

    @property
    def backends(self) -> list:
        """The backends measured, in the order asked for."""
        return list(dict.fromkeys(r["backend"] for r in self.records))

    @property
    def shapes(self) -> list:
        """The ``(batch, size)`` pairs measured, in the order asked for."""
        return list(dict.fromkeys((r["batch"], r["size"]) for r in self.records))

    def find(self, backend: str, batch: int, size: int) -> dict:
        """The record of one configuration; KeyError names the ones measured."""
        for r in self.records:
            if (r["backend"], r["batch"], r["size"]) == (backend, batch, size):
                return r
        raise KeyError(f"no result for {backend} at batch {batch}, size {size}; measured: "
                       f"backends {self.backends}, (batch, size) {self.shapes}")

    @property
    def headline(self) -> dict:
        """Eager PyTorch against ONNX Runtime (level ``all`` if measured) at batch 1, 224 px.

        The speedup is the ratio of the two medians, with its 95 % bootstrap
        interval (``speedup_low``, ``speedup_high``) and the samples behind it.
        """
        batch, size = (1, 224) if (1, 224) in self.shapes else self.shapes[0]
        ort_backends = [b for b in self.backends if b.startswith("ort-")]
        ort = "ort-all" if "ort-all" in ort_backends else (ort_backends or [None])[-1]
        torch_ms = self.find("torch-eager", batch, size)["median_ms"] \
            if "torch-eager" in self.backends else None
        record = self.find(ort, batch, size) if ort else {}
        ort_ms = record.get("median_ms")
        torch_n = self.find("torch-eager", batch, size)["n"] if torch_ms else None
        return {"model": self.model, "batch": batch, "size": size, "device": self.device,
                "torch_ms": torch_ms, "ort_ms": ort_ms, "ort_backend": ort,
                "speedup": torch_ms / ort_ms if torch_ms and ort_ms else None,
                "speedup_low": record.get("speedup_low"),
                "speedup_high": record.get("speedup_high"),
                "interval": ("95% bootstrap of the ratio of medians: this run's noise "
                             "only, not how far another run would land"
                             if record.get("speedup_low") is not None else
                             f"none: fewer than {MIN_INTERVAL_SAMPLES} samples per side"),
                "n": {"torch": torch_n, "ort": record.get("n")}}

    def to_dict(self) -> dict:
        """Headline, hardware, settings, the ceilings and every record, ready for JSON."""
        return {"schema": "course_utils.bench/1", "model": self.model, "device": self.device,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "headline": self.headline,
                "hardware": self.hardware, "settings": self.settings,
                "ceiling": self.ceiling, "nominal": self.nominal,
                "peak_gflops": self.peak_gflops, "peak": self.peak, "gemm": self.gemm,
                "int8": self.int8, "contenders": self.contenders, "fastest": self.fastest,
                "results": self.records}

    def save_json(self, path) -> Path:
        """Write :meth:`to_dict` as JSON, in one step (parent folders are created)."""
        return write_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n")

    def format_table(self) -> str:
        """The records as fixed-width text, one line per (shape, backend).

        ``% ceil``: share of the fp32 ceiling measured on this machine (the nominal
        peak and each library's GEMM share are in the records and the JSON);
        ``95% CI``: the bootstrap interval of the speedup over eager PyTorch, which
        holds this run's noise only.
        """
        def num(value, spec, scale=1):
            return "-" if value is None else format(scale * value, spec)

        rows = []
        for r in self.records:
            band = (f"{r['speedup_low']:.2f}-{r['speedup_high']:.2f}"
                    if r.get("speedup_low") is not None else "n too small")
            rows.append([r["backend"], r["batch"], r["size"], f"{r['median_ms']:.2f}",
                         f"{r['iqr_ms']:.2f}", f"{r['p90_ms']:.2f}", r["n"],
                         num(r["gflops_per_s"], ".1f"), num(r.get("ceiling_share"), ".1f", 100),
                         num(r["speedup"], ".2f") + "x" if r["speedup"] else "-", band,
                         num(r["setup_ms"], ".0f")])
        return "\n".join(format_table(
            ["backend", "batch", "size", "median ms", "IQR ms", "p90 ms", "n", "GFLOP/s",
             "% ceil", "vs torch", "95% CI", "setup ms"], rows,
            align="<" + ">" * 11, widths=[13, 5, 5, 10, 8, 8, 4, 8, 7, 8, 11, 9], rule="-"))


def plot_latency(result: BenchmarkResult):
    """Median latency (bars: IQR) against image size at batch 1, and per image against batch."""
    import matplotlib.pyplot as plt

    fig, (by_size, by_batch) = plt.subplots(1, 2, figsize=(10, 4))
    for backend in result.backends:
        for ax, pick, per_image in ((by_size, lambda r: r["batch"] == 1, False),
                                    (by_batch, lambda r: r["size"] == 224, True)):
            rows = sorted((r for r in result.records if r["backend"] == backend and pick(r)),
                          key=lambda r: (r["size"], r["batch"]))
            if not rows:
                continue
            x = [r["batch"] if per_image else r["size"] for r in rows]
            scale = [r["batch"] if per_image else 1 for r in rows]
            med = np.array([r["median_ms"] for r in rows]) / scale
            low = med - np.array([r["q1_ms"] for r in rows]) / scale
            high = np.array([r["q3_ms"] for r in rows]) / scale - med
            ax.errorbar(x, med, yerr=[low, high], marker="o", capsize=3, label=backend)
    by_size.set(xlabel="image size (px), batch 1", ylabel="median latency (ms)",
                xscale="log", yscale="log", title="latency vs input size")
    by_batch.set(xlabel="batch size, 224 px", ylabel="median ms per image",
                 xscale="log", yscale="log", title="per-image latency vs batch")
    for ax, key in ((by_size, "size"), (by_batch, "batch")):
        ticks = sorted({r[key] for r in result.records})
        ax.set_xticks(ticks, [str(t) for t in ticks])  # the measured values, not powers of 10
        ax.minorticks_off()
        if ax.lines:
            _label_log_axis(ax)
        if ax.lines:
            ax.legend(fontsize="small")
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"{result.model} on {result.hardware.get('gpu') or result.hardware['cpu']}")
    fig.tight_layout()
    return fig


def _label_log_axis(ax, most: int = 7):
    """Readable y ticks on a log axis that may span less than one power of ten."""
    low, high = ax.get_ylim()
    if low <= 0:
        return
    ticks = []
    for mantissas in ((1,), (1, 2, 5), (1, 1.5, 2, 3, 5, 7), (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8)):
        ticks = [m * 10.0 ** e for e in range(math.floor(math.log10(low)) - 1,
                                              math.ceil(math.log10(high)) + 1)
                 for m in mantissas if low <= m * 10.0 ** e <= high]
        if len(ticks) >= 4:
            break
    ticks = ticks[::max(1, math.ceil(len(ticks) / most))]
    ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_ylim(low, high)


def plot_speedup(result: BenchmarkResult):
    """Speedup over eager PyTorch per shape and backend; bars span the quartile band."""
    import matplotlib.pyplot as plt

    others = [b for b in result.backends if b != "torch-eager"]
    shapes = result.shapes
    fig, ax = plt.subplots(figsize=(min(13, max(6, 0.6 * len(shapes) * len(others) + 3.5)), 4))
    width = 0.8 / max(1, len(others))
    for i, backend in enumerate(others):
        rows = [next((r for r in result.records if r["backend"] == backend
                      and (r["batch"], r["size"]) == s), None) for s in shapes]
        value = np.array([r["speedup"] if r and r["speedup"] else np.nan for r in rows])
        # no interval (too few samples): no error bar, rather than a made-up one
        low = np.array([r["speedup_low"] if r and r.get("speedup_low") is not None else np.nan
                        for r in rows], dtype=float)
        high = np.array([r["speedup_high"] if r and r.get("speedup_high") is not None
                         else np.nan for r in rows], dtype=float)
        ax.bar(np.arange(len(shapes)) + i * width, value, width, label=backend,
               yerr=[value - low, high - value], capsize=3)
    ax.axhline(1.0, color="black", linewidth=1)
    ax.set_xticks(np.arange(len(shapes)) + width * (len(others) - 1) / 2,
                  [f"batch {b}\n{s} px" for b, s in shapes])
    ax.set(ylabel="speedup over eager PyTorch (x)",
           title="> 1: faster than eager PyTorch (error bars: 95% bootstrap interval of "
                 "this run's noise, where enough samples)")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- the bench command
