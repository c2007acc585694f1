"""Around int8 quantisation with ONNX Runtime's own tools: calibration data, the CPU, the verdict.

Covers: a calibration-data reader over real arrays for ``quantize_static``, what
this CPU offers for int8 arithmetic (VNNI and friends), a model's size on disk
including its external-data file, and a fair side-by-side table of size,
latency and accuracy for fp32 and int8 variants. Does not cover: the
quantisation calls themselves; notebook 04 shows ``quantize_dynamic`` and
``quantize_static`` in full.

Why int8 can be *slower*: an int8 model saves memory traffic and, on CPUs with
dot-product instructions (x86 VNNI ``vpdpbusd``, AMX, Arm ``sdot``/``i8mm``), does four
times the multiply-adds of an fp32 FMA per instruction. Without them, an x86 CPU needs
three AVX2 instructions (``vpmaddubsw``, ``vpmaddwd``, ``vpaddd``) for 32 int8
multiply-adds, barely more than fp32's 8 per FMA; the quantise/dequantise steps between
layers, and for dynamic quantisation the activations' ranges measured at every run, can
eat that gain and more.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["make_calibration_reader", "describe_int8_support", "model_size_bytes",
           "compare_variants", "format_variants"]


def make_calibration_reader(inputs, input_name: str, batch_size: int = 32):
    """A ``CalibrationDataReader`` that feeds ``inputs`` to ``quantize_static`` in batches.

    Args:
        inputs: real examples, an array-like of shape ``(n, ...)`` (torch tensors work).
        input_name: the ONNX model's input name (``session.get_inputs()[0].name``).
        batch_size: rows per calibration batch.

    Example:
        >>> reader = make_calibration_reader(x_train[:512], "x")  # doctest: +SKIP
        >>> quantize_static("fp32.onnx", "int8.onnx", reader)  # doctest: +SKIP
    """
    from onnxruntime.quantization import CalibrationDataReader

    array = np.ascontiguousarray(np.asarray(inputs, dtype=np.float32))
    if array.ndim < 1 or len(array) == 0:
        raise ValueError("calibration needs at least one example; pass real inputs of shape "
                         "(n, ...) drawn from the data the model will see")

    class _ArrayReader(CalibrationDataReader):
        def __init__(self):
            self._batches = iter([{input_name: array[i:i + batch_size]}
                                  for i in range(0, len(array), batch_size)])

        def get_next(self):
            return next(self._batches, None)

    return _ArrayReader()


def describe_int8_support(hardware: dict | None = None) -> dict:
    """What this CPU offers int8 arithmetic, as flags and one sentence.

    Args:
        hardware: a :func:`course_utils.profiling.describe_hardware` record
            (measured here if None).

    Returns:
        ``{"cpu", "dot_product_int8": bool, "flags": [...], "summary": str}``.
    """
    from .profiling import describe_hardware

    hardware = hardware or describe_hardware()
    present = [name for name, has in hardware["flags"].items() if has]
    dot = [f for f in ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm") if f in present]
    if not hardware.get("flags_known"):
        summary = (f"{hardware['cpu']}: the instruction-set flags cannot be read on this OS, "
                   "so whether int8 can pay off must be measured, not assumed")
    elif dot:
        summary = (f"{hardware['cpu']} has int8 dot-product instructions ({', '.join(dot)}): "
                   "static int8 models usually run faster than fp32 here")
    else:
        simd = [f for f in ("avx2", "fma", "avx512f", "asimd") if f in present]
        summary = (f"{hardware['cpu']} has {', '.join(simd) or 'no wide SIMD'} but no int8 "
                   "dot-product instructions (no VNNI, AMX or Arm dot product): int8 "
                   "arithmetic is barely faster than fp32 here, so int8 saves memory more "
                   "than time and can be slower")
    return {"cpu": hardware["cpu"], "dot_product_int8": bool(dot), "flags": present,
            "summary": summary}


def model_size_bytes(path) -> int:
    """Bytes on disk of an ONNX model, its external-data file(s) included."""
    import onnx
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no ONNX model at {path}; create it first")
    proto = onnx.load(str(path), load_external_data=False)
    locations = {ExternalDataInfo(t).location for t in proto.graph.initializer
                 if uses_external_data(t)}
    return path.stat().st_size + sum((path.parent / loc).stat().st_size for loc in locations)


def compare_variants(paths: dict, timing_input, *, eval_input=None, labels=None,
                     threads: int | None = None, rounds: int = 3, warmup: int = 2,
                     min_repeats: int = 10, max_repeats: int = 200, budget_s: float = 0.6,
                     input_name: str | None = None) -> list:
    """Size, latency and (optionally) accuracy of model variants, the first one the baseline.

    The variants are timed in interleaved rounds with matched threads (see
    :func:`course_utils.benchmark.fair_session_options`), so a change in machine
    load affects all of them alike.

    Args:
        paths: ``{"fp32": path, "int8 dynamic": path, ...}``; the first is the baseline.
        timing_input: the array every variant is timed on.
        eval_input, labels: if given, accuracy = share of arg-max predictions equal to labels.
        threads: intra-op threads (default: physical cores).
        rounds, warmup, min_repeats, max_repeats, budget_s: timing, per variant.
        input_name: the input's name (default: the model's first input).

    Returns:
        One dict per variant: ``variant``, ``size_bytes``, ``median_ms``, ``iqr_ms``,
        ``p90_ms``, ``n``, ``speedup`` (baseline median / this median), ``accuracy``.
    """
    import onnxruntime as ort

    from .benchmark import default_threads, fair_session_options, summarize_times, time_callable

    if not paths:
        raise ValueError("no variants to compare; pass {'fp32': path, 'int8 ...': path}")
    options = fair_session_options(threads or default_threads(), "all")
    sessions = {name: ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])
                for name, p in paths.items()}
    timing_input = np.asarray(timing_input, dtype=np.float32)
    samples = {name: [] for name in paths}
    for turn in range(max(1, rounds)):
        for name, session in sessions.items():
            feed = {input_name or session.get_inputs()[0].name: timing_input}
            timing = time_callable(lambda: session.run(None, feed),  # noqa: B023 (used now)
                                   warmup=warmup if turn == 0 else 1,
                                   min_repeats=math.ceil(min_repeats / rounds),
                                   max_repeats=math.ceil(max_repeats / rounds),
                                   budget_s=budget_s / rounds)
            samples[name] += timing.samples_ms
    rows = []
    for name, session in sessions.items():
        stats = summarize_times(samples[name])
        accuracy = None
        if eval_input is not None and labels is not None:
            feed = {input_name or session.get_inputs()[0].name:
                    np.asarray(eval_input, dtype=np.float32)}
            predicted = session.run(None, feed)[0].argmax(axis=1)
            accuracy = float((predicted == np.asarray(labels)).mean())
        rows.append({"variant": name, "size_bytes": model_size_bytes(paths[name]),
                     "median_ms": stats["median_ms"], "iqr_ms": stats["iqr_ms"],
                     "p90_ms": stats["p90_ms"], "n": stats["n"], "accuracy": accuracy})
    for row in rows:
        row["speedup"] = rows[0]["median_ms"] / row["median_ms"]
    return rows


def format_variants(rows: list) -> str:
    """The rows of :func:`compare_variants` as fixed-width text."""
    lines = [f"{'variant':<16} {'size':>9} {'median ms':>10} {'IQR ms':>8} {'n':>4} "
             f"{'vs first':>8} {'accuracy':>9}", "-" * 70]
    for r in rows:
        size = r["size_bytes"]
        size_text = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.1f} kB"
        accuracy = "-" if r["accuracy"] is None else f"{100 * r['accuracy']:.1f}%"
        lines.append(f"{r['variant']:<16} {size_text:>9} {r['median_ms']:>10.3f} "
                     f"{r['iqr_ms']:>8.3f} {r['n']:>4} {r['speedup']:>7.2f}x {accuracy:>9}")
    return "\n".join(lines)
