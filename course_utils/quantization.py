"""Around int8 quantisation with ONNX Runtime's own tools: recipes, calibration data, the verdict.

Covers: the quantisation recipes worth measuring (static QDQ or QOperator, uint8
or int8 activations, ``reduce_range``, and dynamic quantisation as the
counter-example for CNNs) as data that maps onto ``quantize_static`` /
``quantize_dynamic`` arguments, a calibration-data reader over real arrays, what
this CPU offers for int8 arithmetic (VNNI and friends), a model's size on disk,
a fair side-by-side table of size, latency and accuracy, the choice of the
recipe that wins, and sentences computed from that table. Does not cover: the
quantisation calls in the lesson; notebook 04 shows ``quantize_static`` in full.

What ONNX Runtime's quantisation guide advises: on the CPU it runs U8U8, U8S8 and
S8S8; "S8S8 with QDQ is the default setting and balances performance and
accuracy. It should be the first choice", while "S8S8 with QOperator will be slow
on x86-64 CPUs and should be avoided in general". On x86-64 with AVX2/AVX-512 its
U8S8 kernels use ``VPMADDUBSW``, whose 16-bit sums can saturate without VNNI, so
the guide pairs U8S8 with ``reduce_range`` (7-bit weights) on such CPUs and says
VNNI machines do not need it. Dynamic quantisation computes every activation's
scale and zero point at run time, which the guide says increases the cost of
inference; it recommends static quantisation for CNNs and dynamic for RNNs and
transformers. "ONNX Runtime quantization on GPU only supports S8S8", and TensorRT
takes only symmetric int8 (zero points 0): uint8 activations are a CPU recipe.
The file formats: QDQ wraps float operators in the standard ``QuantizeLinear`` /
``DequantizeLinear`` pairs, which any ONNX runtime reads and each fuses into its
own int8 kernels (or not); QOperator writes integer operators, standard ONNX ones
(``QLinearConv``, ``QLinearMatMul``) and ONNX Runtime's contrib ones
(``com.microsoft`` ``QLinearAdd``, ``QGemm``, ``QLinearGlobalAveragePool``...), which tie the
file to ONNX Runtime. Which recipe is fastest on a given CPU is measured here,
not assumed: recipes whose quartile bands overlap are a tie, and a tie goes to
the recipe first in :data:`PREFERENCE`.
"""
from __future__ import annotations


import numpy as np

from .formatting import format_table
from .hardware import INT8_DOT_FLAGS, describe_hardware
from .onnx_files import model_size_bytes
from .sessions import default_threads, fair_session_options
from .timing import summarize_times, take_turns

__all__ = ["INT8_RECIPES", "PREFERENCE", "TIE_RULE", "ties", "recipe_kwargs", "representative_images", "make_calibration_reader", "describe_int8_support",
           "compare_variants", "measured_here", "format_variants", "choose_recipe",
           "summarize_int8"]

#: The recipes worth measuring, as data. Static recipes quantise weights per channel
#: (int8, symmetric) and calibrate the activations; ``dynamic`` quantises activations
#: at run time (Conv becomes ConvInteger, MatMul becomes MatMulInteger).
INT8_RECIPES = {
    "QDQ U8S8": {"format": "QDQ", "activations": "uint8", "reduce_range": False},
    "QDQ U8S8 reduce_range": {"format": "QDQ", "activations": "uint8", "reduce_range": True},
    "QDQ S8S8": {"format": "QDQ", "activations": "int8", "reduce_range": False},
    "QOperator U8S8": {"format": "QOperator", "activations": "uint8", "reduce_range": False},
    "QOperator S8S8": {"format": "QOperator", "activations": "int8", "reduce_range": False},
    "dynamic": {"format": "dynamic", "activations": "uint8", "reduce_range": False},
}


#: Ties go to the first of these: fp32 before every int8 recipe it ties with; QDQ before
#: QOperator (QDQ's operators are standard ONNX, and any runtime reads them); S8S8 before
#: U8S8 (the guide's default, and the only int8 form ONNX Runtime's GPU providers and
#: TensorRT run); full-range weights before reduce_range; static before dynamic.
PREFERENCE = ("fp32", "QDQ S8S8", "QDQ U8S8", "QDQ U8S8 reduce_range", "QOperator U8S8",
              "QOperator S8S8", "dynamic")


#: The tie rule of :func:`choose_recipe` in words, as its reasons quote it.
TIE_RULE = ("fp32 before int8; QDQ, standard ONNX operators, before QOperator; S8S8, the "
            "guide's default and the int8 form GPUs and TensorRT also run, before U8S8; "
            "full-range weights before reduce_range; static before dynamic")


def recipe_kwargs(recipe) -> dict:
    """Keyword arguments of ``quantize_static`` (or ``quantize_dynamic``) for one recipe.

    Args:
        recipe: a name from :data:`INT8_RECIPES` or such a dict.

    Example:
        >>> sorted(recipe_kwargs("QDQ U8S8"))
        ['activation_type', 'per_channel', 'quant_format', 'reduce_range', 'weight_type']
    """
    from onnxruntime.quantization import QuantFormat, QuantType

    if isinstance(recipe, str):
        if recipe not in INT8_RECIPES:
            raise KeyError(f"unknown recipe {recipe!r}; choose from {list(INT8_RECIPES)}")
        recipe = INT8_RECIPES[recipe]
    if recipe["format"] == "dynamic":
        return {"weight_type": QuantType.QInt8, "reduce_range": recipe["reduce_range"]}
    return {"quant_format": getattr(QuantFormat, recipe["format"]),
            "activation_type": QuantType.QUInt8 if recipe["activations"] == "uint8"
            else QuantType.QInt8,
            "weight_type": QuantType.QInt8, "per_channel": True,
            "reduce_range": recipe["reduce_range"]}


def representative_images(count: int, size: int = 224, seed: int = 0):
    """Images as an ImageNet model sees them, for calibration where no real ones are at hand.

    Smooth colour fields (bilinear up-sampling of 7x7 noise), scaled to [0, 1]
    and normalised with ImageNet's channel means and deviations: the value
    ranges a torchvision classifier's activations are calibrated for, unlike
    uniform noise. Returns a float32 array ``(count, 3, size, size)``.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, 7, 7, generator=generator)  # (n, 3, 7, 7)
    images = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear")
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return ((images - mean) / std).numpy()


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
        hardware: a :func:`course_utils.hardware.describe_hardware` record
            (measured here if None).

    Returns:
        ``{"cpu", "dot_product_int8": bool, "flags": [...], "summary": str}``.
    """
    hardware = hardware or describe_hardware()
    present = [name for name, has in hardware["flags"].items() if has]
    dot = [f for f in INT8_DOT_FLAGS if f in present]
    if not hardware.get("flags_known"):
        summary = (f"{hardware['cpu']}: the instruction-set flags cannot be read on this OS, "
                   "so whether int8 can pay off must be measured, not assumed")
    elif dot:
        summary = (f"{hardware['cpu']} has int8 dot-product instructions ({', '.join(dot)}): "
                   "one instruction does four int8 multiply-adds per 32-bit lane, so the "
                   "right static recipe can beat fp32; reduce_range is not needed here")
    else:
        simd = [f for f in ("avx2", "fma", "avx512f", "asimd") if f in present]
        summary = (f"{hardware['cpu']} has {', '.join(simd) or 'no wide SIMD'} but no int8 "
                   "dot-product instructions (no VNNI, AMX or Arm dot product): int8 "
                   "multiply-adds take three instructions, which can saturate, so "
                   "per-channel U8S8 needs reduce_range here; whether int8 pays must be "
                   "measured")
    return {"cpu": hardware["cpu"], "dot_product_int8": bool(dot), "flags": present,
            "summary": summary}


def compare_variants(paths: dict, timing_input, *, eval_input=None, labels=None,
                     threads: int | None = None, round_runs: int = 5, warmup: int = 2,
                     min_repeats: int = 10, max_repeats: int = 200, budget_s: float = 0.6,
                     input_name: str | None = None) -> list:
    """Size, latency and (optionally) accuracy of model variants, the first one the baseline.

    The variants take turns of ``round_runs`` runs with matched threads (see
    :func:`course_utils.sessions.fair_session_options`), so a change in machine
    load affects all of them alike.

    Args:
        paths: ``{"fp32": path, "int8 dynamic": path, ...}``; the first is the baseline.
        timing_input: the array every variant is timed on.
        eval_input, labels: if given, accuracy = share of arg-max predictions equal to labels.
        threads: intra-op threads (default: physical cores).
        round_runs, warmup, min_repeats, max_repeats, budget_s: timing, per variant.
        input_name: the input's name (default: the model's first input).

    Returns:
        One dict per variant: ``variant``, ``size_bytes``, ``median_ms``, ``iqr_ms``,
        ``p90_ms``, ``n``, ``speedup`` (baseline median / this median), ``accuracy``.
    """
    import onnxruntime as ort

    if not paths:
        raise ValueError("no variants to compare; pass {'fp32': path, 'int8 ...': path}")
    options = fair_session_options(threads or default_threads(), "all")
    sessions = {name: ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])
                for name, p in paths.items()}
    timing_input = np.asarray(timing_input, dtype=np.float32)
    calls = {}
    for name, session in sessions.items():
        feed = {input_name or session.get_inputs()[0].name: timing_input}
        calls[name] = ((lambda s=session, f=feed: s.run(None, f)), None)
    cfg = {"warmup": warmup, "budget_s": budget_s, "min_repeats": min_repeats,
           "max_repeats": max_repeats, "round_runs": max(1, round_runs), "headline_samples": 0}
    samples, _, _ = take_turns(calls, cfg, headline=False)
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
                     "q1_ms": stats["q1_ms"], "q3_ms": stats["q3_ms"],
                     "p90_ms": stats["p90_ms"], "n": stats["n"], "accuracy": accuracy})
    for row in rows:
        row["speedup"] = rows[0]["median_ms"] / row["median_ms"]
    record_measured_table(rows)
    return rows


# The tables compare_variants returned in this process, by fingerprint: what lets a check tell
# a measured table from one typed, edited or rounded (exercise 04.6 hands its rows back).
_MEASURED_TABLES: list = []
_MEASURED_KEEP = 64


def _table_fingerprint(rows) -> tuple:
    return tuple((str(r["variant"]), int(r["size_bytes"]), float(r["q1_ms"]), float(r["median_ms"]),
                  float(r["q3_ms"]), int(r["n"])) for r in rows)


def record_measured_table(rows) -> None:
    """Record ``rows`` as a table measured in this process (:func:`compare_variants` calls it
    on every table it returns; a test standing in for a long measurement may too)."""
    _MEASURED_TABLES.append(_table_fingerprint(rows))
    del _MEASURED_TABLES[:-_MEASURED_KEEP]


def measured_here(rows) -> bool:
    """Whether ``rows`` is, number for number, a table :func:`compare_variants` returned in this
    process (a copy of its list or of its dicts counts; an edited or rounded value does not)."""
    try:
        return _table_fingerprint(list(rows)) in _MEASURED_TABLES
    except (TypeError, KeyError, ValueError, AttributeError):
        return False


def format_variants(rows: list) -> str:
    """The rows of :func:`compare_variants` as fixed-width text."""
    cells = []
    for r in rows:
        size = r["size_bytes"]
        size_text = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.1f} kB"
        accuracy = "-" if r["accuracy"] is None else f"{100 * r['accuracy']:.1f}%"
        cells.append([r["variant"], size_text, f"{r['median_ms']:.3f}", f"{r['iqr_ms']:.3f}",
                      r["n"], f"{r['speedup']:.2f}x", accuracy])
    return "\n".join(format_table(
        ["variant", "size", "median ms", "IQR ms", "n", "vs first", "accuracy"], cells,
        align="<>>>>>>", widths=[22, 9, 10, 8, 4, 8, 9], rule="-"))


def _close_enough(row, baseline, tolerance):
    if row.get("accuracy") is None or baseline.get("accuracy") is None:
        return None  # not measured
    return row["accuracy"] >= baseline["accuracy"] - tolerance


def _band(row):
    """A row's quartile band in ms (median +- half the IQR where the quartiles are absent)."""
    if row.get("q1_ms") is not None and row.get("q3_ms") is not None:
        return row["q1_ms"], row["q3_ms"]
    half = (row.get("iqr_ms") or 0.0) / 2
    return row["median_ms"] - half, row["median_ms"] + half


def ties(first, second) -> bool:
    """Do two rows' quartile bands overlap (neither is clearly faster on this run)?"""
    (low_a, high_a), (low_b, high_b) = _band(first), _band(second)
    return low_a <= high_b and low_b <= high_a


def _rank(name):
    return PREFERENCE.index(name) if name in PREFERENCE else len(PREFERENCE)


def choose_recipe(rows: list, *, dot_product_int8: bool | None, tolerance: float = 0.01) -> dict:
    """The recipe to ship: the fastest int8 variant that keeps the accuracy, or fp32.

    A variant is eligible when its accuracy (if measured) is within ``tolerance``
    of the fp32 row. On a CPU without int8 dot-product instructions a U8S8
    recipe without ``reduce_range`` is eligible only if its accuracy was
    measured and held (ONNX Runtime's guide: its 16-bit sums can saturate).
    Rows whose quartile bands overlap the fastest eligible row's are a tie: the
    difference is within this run's noise, and the tie goes to the recipe first
    in :data:`PREFERENCE` (fp32; QDQ S8S8, the guide's default and the int8 form
    GPUs and TensorRT also run; QDQ U8S8; QOperator; dynamic). fp32 wins when no
    eligible variant is clearly faster than it. The choice is on this run's speed
    and, where measured, accuracy: with random weights or without an accuracy it
    names the fastest recipe here, not one to ship.

    Args:
        rows: :func:`compare_variants` rows, fp32 first; names from :data:`INT8_RECIPES`
            (other names are judged on speed and accuracy alone, after the known ones).
        dot_product_int8: whether the CPU has VNNI/AMX/Arm dot product (None: unknown,
            treated as absent).
        tolerance: accuracy loss allowed, as a fraction (0.01 = one point).

    Returns:
        ``{"winner", "speedup", "median_ms", "fastest", "tied": [names], "reason",
        "eligible": [names], "excluded": {name: why}}``; ``fastest`` is the
        eligible row with the lowest median, ``tied`` the rows within its band.

    Example:
        >>> rows = [{"variant": "fp32", "median_ms": 10.0, "iqr_ms": 0.5},
        ...         {"variant": "QOperator U8S8", "median_ms": 5.6, "iqr_ms": 0.4},
        ...         {"variant": "QDQ U8S8", "median_ms": 5.7, "iqr_ms": 0.4}]
        >>> choose_recipe(rows, dot_product_int8=True)["winner"]
        'QDQ U8S8'
    """
    if len(rows) < 2:
        raise ValueError("need the fp32 row and at least one int8 row to choose a recipe")
    baseline, excluded, eligible = rows[0], {}, []
    for row in rows[1:]:
        recipe = INT8_RECIPES.get(row["variant"], {})
        held = _close_enough(row, baseline, tolerance)
        if held is False:
            excluded[row["variant"]] = (f"accuracy {100 * row['accuracy']:.1f}% is more than "
                                        f"{100 * tolerance:g} point(s) below fp32's "
                                        f"{100 * baseline['accuracy']:.1f}%")
        elif (not dot_product_int8 and recipe.get("activations") == "uint8"
              and recipe.get("format") in ("QDQ", "QOperator") and not recipe["reduce_range"]
              and held is None):
            excluded[row["variant"]] = ("U8S8 without reduce_range can saturate on a CPU "
                                        "without VNNI, and no accuracy was measured")
        else:
            eligible.append(row)
    fastest = min(eligible, key=lambda r: r["median_ms"], default=None)
    if fastest is None or fastest["median_ms"] >= baseline["median_ms"]:
        best, tied = baseline, []
        reason = "no eligible int8 recipe is faster than fp32"
    else:
        tied = [r for r in [baseline, *eligible] if r is not fastest and ties(r, fastest)]
        best = min([fastest, *tied], key=lambda r: _rank(r["variant"]))
        if best is baseline:
            reason = (f"the fastest int8 recipe, {fastest['variant']}, is within fp32's "
                      "quartile band: no int8 recipe is clearly faster, so fp32 stays")
        elif best is fastest:
            reason = (f"{best['variant']} is the fastest" + (
                f"; {', '.join(r['variant'] for r in tied)} tie with it, and it comes first "
                f"in the tie rule ({TIE_RULE})" if tied else ", clear of the others' bands"))
        else:
            reason = (f"{fastest['variant']} has the lowest median, but {best['variant']} is "
                      f"within its quartile band: a tie, which goes by the rule {TIE_RULE}")
    return {"winner": best["variant"], "speedup": baseline["median_ms"] / best["median_ms"],
            "median_ms": best["median_ms"],
            "fastest": fastest["variant"] if fastest else baseline["variant"],
            "tied": [r["variant"] for r in tied], "reason": reason,
            "eligible": [r["variant"] for r in eligible], "excluded": excluded}


def _times(speedup: float) -> str:
    return f"{speedup:.2f}x as fast as" if speedup >= 1 else f"{1 / speedup:.2f}x slower than"


def summarize_int8(rows: list, choice: dict) -> list:
    """Sentences about a quantisation table, each computed from its rows.

    Args:
        rows: :func:`compare_variants` rows, fp32 first.
        choice: :func:`choose_recipe` of the same rows.

    Returns:
        A list of sentences: the verdict, then the comparisons the table allows
        (uint8 against int8 activations, QDQ against QOperator, reduce_range,
        dynamic against the best static recipe).
    """
    by_name = {r["variant"]: r for r in rows}
    base = rows[0]
    if choice["winner"] == base["variant"]:
        best = max(rows[1:], key=lambda r: r["speedup"])
        out = [f"No int8 recipe pays here: the fastest, {best['variant']}, runs "
               f"{_times(best['speedup'])} {base['variant']} ({best['median_ms']:.2f} ms against "
               f"{base['median_ms']:.2f} ms), so {base['variant']} stays"
               + (f" ({choice['reason']})." if choice.get("reason") else ".")]
    else:
        win = by_name[choice["winner"]]
        if win.get("accuracy") is None:
            lead = (f"On speed alone (no accuracy measured on this model: check it on real "
                    f"data before shipping int8), this run picks {win['variant']}")
            accuracy = ""
        else:
            lead = f"On this run's speed and accuracy the recipe to pick is {win['variant']}"
            accuracy = (f", accuracy {100 * win['accuracy']:.1f}% against "
                        f"{100 * base['accuracy']:.1f}%")
        out = [f"{lead}: {win['median_ms']:.2f} ms against "
               f"{base['median_ms']:.2f} ms for {base['variant']}, "
               f"{_times(win['speedup'])} it{accuracy} ({choice.get('reason', 'the fastest')})."]
    pairs = (("QDQ U8S8", "QDQ S8S8", "uint8 activations (U8S8) against int8 (S8S8), QDQ"),
             ("QOperator U8S8", "QOperator S8S8", "U8S8 against S8S8, QOperator"),
             ("QDQ U8S8", "QOperator U8S8", "QDQ against QOperator, U8S8"),
             ("QDQ U8S8 reduce_range", "QDQ U8S8", "reduce_range against full-range weights"))
    for first, second, what in pairs:
        if first in by_name and second in by_name:
            ratio = by_name[second]["median_ms"] / by_name[first]["median_ms"]
            out.append(f"{what}: {by_name[first]['median_ms']:.2f} ms against "
                       f"{by_name[second]['median_ms']:.2f} ms, the first "
                       f"{_times(ratio)} the second.")
    if "dynamic" in by_name:
        dyn = by_name["dynamic"]
        static = [r for r in rows[1:] if r["variant"] != "dynamic"]
        best = max(static, key=lambda r: r["speedup"], default=None)
        tail = (f"; the best static recipe ({best['variant']}) is "
                f"{dyn['median_ms'] / best['median_ms']:.1f}x faster than dynamic"
                if best and best["median_ms"] < dyn["median_ms"] else "")
        out.append(f"Dynamic quantisation runs {_times(dyn['speedup'])} "
                   f"{base['variant']}{tail}.")
    return out
