"""Benchmark results: the records with derived figures, the table, JSON and plots.

Covers: :class:`BenchmarkResult` (what ``benchmark`` returns and ``bench --json``
writes, with the ``"headline"`` object), the derived figures of each record
(GFLOP/s, share of the matmul peak, speedup over eager PyTorch with its
quartile range), and the two matplotlib plots. Does not cover: taking the
measurements (``benchmark.py``).
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["BenchmarkResult", "plot_latency", "plot_speedup"]

log = logging.getLogger("course_utils.benchmark")


def _add_derived(records, flops, peak):
    """Add work per second, the share of the matmul peak and the speedup over eager PyTorch."""
    eager = {(r["batch"], r["size"]): r for r in records if r["backend"] == "torch-eager"}
    for r in records:
        work = flops.get((r["batch"], r["size"]))
        r["flops"] = work
        r["gflops_per_s"] = work / 1e9 / (r["median_ms"] / 1e3) if work else None
        r["peak_share"] = r["gflops_per_s"] / peak if work and peak else None
        base = eager.get((r["batch"], r["size"]))
        if base is None:
            r["speedup"] = r["speedup_low"] = r["speedup_high"] = None
            continue
        # > 1: faster than eager PyTorch; the range pairs opposite quartiles (a cautious band)
        r["speedup"] = base["median_ms"] / r["median_ms"]
        r["speedup_low"] = base["q1_ms"] / r["q3_ms"]
        r["speedup_high"] = base["q3_ms"] / r["q1_ms"]


# ---------------------------------------------------------------- results
@dataclass
class BenchmarkResult:
    """Everything one :func:`benchmark` run measured, with the machine it ran on."""

    model: str
    device: str
    records: list
    hardware: dict
    settings: dict
    peak_gflops: float | None = None

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
        """Eager PyTorch against ONNX Runtime (level ``all`` if measured) at batch 1, 224 px."""
        batch, size = (1, 224) if (1, 224) in self.shapes else self.shapes[0]
        ort_backends = [b for b in self.backends if b.startswith("ort-")]
        ort = "ort-all" if "ort-all" in ort_backends else (ort_backends or [None])[-1]
        torch_ms = self.find("torch-eager", batch, size)["median_ms"] \
            if "torch-eager" in self.backends else None
        ort_ms = self.find(ort, batch, size)["median_ms"] if ort else None
        return {"model": self.model, "batch": batch, "size": size, "device": self.device,
                "torch_ms": torch_ms, "ort_ms": ort_ms, "ort_backend": ort,
                "speedup": torch_ms / ort_ms if torch_ms and ort_ms else None}

    def to_dict(self) -> dict:
        """Headline, hardware, settings, matmul peak and every record, ready for JSON."""
        return {"schema": "course_utils.bench/1", "model": self.model, "device": self.device,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "headline": self.headline,
                "hardware": self.hardware, "settings": self.settings,
                "peak_gflops": self.peak_gflops, "results": self.records}

    def save_json(self, path) -> Path:
        """Write :meth:`to_dict` as JSON (parent folders are created)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    def format_table(self) -> str:
        """The records as fixed-width text, one line per (shape, backend)."""
        head = (f"{'backend':<13} {'batch':>5} {'size':>5} {'median ms':>10} {'IQR ms':>8} "
                f"{'p90 ms':>8} {'n':>4} {'GFLOP/s':>8} {'% peak':>7} {'vs torch':>8} "
                f"{'setup ms':>9}")
        lines = [head, "-" * len(head)]

        def num(value, spec):
            return "-" if value is None else format(value, spec)

        for r in self.records:
            share = None if r["peak_share"] is None else 100 * r["peak_share"]
            lines.append(f"{r['backend']:<13} {r['batch']:>5} {r['size']:>5} "
                         f"{r['median_ms']:>10.2f} {r['iqr_ms']:>8.2f} {r['p90_ms']:>8.2f} "
                         f"{r['n']:>4} {num(r['gflops_per_s'], '>8.1f')} {num(share, '>7.1f')} "
                         f"{num(r['speedup'], '>7.2f') + 'x' if r['speedup'] else '       -'} "
                         f"{num(r['setup_ms'], '>9.0f')}")
        return "\n".join(lines)


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
            ax.legend(fontsize="small")
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"{result.model} on {result.hardware.get('gpu') or result.hardware['cpu']}")
    fig.tight_layout()
    return fig


def plot_speedup(result: BenchmarkResult):
    """Speedup over eager PyTorch per shape and backend; bars span the quartile band."""
    import matplotlib.pyplot as plt

    others = [b for b in result.backends if b != "torch-eager"]
    shapes = result.shapes
    fig, ax = plt.subplots(figsize=(min(12, max(5, 0.6 * len(shapes) * len(others) + 2)), 4))
    width = 0.8 / max(1, len(others))
    for i, backend in enumerate(others):
        rows = [next((r for r in result.records if r["backend"] == backend
                      and (r["batch"], r["size"]) == s), None) for s in shapes]
        value = np.array([r["speedup"] if r and r["speedup"] else np.nan for r in rows])
        low = np.array([r["speedup_low"] if r and r["speedup"] else np.nan for r in rows])
        high = np.array([r["speedup_high"] if r and r["speedup"] else np.nan for r in rows])
        ax.bar(np.arange(len(shapes)) + i * width, value, width, label=backend,
               yerr=[value - low, high - value], capsize=3)
    ax.axhline(1.0, color="black", linewidth=1)
    ax.set_xticks(np.arange(len(shapes)) + width * (len(others) - 1) / 2,
                  [f"batch {b}\n{s} px" for b, s in shapes])
    ax.set(ylabel="speedup over eager PyTorch (x)", title="> 1: faster than PyTorch")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- the bench command
