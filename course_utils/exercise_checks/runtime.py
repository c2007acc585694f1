"""Checks for notebook 04 (a fair runtime comparison of PyTorch and ONNX Runtime).

Answers carry the student's own measurements, and every check recomputes the
expected value from those measurements: nothing here depends on how fast the
machine is.
"""
from __future__ import annotations

import math
import statistics

from ..answers import SessionOptionsFacts, register_answer, session_options_facts
from ..checks import CheckFailed, register
from ..sessions import INTRA_OP_SPINNING

register_answer("04.1", "fair_options", extract=session_options_facts)
register_answer("04.2", "speedup_answer")
register_answer("04.3", "work_answer")
register_answer("04.4", "int8_answer")


def _close(a, b, rel=1e-6):
    return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=1e-12)


def _dict_with(answer, keys, what):
    if not isinstance(answer, dict) or not set(keys) <= set(answer):
        raise CheckFailed(f"expected a dict with the keys {sorted(keys)} ({what})")


def _samples(answer, key):
    values = answer[key]
    try:
        values = [float(v) for v in values]
    except TypeError:
        raise CheckFailed(f"{key!r} should be the list of timings in ms, one per run") from None
    if not values or min(values) <= 0:
        raise CheckFailed(f"{key!r} should hold positive timings in ms, one per timed run")
    return values


# -- 04.1: session options matched to PyTorch --------------------------------------------
@register("04.1")
def _matched_threads(options):
    # options: the facts read from the student's SessionOptions (see answers.py)
    if not isinstance(options, SessionOptionsFacts):
        raise CheckFailed(f"expected an onnxruntime.SessionOptions, got {type(options).__name__}")
    if options.intra_op_num_threads == 0:
        raise CheckFailed("intra_op_num_threads is 0, which lets ONNX Runtime choose; "
                          "set it to the number PyTorch uses")
    if options.intra_op_num_threads != options.torch_threads:
        raise CheckFailed(f"ONNX Runtime would use {options.intra_op_num_threads} intra-op "
                          f"threads but PyTorch uses {options.torch_threads}; match them")
    try:
        spinning = options.get_session_config_entry(INTRA_OP_SPINNING)
    except RuntimeError:
        spinning = None
    if spinning != "0":
        raise CheckFailed("idle ONNX Runtime threads still spin; look at the session config "
                          f"entry '{INTRA_OP_SPINNING}'")


# -- 04.2: the speedup from two medians --------------------------------------------------
@register("04.2")
def _speedup_from_medians(answer):
    _dict_with(answer, {"torch_ms", "ort_ms", "speedup"},
               "the two lists of samples and the speedup")
    torch_ms, ort_ms = _samples(answer, "torch_ms"), _samples(answer, "ort_ms")
    speedup = answer["speedup"]
    if not isinstance(speedup, (int, float)) or isinstance(speedup, bool) or speedup <= 0:
        raise CheckFailed("'speedup' should be a positive number")
    expected = statistics.median(torch_ms) / statistics.median(ort_ms)
    if _close(speedup, expected):
        return
    if _close(speedup, 1 / expected):
        raise CheckFailed("upside down: a speedup above 1 should mean ONNX Runtime is faster, "
                          "so PyTorch's time goes on top")
    if _close(speedup, statistics.fmean(torch_ms) / statistics.fmean(ort_ms)):
        raise CheckFailed("that is the ratio of the means; one descheduled run moves a mean a lot. "
                          "Which statistic shrugs off such outliers?")
    if _close(speedup, min(torch_ms) / min(ort_ms)):
        raise CheckFailed("that is the ratio of the fastest runs, which is a best case, not a "
                          "typical run")
    raise CheckFailed("the speedup does not follow from the two lists of samples; "
                      "compute one statistic per list, then their ratio")


# -- 04.3: achieved GFLOP/s and the share of the peak -------------------------------------
@register("04.3")
def _work_per_second(answer):
    keys = {"flops", "median_ms", "peak_gflops", "gflops", "peak_share"}
    _dict_with(answer, keys, "the inputs you used and your two results")
    flops, median_ms, peak = (float(answer[k]) for k in ("flops", "median_ms", "peak_gflops"))
    if min(flops, median_ms, peak) <= 0:
        raise CheckFailed("'flops', 'median_ms' and 'peak_gflops' should be positive measurements")
    expected = flops / (median_ms / 1e3) / 1e9
    gflops = float(answer["gflops"])
    if not _close(gflops, expected, rel=1e-3):
        for factor in (1e3, 1e-3, 1e6, 1e-6):
            if _close(gflops, expected * factor, rel=1e-3):
                raise CheckFailed("off by a power of 1000: convert ms to s and FLOP to GFLOP")
        if _close(gflops, expected / 2, rel=1e-3):
            raise CheckFailed("half the expected value: the FLOP count already counts a "
                              "multiply-add as two operations")
        raise CheckFailed("GFLOP/s = FLOP per run / seconds per run / 1e9")
    share = float(answer["peak_share"])
    if _close(share, 100 * gflops / peak, rel=1e-3):
        raise CheckFailed("give the share as a fraction between 0 and 1, not a percentage")
    if not _close(share, gflops / peak, rel=1e-3):
        raise CheckFailed("the share of the peak is your GFLOP/s divided by the peak GFLOP/s")


# -- 04.4: was int8 faster on this CPU? ----------------------------------------------------
@register("04.4")
def _slower_variants(answer):
    _dict_with(answer, {"rows", "slower"}, "the quantisation table and your list")
    rows = answer["rows"]
    if not isinstance(rows, (list, tuple)) or len(rows) < 2 or not all(
            isinstance(r, dict) and {"variant", "median_ms"} <= set(r) for r in rows):
        raise CheckFailed("'rows' should be the table from compare_variants (a list of dicts), "
                          "fp32 first")
    if not isinstance(answer["slower"], (list, tuple, set)):
        raise CheckFailed("'slower' should be a list of variant names")
    baseline = rows[0]["median_ms"]
    expected = {r["variant"] for r in rows[1:] if r["median_ms"] > baseline}
    given = set(answer["slower"])
    unknown = given - {r["variant"] for r in rows}
    if unknown:
        raise CheckFailed(f"{sorted(unknown)} are not variants in the table")
    if rows[0]["variant"] in given:
        raise CheckFailed("the first row is the fp32 baseline itself")
    if given != expected:
        raise CheckFailed("compare each int8 variant's median latency with the fp32 row's median; "
                          "list the variants whose median is larger")


