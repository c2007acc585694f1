"""Checks for notebook 04 (fair runtime comparisons, the student's own timer, int8 by hand).

Answers carry the student's own measurements, and every check recomputes the
expected value from those measurements; what can be measured again is: the
answers of 04.3 and 04.7 carry the model, session or compiled model that was
timed, and their extractors (run in the student's process right after the cell,
as the grader runs them) time those again, so a number that no run could give
is refused within a tolerance measured on a busy machine. A constant series is
not a timing. 04.4's ceiling is read from the live object and recomputed from
its own probes; 04.6's rows are matched with the files they were measured on.
The timer (04.2) is called on :class:`ScriptedWork`, whose calls cost times
drawn at grading time on a clock of its own, so the check knows every duration
exactly and no wall time is involved. The quantised file (04.5) is read
and run: its format and types from the graph, its accuracy on the held-out digits
against the same graph with the activations' quantisation taken out.
"""
from __future__ import annotations

import math
import random
import statistics

from ..answers import ScriptedWork, SessionOptionsFacts, register_answer, session_options_facts
from ..checks import CheckFailed, register
from ..sessions import INTRA_OP_SPINNING
from .export import answer_session, load_answer_onnx, load_digits_test

register_answer("04.1", "fair_options", extract=session_options_facts)
register_answer("04.2", "time_fairly", kind="function")
register_answer("04.5", "int8_path", kind="file")
# 04.3, 04.4, 04.6 and 04.7 are registered below, each beside the extractor that reads what the
# answer's live objects do (timed again, read back) in the student's process.

_new_rng = random.Random  # the timer's costs: drawn afresh at every check (tests seed it)


def _close(a, b, rel=1e-6):
    return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=1e-9)


def _all_close(values, expected, rel=1e-6):
    return len(values) == len(expected) and all(_close(v, e, rel) for v, e in zip(values, expected))


def _dict_with(answer, keys, what):
    if not isinstance(answer, dict) or not set(keys) <= set(answer):
        raise CheckFailed(f"expected a dict with the keys {sorted(keys)} ({what})")


def _number(answer, key):
    value = answer[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CheckFailed(f"{key!r} should be a number, got {type(value).__name__}")
    return float(value)


def _samples(answer, key):
    values = answer[key]
    try:
        values = [float(v) for v in values]
    except (TypeError, ValueError):
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


@register("04.1")
def _one_node_at_a_time(options):
    # found_options() starts in parallel mode: leaving execution_mode alone keeps it there
    if getattr(options, "execution_mode", None) == "ORT_PARALLEL":
        raise CheckFailed("the session would still run in parallel mode: its inter-op threads "
                          "compete with the intra-op threads for the cores, and a single-path "
                          "CNN has no branches to run side by side. Which mode runs one node "
                          "after the other?")


# -- 04.2: the student's own fair timer ----------------------------------------------------
def make_script(warmup: int, repeats: int, rng: random.Random) -> list:
    """Costs in seconds: slow first calls, ordinary runs with two outliers, then a trap.

    The warm-up calls cost 0.2-0.5 s (a cold start), the timed ones 10-30 ms with
    two descheduled runs of about 0.25 s, and every call after those costs 0.8 s,
    so a timer that calls too often or times its warm-up shows it in the samples.
    """
    cold = [rng.uniform(0.2, 0.5) for _ in range(warmup)]
    timed = [rng.uniform(0.010, 0.030) for _ in range(repeats)]
    for index in rng.sample(range(repeats), 2):
        timed[index] = rng.uniform(0.2, 0.3)
    return cold + timed + [0.8] * 5


def _iqr_candidates(samples):
    """The IQR under every common quantile definition (numpy's methods; statistics' two)."""
    import numpy as np

    methods = ("linear", "lower", "higher", "midpoint", "nearest", "weibull", "hazen",
               "median_unbiased", "normal_unbiased", "inverted_cdf", "averaged_inverted_cdf",
               "closest_observation", "interpolated_inverted_cdf")
    out = []
    for method in methods:
        q1, q3 = np.percentile(samples, [25, 75], method=method)
        out.append(float(q3 - q1))
    return out


def probe_timer(fn, warmup: int, repeats: int, rng: random.Random):
    """Call the student's timer on scripted work; return (result, expected samples, script)."""
    script = make_script(warmup, repeats, rng)
    work = ScriptedWork(script)
    try:
        result = fn(work, warmup, repeats, work.clock)
    except Exception as error:
        raise CheckFailed(f"calling time_fairly(fn, warmup, repeats, clock) failed ({error}); "
                          "it takes the four arguments in that order") from None
    _dict_with(result, {"samples_ms", "median_ms", "iqr_ms"}, "what time_fairly returns")
    expected = [1e3 * c for c in script[warmup:warmup + repeats]]
    return result, expected, script


def _judge_samples(samples, expected, script, warmup, repeats):
    if _all_close(samples, [e / 1e3 for e in expected]):
        raise CheckFailed("the samples are in seconds; the exercise asks for milliseconds")
    if len(samples) == warmup + repeats and _all_close(samples, [1e3 * c for c in script[:len(samples)]]):
        raise CheckFailed("the warm-up calls are among the samples: they are run, but not timed")
    if samples and _close(samples[0], 1e3 * script[0]):
        raise CheckFailed("the first sample took as long as the first (cold) call: call fn() "
                          "`warmup` times before the timed calls start")
    if len(samples) != repeats:
        raise CheckFailed(f"asked for {repeats} timed calls, the function returned {len(samples)} "
                          "samples: one sample per timed call")
    # The scripted calls take no real time: a clock of one's own reads microseconds (more for
    # a call descheduled on a busy machine), where the given clock's calls last 10 ms or more.
    if samples and statistics.median(abs(v) for v in samples) < 0.1 * min(expected):
        raise CheckFailed("the samples do not come from the clock the function was given: read "
                          "the time with `clock()`, the fourth argument, not a clock of your own")
    running = [sum(expected[:i + 1]) for i in range(len(expected))]
    if _all_close(samples, running):
        raise CheckFailed("each sample adds up every call so far: read the clock right before "
                          "and right after each call")
    if not _all_close(samples, expected):
        raise CheckFailed("the samples are not the durations of the timed calls: each one is "
                          "(clock after the call - clock before it), in ms")


def _judge_summary(result, samples):
    median_ms, iqr_ms = _number(result, "median_ms"), _number(result, "iqr_ms")
    if not _close(median_ms, statistics.median(samples)):
        if _close(median_ms, statistics.fmean(samples)):
            raise CheckFailed("'median_ms' is the mean of the samples; the exercise asks for "
                              "the statistic that two slow runs do not move")
        if _close(median_ms, samples[len(samples) // 2]):
            raise CheckFailed("'median_ms' is the middle sample in the order they were taken; "
                              "the samples must be sorted first")
        if _close(median_ms, min(samples)):
            raise CheckFailed("'median_ms' is the fastest run, a best case")
        raise CheckFailed("'median_ms' is not the median of the samples")
    candidates = _iqr_candidates(samples)
    if any(_close(iqr_ms, c, 1e-4) for c in candidates):
        return
    if any(_close(iqr_ms, -c, 1e-4) for c in candidates):
        raise CheckFailed("'iqr_ms' is negative: the upper quartile minus the lower one")
    if _close(iqr_ms, max(samples) - min(samples), 1e-4):
        raise CheckFailed("'iqr_ms' is the range (slowest - fastest), which the two outliers "
                          "set; the IQR spans the middle half of the runs")
    if len(samples) > 1 and any(_close(iqr_ms, f(samples), 1e-4)
                                for f in (statistics.stdev, statistics.pstdev)):
        raise CheckFailed("'iqr_ms' is the standard deviation; the IQR is the distance "
                          "between two quartiles")
    raise CheckFailed("'iqr_ms' is not the interquartile range of the samples (third "
                      "quartile - first quartile)")


@register("04.2")
def _times_fairly(fn):
    if not callable(fn):
        raise CheckFailed("pass the function itself: check('04.2', time_fairly)")
    rng = _new_rng()  # costs drawn now: no answer can know them in advance
    for warmup, repeats in ((2, 14), (4, 21)):
        result, expected, script = probe_timer(fn, warmup, repeats, rng)
        # emptiness by len(), not by truth: a numpy array of samples is a right answer too
        values = result["samples_ms"]
        samples = [] if hasattr(values, "__len__") and len(values) == 0 else _samples(result, "samples_ms")
        _judge_samples(samples, expected, script, warmup, repeats)
        _judge_summary(result, samples)


# -- 04.3: both backends timed with the student's timer, and the speedup ----------------------
#: The student's median must lie within this factor of the range of the runs timed again:
#: between the fastest re-measured run / 3 and the slowest x 3. Measured on a shared 2-core
#: machine: back-to-back medians of resnet18 moved by up to 1.9x at load 6-8 (ONNX Runtime; 1.5x
#: PyTorch), and at load 20-28 a 0.07 ms model's median fell 2.8x below the fastest of its runs
#: timed again; a made-up series, a batch of 8 or another model lands outside.
TIMED_AGAIN_FACTOR = 3.0
#: How the answer's model and session are timed again: (at least, at most) runs each, and the
#: time budget in seconds beyond the minimum.
TIMED_AGAIN_RUNS, TIMED_AGAIN_BUDGET_S = (5, 12), 1.5


def _run_again(calls: dict) -> dict:
    """Each call timed again with perf_counter in alternating turns (one untimed call each first)."""
    import time

    for fn in calls.values():
        fn()
    samples = {name: [] for name in calls}
    deadline = time.perf_counter() + TIMED_AGAIN_BUDGET_S
    least, most = TIMED_AGAIN_RUNS
    while min(map(len, samples.values())) < most and (
            min(map(len, samples.values())) < least or time.perf_counter() < deadline):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - start) * 1e3)
    return samples


def _first_line(error) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0][:160]}" if text else type(error).__name__


def timed_again(answer):
    """Extractor (the student's process, right after the cell): the answer's data, with its
    ``model`` and ``session`` replaced by what they do when timed again here.

    ``timed_again`` holds the session's input shape, intra-op threads and spinning entry,
    PyTorch's threads, and a few runs of each (``torch_ms``, ``ort_ms``), or ``missing`` (why
    they could not be timed). Whatever the answer put under that key is replaced.
    """
    if not isinstance(answer, dict):
        return answer
    data = {k: v for k, v in dict.items(answer) if k not in ("model", "session", "timed_again")}
    data["timed_again"] = _time_model_and_session(dict.get(answer, "model"), dict.get(answer, "session"))
    return data


def _time_model_and_session(model, session) -> dict:
    import onnxruntime as ort
    import torch

    if not isinstance(model, torch.nn.Module) or not isinstance(session, ort.InferenceSession):
        return {"missing": f"'model' is {type(model).__name__}, 'session' is {type(session).__name__}"}
    first = session.get_inputs()[0]
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in first.shape]
    options = session.get_session_options()
    try:
        spinning = options.get_session_config_entry(INTRA_OP_SPINNING)
    except Exception:  # absent entries raise
        spinning = None
    facts = {"input_shape": [d if isinstance(d, int) else str(d) for d in first.shape],
             "intra_op_num_threads": int(options.intra_op_num_threads), "spinning": spinning,
             "torch_threads": int(torch.get_num_threads())}
    x = torch.rand(*shape)
    feed = {first.name: x.numpy()}
    try:
        with torch.inference_mode():
            samples = _run_again({"torch": lambda: model(x), "ort": lambda: session.run(None, feed)})
    except Exception as error:
        return {**facts, "missing": f"running them on a batch of shape {tuple(shape)} failed "
                                    f"({_first_line(error)})"}
    return {**facts, "torch_ms": samples["torch"], "ort_ms": samples["ort"]}


register_answer("04.3", "speedup_answer", extract=timed_again)


@register("04.3")
def _speedup_from_medians(answer):
    _dict_with(answer, {"torch_ms", "ort_ms", "speedup"},
               "the two lists of samples and the speedup")
    torch_ms, ort_ms = _samples(answer, "torch_ms"), _samples(answer, "ort_ms")
    speedup = _number(answer, "speedup")
    if speedup <= 0:
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
    if _close(speedup, statistics.median(torch_ms) - statistics.median(ort_ms)):
        raise CheckFailed("that is a difference in ms; 'how many times faster' is a ratio")
    raise CheckFailed("the speedup does not follow from the two lists of samples; "
                      "compute one statistic per list, then their ratio")


def judge_timings(values, what: str) -> None:
    """Samples a clock could have given: several distinct values (a real run never repeats a
    perf_counter difference exactly, and varies from run to run)."""
    if len(set(values)) < max(3, len(values) // 2):
        raise CheckFailed(f"{what} repeats the same few values: that is not a timing. Every "
                          "timed call gives its own duration; keep each one your timer measured")


@register("04.3")
def _samples_are_timings(answer):
    for key in ("torch_ms", "ort_ms"):
        judge_timings(_samples(answer, key), f"'{key}'")


def _timed_again(answer) -> dict:
    again = answer.get("timed_again")
    if not isinstance(again, dict) or again.get("missing") or "torch_ms" not in again:
        why = again.get("missing") if isinstance(again, dict) else None
        raise CheckFailed("put what you timed into the answer as well, under 'model' (the PyTorch "
                          "model) and 'session' (the ONNX Runtime session), so that the check can "
                          "time them again" + (f" ({why})" if why else ""))
    return again


@register("04.3")
def _close_to_a_run_timed_again(answer):
    again = _timed_again(answer)
    for key, name in (("torch_ms", "PyTorch"), ("ort_ms", "ONNX Runtime")):
        yours = statistics.median(_samples(answer, key))
        runs = [float(v) for v in again[key]]
        low, high = min(runs) / TIMED_AGAIN_FACTOR, max(runs) * TIMED_AGAIN_FACTOR
        if not low <= yours <= high:
            raise CheckFailed(
                f"your {name} samples sit around {yours:.3g} ms, but the same model and session, timed again "
                f"right after your cell, took {min(runs):.3g}-{max(runs):.3g} ms a run: time the "
                "calls the exercise asks for (one image, the model and the session in the answer) "
                "and keep what your timer returns")


# -- 04.4: achieved GFLOP/s and the share of the measured ceiling --------------------------
#: A rate above the measured ceiling raises it (a disturbed probe only runs slower), but by this
#: factor at most: the ceiling's probes are the fastest dense kernels of this machine, and the
#: whole model (resnet18: 95% of one core's best on one thread, measured) cannot beat them twice.
MAX_SHARE_OF_CEILING = 2.0


def ceiling_facts(answer):
    """Extractor (the student's process): the answer's data, its ``ceiling`` read from the live
    :class:`course_utils.roofline.Ceiling` (its probes and rounds), or None when it is not one."""
    if not isinstance(answer, dict):
        return answer
    from ..roofline import Ceiling

    data = dict(dict.items(answer))
    ceiling = dict.get(answer, "ceiling")
    data["ceiling"] = ceiling.to_dict() if type(ceiling) is Ceiling else None
    return data


register_answer("04.4", "work_answer", extract=ceiling_facts)


def _ceiling_from_its_probes(ceiling) -> float:
    from ..roofline import ceiling_from_rates

    try:
        rates = {(row["probe"], int(row["threads"])): [float(v) for v in row["rounds"]]
                 for row in ceiling["probes"]}
        again = ceiling_from_rates(rates, int(ceiling["threads"]), cores=int(ceiling["cores"]))
    except (KeyError, TypeError, ValueError):
        raise CheckFailed("'ceiling' should be the Ceiling that measure_fp32_ceiling returned") from None
    return again.gflops


@register("04.4")
def _work_per_second(answer):
    keys = {"flops", "ort_ms", "ceiling", "median_ms", "peak_gflops", "gflops", "peak_share"}
    _dict_with(answer, keys, "your inputs (the FLOPs, your ONNX Runtime samples, the ceiling) "
                             "and what you computed from them")
    flops, median_ms, peak = (_number(answer, k) for k in ("flops", "median_ms", "peak_gflops"))
    if min(flops, median_ms, peak) <= 0:
        raise CheckFailed("'flops', 'median_ms' and 'peak_gflops' should be positive measurements")
    ort_ms = _samples(answer, "ort_ms")
    judge_timings(ort_ms, "'ort_ms'")
    if not _close(median_ms, statistics.median(ort_ms), rel=1e-6):
        raise CheckFailed("'median_ms' is not the median of your 'ort_ms' samples")
    ceiling = answer["ceiling"]
    if not isinstance(ceiling, dict):
        raise CheckFailed("'ceiling' should be the Ceiling that measure_fp32_ceiling returned "
                          "(the object itself, not a number or a copy)")
    if not _close(peak, ceiling.get("gflops", -1), rel=1e-6):
        raise CheckFailed("'peak_gflops' is not the measured ceiling in 'ceiling': the share "
                          "is of what this machine was measured to do")
    if not _close(peak, _ceiling_from_its_probes(ceiling), rel=1e-6):
        raise CheckFailed("the ceiling does not follow from its own probes: pass the Ceiling "
                          "that measure_fp32_ceiling returned, unchanged")
    expected = flops / (median_ms / 1e3) / 1e9
    gflops = _number(answer, "gflops")
    if not _close(gflops, expected, rel=1e-3):
        for factor in (1e3, 1e-3, 1e6, 1e-6):
            if _close(gflops, expected * factor, rel=1e-3):
                raise CheckFailed("off by a power of 1000: convert ms to s and FLOP to GFLOP")
        if _close(gflops, expected / 2, rel=1e-3):
            raise CheckFailed("half the expected value: the FLOP count already counts a "
                              "multiply-add as two operations")
        if _close(gflops, 1 / expected, rel=1e-3) or _close(gflops, 1e6 / expected, rel=1e-3):
            raise CheckFailed("upside down: work per second is the FLOPs divided by the time")
        raise CheckFailed("GFLOP/s = FLOP per run / seconds per run / 1e9")
    share = _number(answer, "peak_share")
    if _close(share, 100 * gflops / peak, rel=1e-3):
        raise CheckFailed("give the share as a fraction between 0 and 1, not a percentage")
    if _close(share, peak / gflops, rel=1e-3):
        raise CheckFailed("upside down: the share is your rate divided by the peak")
    if not _close(share, gflops / peak, rel=1e-3):
        raise CheckFailed("the share of the peak is your GFLOP/s divided by the peak GFLOP/s")


@register("04.4")
def _a_rate_this_machine_can_reach(answer):
    share = float(answer["peak_share"])
    if share > MAX_SHARE_OF_CEILING:
        raise CheckFailed(f"{share:.1f} times the fastest dense kernels measured on this machine: "
                          "a whole model cannot beat them by that much, so the FLOPs or the "
                          "timings are not those of one resnet18 run at batch 1")


# -- 04.5: static int8 by hand, read from the file ------------------------------------------
def read_quantisation(model) -> dict:
    """What a quantised graph is: its op types, activation and weight integer types, and
    whether every Conv weight has one scale per output channel."""
    from onnx import TensorProto

    inits = {t.name: t for t in model.graph.initializer}
    producers = {out: node for node in model.graph.node for out in node.output}
    ops = {node.op_type for node in model.graph.node}
    activations, weights, per_channel = set(), set(), []
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] not in inits and len(node.input) > 2:
            zero = inits.get(node.input[2])
            if zero is not None:
                activations.add(TensorProto.DataType.Name(zero.data_type).lower())
        if node.op_type == "Conv" and len(node.input) > 1:
            dq = producers.get(node.input[1])
            if dq is not None and dq.op_type == "DequantizeLinear" and dq.input[0] in inits:
                weights.add(TensorProto.DataType.Name(inits[dq.input[0]].data_type).lower())
                scale = inits.get(dq.input[1])
                per_channel.append(scale is not None and len(scale.dims) == 1 and scale.dims[0] > 1)
    return {"ops": ops, "activations": activations, "weights": weights,
            "per_channel": bool(per_channel) and all(per_channel), "conv_weights": len(per_channel)}


def without_activation_quantisation(model):
    """A copy of a QDQ model whose activations stay float: every QuantizeLinear ->
    DequantizeLinear pair on an activation becomes an Identity, or a Relu where its zero
    point is the lowest integer (the quantiser drops a Relu that such a pair implies);
    the weights stay int8."""
    import onnx
    from onnx import numpy_helper

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    inits = {t.name: t for t in copy.graph.initializer}
    producers = {out: node for node in copy.graph.node for out in node.output}
    nodes = []
    for node in copy.graph.node:
        source = producers.get(node.input[0]) if node.input else None
        if (node.op_type == "DequantizeLinear" and node.input[0] not in inits
                and source is not None and source.op_type == "QuantizeLinear"):
            zero = inits.get(source.input[2]) if len(source.input) > 2 else None
            zero = numpy_helper.to_array(zero) if zero is not None else None
            clips = zero is not None and zero.size == 1 and int(zero.reshape(-1)[0]) == (
                0 if zero.dtype.kind == "u" else -128)
            node = onnx.helper.make_node("Relu" if clips else "Identity", [source.input[0]],
                                         [node.output[0]])
        nodes.append(node)
    del copy.graph.node[:]
    copy.graph.node.extend(nodes)
    return copy


def digits_accuracy(model) -> float:
    """Share of the held-out digits an ONNX model (a ModelProto) labels right."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # the dead QuantizeLinear nodes of the float copy
    try:
        session = answer_session(model, options)
        x, y = load_digits_test()
        logits = session.run(None, {session.get_inputs()[0].name: x})[0]
    except Exception:  # onnxruntime's own exception types
        raise CheckFailed("the quantised model does not run on a batch of held-out digits "
                          "(batch, 1, 8, 8); quantise the digits CNN's exported file") from None
    if logits.shape != (len(x), 10):
        raise CheckFailed(f"the model's output has shape {logits.shape}, expected ({len(x)}, 10)")
    return float((np.argmax(logits, axis=1) == y).mean())


@register("04.5")
def _static_int8_digits(path):
    facts = read_quantisation(load_answer_onnx(path))
    if {"DynamicQuantizeLinear", "ConvInteger", "MatMulInteger"} & facts["ops"]:
        raise CheckFailed("this is dynamic quantisation (activation ranges measured at every "
                          "run); the exercise asks for static quantisation with calibration")
    if {"QLinearConv", "QLinearMatMul"} & facts["ops"]:
        raise CheckFailed("the graph holds integer operators (QLinearConv, QLinearMatMul): that "
                          "is the QOperator format; the exercise asks for the format with "
                          "QuantizeLinear/DequantizeLinear pairs around float operators")
    if "QuantizeLinear" not in facts["ops"] or not facts["conv_weights"]:
        raise CheckFailed("the file is not quantised: no QuantizeLinear node, or no Conv with "
                          "integer weights")
    if facts["activations"] != {"uint8"}:
        raise CheckFailed(f"the activations are quantised to {sorted(facts['activations'])}; "
                          "the exercise asks for unsigned 8-bit activations (U8S8)")
    if facts["weights"] != {"int8"}:
        raise CheckFailed(f"the weights are {sorted(facts['weights'])}; the exercise asks for "
                          "signed 8-bit weights (U8S8)")
    if not facts["per_channel"]:
        raise CheckFailed("the Conv weights have one scale for the whole tensor; the exercise "
                          "asks for one scale per output channel")
    model = load_answer_onnx(path)  # the weights are in the file itself (external data refused)
    accuracy = digits_accuracy(model)
    reference = digits_accuracy(without_activation_quantisation(model))
    if accuracy < reference - 0.01 - 1e-9:
        raise CheckFailed(f"{100 * accuracy:.1f}% of the held-out digits right, against "
                          f"{100 * reference:.1f}% with float activations: more than a point "
                          "lost, so the activation ranges are off; calibrate on real training "
                          "digits, preprocessed as the model sees them")


# -- 04.6: was int8 faster on this CPU? ----------------------------------------------------
_ROW_KEYS = {"variant", "median_ms", "q1_ms", "q3_ms", "iqr_ms", "n", "size_bytes"}


def file_sizes(answer):
    """Extractor (the student's process): the answer's data, with ``paths`` ({variant: file})
    replaced by each file's size in bytes as found on disk (None where there is no file), and
    ``measured_here``: whether ``rows`` is a table compare_variants returned in this process."""
    import os

    if not isinstance(answer, dict):
        return answer
    data = dict(dict.items(answer))
    paths = dict.get(answer, "paths")
    sizes = None
    if isinstance(paths, dict):
        sizes = {}
        for variant, path in list(dict.items(paths))[:50]:
            try:
                sizes[str(variant)] = os.path.getsize(os.fspath(path)) if os.path.isfile(path) else None
            except (TypeError, OSError):
                sizes[str(variant)] = None
    data["paths"] = sizes
    from ..quantization import measured_here

    data["measured_here"] = measured_here(dict.get(answer, "rows"))
    return data


register_answer("04.6", "int8_answer", extract=file_sizes)


def _bands_against_fp32(rows):
    """The variants whose quartile band lies wholly above fp32's (slower), wholly below it
    (faster), and the rest (ties: the bands overlap, within this run's noise)."""
    first = rows[0]
    low, high = float(first["q1_ms"]), float(first["q3_ms"])
    slower = {r["variant"] for r in rows[1:] if float(r["q1_ms"]) > high}
    faster = {r["variant"] for r in rows[1:] if float(r["q3_ms"]) < low}
    ties = {r["variant"] for r in rows[1:]} - slower - faster
    return slower, faster, ties


@register("04.6")
def _slower_variants(answer):
    _dict_with(answer, {"rows", "slower", "ties"}, "the quantisation table and your two lists")
    rows = answer["rows"]
    if not isinstance(rows, (list, tuple)) or len(rows) < 2 or not all(
            isinstance(r, dict) and {"variant", "median_ms", "q1_ms", "q3_ms"} <= set(r) for r in rows):
        raise CheckFailed("'rows' should be the table from compare_variants (a list of dicts), "
                          "fp32 first")
    for key in ("slower", "ties"):
        if not isinstance(answer[key], (list, tuple, set)):
            raise CheckFailed(f"'{key}' should be a list of variant names")
    given, given_ties = set(answer["slower"]), set(answer["ties"])
    unknown = (given | given_ties) - {r["variant"] for r in rows}
    if unknown:
        raise CheckFailed(f"{sorted(unknown)} are not variants in the table")
    if rows[0]["variant"] in given | given_ties:
        raise CheckFailed("the first row is the fp32 baseline itself")
    slower, faster, ties = _bands_against_fp32(rows)
    baseline = rows[0]["median_ms"]
    by_median = {r["variant"] for r in rows[1:] if r["median_ms"] > baseline}
    if given and given == faster:
        raise CheckFailed("those are the variants that are faster than fp32: the other way round")
    if given != slower and given == by_median and by_median != slower:
        raise CheckFailed("a median above fp32's is not 'slower' when the two quartile bands overlap: "
                          "that difference is within this run's noise (a tie); compare each band "
                          "(q1_ms to q3_ms) with fp32's")
    if given != slower:
        raise CheckFailed("list in 'slower' the variants whose whole quartile band (q1_ms to q3_ms) "
                          "lies above fp32's")
    if given_ties != ties:
        raise CheckFailed("list in 'ties' every other variant whose quartile band overlaps fp32's "
                          "(touching counts as overlapping)")


@register("04.6")
def _rows_measured_from_these_files(answer):
    rows = answer["rows"]
    for row in rows:
        if not _ROW_KEYS <= set(row):
            raise CheckFailed("'rows' should be compare_variants' table as it returned it: each row "
                              f"holds {sorted(_ROW_KEYS)}")
        q1, median, q3 = (float(row[k]) for k in ("q1_ms", "median_ms", "q3_ms"))
        if not (0 < q1 <= median <= q3 and _close(float(row["iqr_ms"]), q3 - q1, 1e-6)
                and int(row["n"]) >= 5 and q3 > q1):
            raise CheckFailed(f"the row {row['variant']!r} is not a summary of timed runs (quartiles "
                              "around the median, at least 5 runs, some spread)")
    sizes = answer.get("paths")
    if not isinstance(sizes, dict):
        raise CheckFailed("add 'paths' to the answer: the file of every variant in the table "
                          "({variant: path}), so that the check can read them")
    for row in rows:
        on_disk = sizes.get(str(row["variant"]))
        if on_disk is None or on_disk != row["size_bytes"]:
            raise CheckFailed(f"the row {row['variant']!r} does not describe the file given for it "
                              "in 'paths' (missing, or another size): the table must be measured "
                              "from these files")
    if answer.get("measured_here") is not True:
        raise CheckFailed("no table that compare_variants measured in this notebook has these numbers: "
                          "'rows' should be its table as it returned it (typed, edited or rounded "
                          "numbers are not a measurement)")


# -- 04.7: a contender of your own: OpenVINO on the same file, its precision named -------------
#: Precision names a row may use -> OpenVINO's name of the element type.
PRECISIONS = {"fp32": "f32", "f32": "f32", "bf16": "bf16", "fp16": "f16", "f16": "f16"}


def openvino_facts(answer):
    """Extractor (the student's process): the answer's data, with ``compiled`` (an OpenVINO
    ``CompiledModel``) replaced by what it reports and does here: the precision it runs
    (``INFERENCE_PRECISION_HINT`` read back), its threads and input shape, and a few runs
    timed again on one image; or ``missing`` (why not)."""
    if not isinstance(answer, dict):
        return answer
    data = {k: v for k, v in dict.items(answer) if k != "compiled"}
    data["compiled"] = _compiled_facts(dict.get(answer, "compiled"))
    return data


def _compiled_facts(compiled) -> dict:
    if type(compiled).__name__ != "CompiledModel" or not type(compiled).__module__.startswith("openvino"):
        return {"missing": f"'compiled' is {type(compiled).__name__}"}
    import numpy as np

    try:
        hint = compiled.get_property("INFERENCE_PRECISION_HINT")
        port = compiled.inputs[0]
        shape = [d.get_length() if d.is_static else None for d in port.get_partial_shape()]
        facts = {"precision": hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint),
                 "threads": int(compiled.get_property("INFERENCE_NUM_THREADS")),
                 "input_shape": shape}
        array = np.random.default_rng(0).random([d or 1 for d in shape], dtype=np.float32)
        request = compiled.create_infer_request()
        facts["samples_ms"] = _run_again({"openvino": lambda: request.infer({0: array})})["openvino"]
    except Exception as error:  # openvino's own exception types
        return {"missing": f"reading or running it failed ({_first_line(error)})"}
    return facts


register_answer("04.7", "openvino_row", extract=openvino_facts)


def _compiled(answer) -> dict:
    compiled = answer.get("compiled")
    if not isinstance(compiled, dict) or compiled.get("missing"):
        why = compiled.get("missing") if isinstance(compiled, dict) else None
        raise CheckFailed("put the model OpenVINO compiled (what compile_model returned) into the "
                          "answer under 'compiled', so that the check can read and run it"
                          + (f" ({why})" if why else ""))
    return compiled


@register("04.7")
def _precision_named_is_the_one_that_ran(answer):
    _dict_with(answer, {"compiled", "precision", "threads", "samples_ms"},
               "what you compiled, the precision it runs in, its threads and your timer's samples")
    named = answer["precision"]
    if not isinstance(named, str) or named.lower() not in PRECISIONS:
        raise CheckFailed(f"'precision' should name a precision, one of {sorted(PRECISIONS)}")
    compiled = _compiled(answer)
    ran = compiled["precision"]
    if PRECISIONS[named.lower()] != ran:
        raise CheckFailed(f"you named {named}, but the compiled model reports that it runs in "
                          f"{ran}: OpenVINO chooses a precision for the CPU it runs on unless "
                          "you pin one when you compile")
    if ran != "f32":
        raise CheckFailed(f"the row runs in {ran}; the exercise asks for the fp32 row, the one "
                          "that compares with ONNX Runtime's fp32 run")


@register("04.7")
def _the_same_file_and_threads(answer):
    compiled = _compiled(answer)
    shape = compiled["input_shape"]
    if list(shape[1:]) != [3, 224, 224]:
        raise CheckFailed(f"the compiled model takes inputs of shape {shape}; compile the file "
                          "the other rows run (resnet18 at 224 px)")
    threads = answer["threads"]
    if compiled["threads"] != threads:
        raise CheckFailed(f"OpenVINO runs with {compiled['threads']} threads, the other rows with "
                          f"{threads} ('threads' in your answer): match them, as for ONNX Runtime")


@register("04.7")
def _openvino_timed(answer):
    samples = _samples(answer, "samples_ms")
    judge_timings(samples, "'samples_ms'")
    runs = [float(v) for v in _compiled(answer)["samples_ms"]]
    yours = statistics.median(samples)
    if not min(runs) / TIMED_AGAIN_FACTOR <= yours <= max(runs) * TIMED_AGAIN_FACTOR:
        raise CheckFailed(f"your samples sit around {yours:.3g} ms, but the compiled model, timed again "
                          f"right after your cell, took {min(runs):.3g}-{max(runs):.3g} ms a run: "
                          "time one inference of one image and keep what your timer returns")
