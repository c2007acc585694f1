"""Hidden checks for notebook 04 (runtime comparison) and their test data: grader only, never released."""
from __future__ import annotations

import statistics
import time

import numpy as np

from ...checks import CheckFailed, register
from ...exercise_checks.export import load_answer_onnx
from ...exercise_checks.runtime import digits_accuracy
from ..cases import Cases, Right, Wrong, built, context_item, digits_cnn


@register("04.1", hidden=True)
def _sequential_execution(options):
    # inter_op_num_threads only matters in parallel mode, where its pool competes for cores
    if getattr(options, "execution_mode", None) != "ORT_SEQUENTIAL":
        raise CheckFailed("use sequential execution: a single-path CNN gains nothing from "
                          "running branches in parallel, and the parallel mode's inter-op "
                          "threads compete with the intra-op threads for the cores")


@register("04.3", hidden=True)
def _enough_samples(answer):
    if min(len(answer["torch_ms"]), len(answer["ort_ms"])) < 10:
        raise CheckFailed("too few timed runs for a median with a meaningful spread")


@register("04.4", hidden=True)
def _resnet18_flops(answer):
    # a 224 px resnet18 run is 1.82 G multiply-adds; its FLOP count is twice that
    if not 3.5e9 < float(answer["flops"]) < 3.8e9:
        raise CheckFailed("use the FLOP count of one resnet18 run at batch 1, 224 px")


@register("04.5", hidden=True)
def _the_trained_digits_cnn(path):
    if digits_accuracy(load_answer_onnx(path)) < 0.9:
        raise CheckFailed("quantise the trained digits CNN of this notebook: fewer than 90% of "
                          "the held-out digits are right")


@register("04.6", hidden=True)
def _both_quantisations(answer):
    if len(answer["rows"]) < 3:
        raise CheckFailed("the table should hold fp32 and both int8 variants (dynamic and static)")


# --- test data (grading/cases.py): right and wrong answers, the alternative ----------------------
# 04.1's SessionOptions reaches the checks as the facts its extractor reads, 04.2's timer is probed
# on ScriptedWork (a fake clock), 04.5's file is copied out and read. The other answers carry
# measurements: made-up samples here (the checks recompute from the student's own numbers, so no
# speed is asserted), except resnet18's FLOP count, counted from the model's layers.

def fair_options(threads=None, mode="ORT_SEQUENTIAL", spinning="0"):
    """04.1 as the notebook answers it: PyTorch's thread count, sequential, no spinning."""
    import onnxruntime as ort
    import torch

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads() if threads is None else threads
    options.execution_mode = getattr(ort.ExecutionMode, mode)
    if spinning is not None:
        options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
    return options


@context_item
def resnet18_flops(c) -> int:
    """FLOPs of one resnet18 run at batch 1, 224 px: 2 per multiply-add of every Conv and Linear."""
    import torch
    import torchvision

    model, flops = torchvision.models.resnet18().eval(), []

    def count(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        else:
            per_output = module.in_features
        flops.append(2 * output.numel() * per_output)

    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            module.register_forward_hook(count)
    with torch.no_grad():
        model(torch.zeros(1, 3, 224, 224))
    return sum(flops)


def _default_options():
    import onnxruntime as ort

    return ort.SessionOptions()


def _quartiles(samples):
    q1, q3 = np.percentile(samples, [25, 75])
    return float(q1), float(q3)


def timer(warm=True, scale=1e3, own_clock=False, cumulative=False, keep_warmup=False,
          fixed_repeats=None, median=statistics.median, iqr=None):
    """A timer written like 04.2's reference, with one slip switched on by an argument."""
    def time_fairly(fn, warmup, repeats, clock=time.perf_counter):
        read = time.perf_counter if own_clock else clock
        samples = []
        for _ in range(warmup):
            if keep_warmup:
                start = read()
                fn()
                samples.append((read() - start) * scale)
            elif warm:
                fn()
        first = read()
        for _ in range(fixed_repeats or repeats):
            start = read()
            fn()
            samples.append((read() - (first if cumulative else start)) * scale)
        q1, q3 = _quartiles(samples)
        return {"samples_ms": samples, "median_ms": median(samples),
                "iqr_ms": (q3 - q1) if iqr is None else iqr(samples)}
    return time_fairly


def _quantiles_timer(fn, warmup, repeats, clock=time.perf_counter):
    """A right answer written differently: a list comprehension and statistics.quantiles."""
    [fn() for _ in range(warmup)]
    ticks = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        ticks.append(1000 * (clock() - t0))
    q = statistics.quantiles(ticks, n=4)
    return dict(samples_ms=ticks, median_ms=float(np.median(ticks)), iqr_ms=q[2] - q[0])


def _numpy_timer(fn, warmup, repeats, clock=time.perf_counter):
    """A right answer that keeps its samples in a numpy array (np.percentile's own type)."""
    for _ in range(warmup):
        fn()
    samples = np.empty(repeats)
    for i in range(repeats):
        start = clock()
        fn()
        samples[i] = 1e3 * (clock() - start)
    q1, q3 = np.percentile(samples, [25, 75])
    return {"samples_ms": samples, "median_ms": np.median(samples), "iqr_ms": q3 - q1}


def _wrong_signature(fn):
    return {"samples_ms": [1.0], "median_ms": 1.0, "iqr_ms": 0.0}


@context_item
def int8_files(c) -> dict:
    """The digits CNN trained briefly (4 epochs: 94-95 %), and quantised rightly and wrongly, by name."""
    from onnxruntime.quantization import (QuantFormat, QuantType, quant_pre_process, quantize_dynamic,
                                          quantize_static)

    from ...digits import load_digits_split
    from ...export import export_model
    from ...quantization import make_calibration_reader

    folder = c.subfolder("runtime")
    x_train = load_digits_split()[0][:512].numpy()
    prepared = {}
    for epochs in (4, 1):  # 1 epoch: about 70 %, an under-trained model
        path = export_model(digits_cnn(c, epochs), folder / f"cnn{epochs}.onnx", input_shape=(1, 8, 8))
        prepared[epochs] = folder / f"cnn{epochs}-prep.onnx"
        quant_pre_process(path, prepared[epochs])
    right = dict(quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                 weight_type=QuantType.QInt8, per_channel=True)
    variants = {"right": (4, x_train, {}), "qoperator": (4, x_train, {"quant_format": QuantFormat.QOperator}),
                "s8s8": (4, x_train, {"activation_type": QuantType.QInt8}),
                "per-tensor": (4, x_train, {"per_channel": False}),
                "zeros": (4, np.zeros((64, 1, 8, 8), np.float32), {}),
                "under-trained": (1, x_train, {})}
    files = {}
    for name, (epochs, calibration, change) in variants.items():
        files[name] = folder / f"{name}.onnx"
        quantize_static(prepared[epochs], files[name], make_calibration_reader(calibration, "x"),
                        **{**right, **change})
    files["dynamic"] = folder / "dynamic.onnx"
    quantize_dynamic(prepared[4], files["dynamic"], weight_type=QuantType.QInt8)
    return files


def _int8(name):
    return built(lambda c: int8_files(c)[name])


_RNG = np.random.default_rng(0)
TORCH_MS = [float(v) for v in 20 + _RNG.random(20)]
ORT_MS = [float(v) for v in 10 + _RNG.random(19)] + [90.0]  # one descheduled run
MEDIAN_RATIO = statistics.median(TORCH_MS) / statistics.median(ORT_MS)


def speedup(speedup_value=MEDIAN_RATIO, runs=20) -> dict:
    return {"torch_ms": TORCH_MS[:runs], "ort_ms": ORT_MS[:runs], "speedup": speedup_value}


def work(flops, median_ms=50.0, peak=120.0, gflops=None, share=None) -> dict:
    gflops = flops / (median_ms / 1e3) / 1e9 if gflops is None else gflops
    return {"flops": flops, "median_ms": median_ms, "peak_gflops": peak, "gflops": gflops,
            "peak_share": gflops / peak if share is None else share}


def _work(**changes):
    return built(lambda c: work(resnet18_flops(c), **{k: v(resnet18_flops(c)) if callable(v) else v
                                                    for k, v in changes.items()}))


ROWS = [{"variant": "fp32", "median_ms": 10.0}, {"variant": "int8 dynamic", "median_ms": 40.0},
        {"variant": "int8 static", "median_ms": 9.0}]
_THREADS, _TIMER, _SPEEDUP = "runtime:_matched_threads", "runtime:_times_fairly", "runtime:_speedup_from_medians"
_WORK, _INT8, _SLOWER = "runtime:_work_per_second", "runtime:_static_int8_digits", "runtime:_slower_variants"
CASES = [
    Cases("04.1",
          right=[Right("matched-sequential-no-spinning", built(lambda c: fair_options()))],
          wrong=[Wrong("parallel-mode", built(lambda c: fair_options(mode="ORT_PARALLEL")),
                       "runtime:_sequential_execution", "use sequential execution"),
                 Wrong("defaults", built(lambda c: _default_options()), _THREADS,
                       "intra_op_num_threads is 0, which lets ONNX Runtime choose"),
                 Wrong("one-thread-too-many", built(lambda c: fair_options(threads=_torch_threads() + 1)), _THREADS,
                       "match them"),
                 Wrong("spinning-on", built(lambda c: fair_options(spinning=None)), _THREADS,
                       "idle ONNX Runtime threads still spin"),
                 Wrong("a-dict", {"intra_op_num_threads": 2}, _THREADS,
                       "expected an onnxruntime.SessionOptions, got dict")],
          answer_words=["ORT_SEQUENTIAL"]),
    Cases("04.2",
          alternative='''from time import perf_counter


def time_fairly(work, n_warm, n_timed, clock=perf_counter):
    [work() for _ in range(n_warm)]
    durations = []
    for _ in range(n_timed):
        t0 = clock()
        work()
        t1 = clock()
        durations.append(1000.0 * (t1 - t0))
    quartiles = statistics.quantiles(durations, n=4)
    return dict(samples_ms=durations, median_ms=float(np.median(durations)),
                iqr_ms=quartiles[2] - quartiles[0])''',
          right=[Right("as-the-reference", timer()),
                 Right("statistics-quantiles-and-np-median", _quantiles_timer),
                 Right("samples-in-a-numpy-array", _numpy_timer)],
          wrong=[Wrong("not-a-function", [1.0, 2.0], _TIMER, "pass the function itself"),
                 Wrong("one-argument", _wrong_signature, _TIMER, "it takes the four arguments"),
                 Wrong("mean-for-median", timer(median=statistics.fmean), _TIMER,
                       "'median_ms' is the mean of the samples"),
                 Wrong("middle-unsorted", timer(median=lambda s: s[len(s) // 2]), _TIMER,
                       "the samples must be sorted first"),
                 Wrong("minimum", timer(median=min), _TIMER, "'median_ms' is the fastest run"),
                 Wrong("made-up-median", timer(median=lambda s: 3.0), _TIMER, "'median_ms' is not the median"),
                 Wrong("no-warm-up", timer(warm=False), _TIMER,
                       "the first sample took as long as the first (cold) call"),
                 Wrong("warm-up-timed", timer(keep_warmup=True), _TIMER, "the warm-up calls are among the samples"),
                 Wrong("seconds", timer(scale=1.0), _TIMER, "the samples are in seconds"),
                 Wrong("own-clock", timer(own_clock=True), _TIMER,
                       "the samples do not come from the clock the function was given"),
                 Wrong("cumulative", timer(cumulative=True), _TIMER, "each sample adds up every call so far"),
                 Wrong("repeats-ignored", timer(fixed_repeats=20), _TIMER, "one sample per timed call"),
                 Wrong("microseconds", timer(scale=1e6), _TIMER,
                       "the samples are not the durations of the timed calls"),
                 Wrong("range-for-iqr", timer(iqr=lambda s: max(s) - min(s)), _TIMER, "'iqr_ms' is the range"),
                 Wrong("stdev-for-iqr", timer(iqr=statistics.stdev), _TIMER, "'iqr_ms' is the standard deviation"),
                 Wrong("quartiles-swapped", timer(iqr=lambda s: _quartiles(s)[0] - _quartiles(s)[1]), _TIMER,
                       "'iqr_ms' is negative"),
                 Wrong("third-quartile", timer(iqr=lambda s: _quartiles(s)[1]), _TIMER,
                       "'iqr_ms' is not the interquartile range")],
          answer_words=["percentile", "statistics.median", "sorted("]),
    Cases("04.3",
          alternative='''typical_torch, typical_ort = np.median(torch_ms), np.median(ort_ms)
speedup_answer = dict(torch_ms=list(torch_ms), ort_ms=list(ort_ms),
                      speedup=float(typical_torch / typical_ort))''',
          right=[Right("ratio-of-medians", speedup())],
          wrong=[Wrong("five-runs", speedup(statistics.median(TORCH_MS[:5]) / statistics.median(ORT_MS[:5]), 5),
                       "runtime:_enough_samples", "too few timed runs"),
                 Wrong("inverted", speedup(1 / MEDIAN_RATIO), _SPEEDUP, "upside down"),
                 Wrong("means", speedup(statistics.fmean(TORCH_MS) / statistics.fmean(ORT_MS)), _SPEEDUP,
                       "that is the ratio of the means"),
                 Wrong("fastest-runs", speedup(min(TORCH_MS) / min(ORT_MS)), _SPEEDUP,
                       "that is the ratio of the fastest runs"),
                 Wrong("difference", speedup(statistics.median(TORCH_MS) - statistics.median(ORT_MS)), _SPEEDUP,
                       "that is a difference in ms"),
                 Wrong("made-up", speedup(3.0), _SPEEDUP, "the speedup does not follow from the two lists of samples")],
          answer_words=["median"]),
    Cases("04.4",
          alternative='''seconds = float(np.median(ort_ms)) / 1000
achieved = flops / seconds / 1e9
work_answer = dict(flops=flops, median_ms=seconds * 1000, peak_gflops=peak, gflops=achieved,
                   peak_share=achieved / peak)''',
          right=[Right("gflops-and-share", _work())],
          wrong=[Wrong("multiply-adds-as-flops", built(lambda c: work(resnet18_flops(c) / 2)),
                       "runtime:_resnet18_flops", "use the FLOP count of one resnet18 run"),
                 Wrong("a-batch-of-32", built(lambda c: work(32 * resnet18_flops(c))), "runtime:_resnet18_flops",
                       "use the FLOP count of one resnet18 run"),
                 Wrong("milliseconds-as-seconds", _work(gflops=lambda flops: flops / 50.0 / 1e9), _WORK,
                       "off by a power of 1000"),
                 Wrong("halved", _work(gflops=lambda flops: flops / 0.05 / 2e9), _WORK, "half the expected value"),
                 Wrong("time-per-flop", _work(gflops=lambda flops: 0.05 / flops * 1e9), _WORK,
                       "upside down: work per second"),
                 Wrong("percentage", _work(share=lambda flops: 100 * flops / 0.05 / 1e9 / 120.0), _WORK,
                       "give the share as a fraction"),
                 Wrong("share-inverted", _work(share=lambda flops: 120.0 / (flops / 0.05 / 1e9)), _WORK,
                       "upside down: the share")],
          answer_words=built(lambda c: [f"{resnet18_flops(c) / 0.05 / 1e9:.1f}"])),
    Cases("04.5",
          alternative='''from pathlib import Path


class DigitsReader(CalibrationDataReader):
    def __init__(self, images, per_batch=64):
        self.batches = iter(np.array_split(images, max(1, len(images) // per_batch)))

    def get_next(self):
        batch = next(self.batches, None)
        return None if batch is None else {"x": batch}


int8_path = Path("artifacts") / "digits-int8.onnx"
quantize_static(model_input="artifacts/digits-prep.onnx", model_output=int8_path,
                calibration_data_reader=DigitsReader(x_train[:512].numpy()),
                per_channel=True, weight_type=QuantType.QInt8,
                activation_type=QuantType.QUInt8, quant_format=QuantFormat.QDQ)''',
          right=[Right("static-qdq-u8s8-per-channel", _int8("right"))],
          wrong=[Wrong("under-trained-model", _int8("under-trained"), "runtime:_the_trained_digits_cnn",
                       "quantise the trained digits CNN"),
                 Wrong("a-dict", {"path": "digits-int8.onnx"}, _INT8, "expected the path of the .onnx file"),
                 Wrong("qoperator", _int8("qoperator"), _INT8, "that is the QOperator format"),
                 Wrong("s8s8", _int8("s8s8"), _INT8, "unsigned 8-bit activations"),
                 Wrong("per-tensor", _int8("per-tensor"), _INT8, "one scale per output channel"),
                 Wrong("dynamic", _int8("dynamic"), _INT8, "this is dynamic quantisation"),
                 Wrong("calibrated-on-zeros", _int8("zeros"), _INT8, "calibrate on real training digits")],
          answer_words=["QuantFormat", "QuantType", "per_channel=True"]),
    Cases("04.6",
          alternative='''fp32_ms = quant_rows[0]["median_ms"]
int8_answer = {"rows": quant_rows,
               "slower": [r["variant"] for r in quant_rows if r["median_ms"] > fp32_ms]}''',
          right=[Right("the-dynamic-one", {"rows": ROWS, "slower": ["int8 dynamic"]}),
                 Right("both-when-both-are-slower", {
                     "rows": [dict(r, median_ms=m) for r, m in zip(ROWS, (10.0, 40.0, 11.0))],
                     "slower": ["int8 dynamic", "int8 static"]})],
          wrong=[Wrong("static-variant-missing", {"rows": ROWS[:2], "slower": ["int8 dynamic"]},
                       "runtime:_both_quantisations", "the table should hold fp32 and both int8 variants"),
                 Wrong("all-int8", {"rows": ROWS, "slower": ["int8 dynamic", "int8 static"]}, _SLOWER,
                       "compare each int8 variant's median latency"),
                 Wrong("the-faster-ones", {"rows": ROWS, "slower": ["int8 static"]}, _SLOWER, "the other way round"),
                 Wrong("the-baseline", {"rows": ROWS, "slower": ["fp32"]}, _SLOWER,
                       "the first row is the fp32 baseline itself"),
                 Wrong("unknown-variant", {"rows": ROWS, "slower": ["int8 qdq"]}, _SLOWER,
                       "['int8 qdq'] are not variants in the table")],
          answer_words=["int8 dynamic"]),
]


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()
