"""Hidden checks for notebook 04 (runtime comparison) and their test data: grader only, never released."""
from __future__ import annotations

import statistics
import time

import numpy as np

from ...checks import CheckFailed, register
from ...exercise_checks.export import load_answer_onnx
from ...exercise_checks.runtime import digits_accuracy
from ..cases import Cases, Right, Wrong, built, context_item, digits_cnn


@register("04.3", hidden=True)
def _enough_samples(answer):
    if min(len(answer["torch_ms"]), len(answer["ort_ms"])) < 10:
        raise CheckFailed("too few timed runs for a median with a meaningful spread")


@register("04.3", hidden=True)
def _timed_the_fair_session(answer):
    # the facts of the session that was timed again (exercise_checks.runtime.timed_again)
    again = answer["timed_again"]
    if list(again["input_shape"][1:]) != [3, 224, 224]:
        raise CheckFailed("time resnet18's 224 px file, the one this section exports")
    if again["intra_op_num_threads"] != again["torch_threads"] or again["spinning"] != "0":
        raise CheckFailed("the session you timed was not made with fair_options (matched threads, "
                          "no spinning): a comparison is only fair with the settings of 04.1")


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
def _every_recipe_of_resnet18(answer):
    from ...quantization import INT8_RECIPES

    variants = [r["variant"] for r in answer["rows"]]
    if variants != ["fp32", *INT8_RECIPES]:
        raise CheckFailed("the table should hold fp32 and every recipe of INT8_RECIPES, as "
                          "compare_variants returned it")
    if answer["rows"][0]["size_bytes"] < 40e6:
        raise CheckFailed("the table should be resnet18's (its fp32 file holds 11.7 M weights, "
                          "about 47 MB), not the digits CNN's")


@register("04.7", hidden=True)
def _enough_openvino_samples(answer):
    if len(answer["samples_ms"]) < 10:
        raise CheckFailed("too few timed runs for a median with a meaningful spread")


# --- test data (grading/cases.py): right and wrong answers, the alternative ----------------------
# 04.1's SessionOptions reaches the checks as the facts its extractor reads, 04.2's timer is probed
# on ScriptedWork (a fake clock), 04.5's file is copied out and read. 04.3 and 04.7 carry what they
# timed (resnet18 and its session, OpenVINO's compiled model), timed again by their extractors, so
# their right answers are real timings (made once per process); 04.4 carries a Ceiling made from
# chosen rates, 04.6 rows and files of chosen sizes. No speed is asserted anywhere.

def found_options():
    """The starting point of 04.1 in the notebook: a benchmark script's parallel-mode options."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    options.inter_op_num_threads = 4
    return options


def fair_options(threads=None, mode="ORT_SEQUENTIAL", spinning="0"):
    """04.1 as the notebook answers it, from found_options(): PyTorch's thread count, sequential,
    no spinning (``mode=None`` leaves the execution mode as found)."""
    import onnxruntime as ort
    import torch

    options = found_options()
    options.intra_op_num_threads = torch.get_num_threads() if threads is None else threads
    if mode is not None:
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
    """Made-up samples (no model, no session): for the checks of the arithmetic, which come first."""
    return {"torch_ms": TORCH_MS[:runs], "ort_ms": ORT_MS[:runs], "speedup": speedup_value}


@context_item
def small_cnn(c):
    """``(model, path)``: a small CNN that takes what resnet18 takes, (batch, 3, 224, 224), exported
    with the TorchScript exporter (a second, where resnet18 takes ten): the checks of 04.3 and 04.7
    time what the answer holds again and read the input's shape. Its 0.55 GFLOP take a few ms a
    run: a model of 0.1 ms was flaky on a busy machine, where one lost time slice (about 4 ms)
    makes a run of it 4x slower."""
    import warnings

    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3), torch.nn.ReLU(),
                                torch.nn.Conv2d(32, 64, 3, stride=2), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(64, 10)).eval()
    path = c.subfolder("runtime") / "small-cnn-224.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (torch.rand(2, 3, 224, 224),), str(path), dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {0: "batch"}})
    return model, path


@context_item
def fair_small_session(c):
    """An ONNX Runtime session of the small CNN with fair options (made once)."""
    import onnxruntime as ort

    return ort.InferenceSession(str(small_cnn(c)[1]), fair_options(), providers=["CPUExecutionProvider"])


def timed_resnet18(c) -> dict:
    """04.3 answered as the notebook does (on a small CNN of resnet18's input): the model and a
    session with fair options, both timed with a right timer (3 warm-up and 12 timed calls each),
    and the speedup of the medians. Timed afresh for every answer, as a student's cell is right
    before its check (a machine's load changes within a minute)."""
    import torch

    model, session = small_cnn(c)[0], fair_small_session(c)
    x = torch.rand(1, 3, 224, 224)
    feed = {"x": x.numpy()}
    with torch.inference_mode():
        torch_ms = timer()(lambda: model(x), 3, 12)["samples_ms"]
    ort_ms = timer()(lambda: session.run(None, feed), 3, 12)["samples_ms"]
    return {"model": model, "session": session, "torch_ms": torch_ms, "ort_ms": ort_ms,
            "speedup": statistics.median(torch_ms) / statistics.median(ort_ms)}


def _timed(**changes):
    def make(c):
        answer = dict(timed_resnet18(c))
        for key, value in changes.items():
            answer[key] = value(c, answer) if callable(value) else value
        if "speedup" not in changes:
            answer["speedup"] = statistics.median(answer["torch_ms"]) / statistics.median(answer["ort_ms"])
        return answer
    return built(make)


def _default_session(c, answer):
    import onnxruntime as ort

    return ort.InferenceSession(str(small_cnn(c)[1]), providers=["CPUExecutionProvider"])


def _ceiling(one_core=(100.0, 97.0), all_threads=(185.0, 180.0)):
    """A Ceiling from chosen rates (2 threads on 2 cores): 2 x 100 = 200 GFLOP/s."""
    from ...roofline import ceiling_from_rates

    probe = "onnxruntime Conv 3x3 256ch 14x14"
    return ceiling_from_rates({(probe, 1): list(one_core), (probe, 2): list(all_threads)}, 2, cores=2)


def _samples_around(median_ms, n=20):
    rng = np.random.default_rng(1)
    values = list(median_ms * (1 + 0.05 * rng.standard_normal(n)))
    return [float(v) for v in values]


def work(flops, ort_ms=None, median_ms=None, ceiling=None, peak=None, gflops=None, share=None) -> dict:
    ort_ms = _samples_around(50.0) if ort_ms is None else ort_ms
    median_ms = statistics.median(ort_ms) if median_ms is None else median_ms
    ceiling = _ceiling() if ceiling is None else ceiling
    peak = (ceiling.gflops if hasattr(ceiling, "gflops") else 200.0) if peak is None else peak
    gflops = flops / (median_ms / 1e3) / 1e9 if gflops is None else gflops
    return {"flops": flops, "ort_ms": ort_ms, "ceiling": ceiling, "median_ms": median_ms,
            "peak_gflops": peak, "gflops": gflops, "peak_share": gflops / peak if share is None else share}


def _work(**changes):
    return built(lambda c: work(resnet18_flops(c), **{k: v(resnet18_flops(c)) if callable(v) else v
                                                    for k, v in changes.items()}))


def _ms(flops):
    """The median of ``work``'s default samples, in seconds (for answers that slip on the formula)."""
    return statistics.median(_samples_around(50.0)) / 1e3


# fp32 10 ms [9.5, 10.8]; dynamic clearly slower; static clearly faster; QDQ S8S8's median above
# fp32's but its band overlapping (a tie)
ROWS = [{"variant": "fp32", "median_ms": 10.0, "q1_ms": 9.5, "q3_ms": 10.8},
        {"variant": "int8 dynamic", "median_ms": 40.0, "q1_ms": 38.0, "q3_ms": 43.2},
        {"variant": "int8 static", "median_ms": 8.0, "q1_ms": 7.6, "q3_ms": 8.6},
        {"variant": "QDQ S8S8", "median_ms": 10.5, "q1_ms": 10.0, "q3_ms": 11.3}]
_RESNET18_SIZES = {"fp32": 46_800_000, "QDQ U8S8": 11_800_000, "QDQ U8S8 reduce_range": 11_800_000,
                   "QDQ S8S8": 11_800_000, "QOperator U8S8": 11_700_000, "QOperator S8S8": 11_700_000,
                   "dynamic": 11_750_000}
_MEDIANS = {"fp32": 30.0, "QDQ U8S8": 18.0, "QDQ U8S8 reduce_range": 19.0, "QDQ S8S8": 33.0,
            "QOperator U8S8": 21.0, "QOperator S8S8": 45.0, "dynamic": 240.0}


def _table_row(variant, median, size):
    q1, q3 = 0.95 * median, 1.08 * median
    return {"variant": variant, "size_bytes": size, "median_ms": median, "iqr_ms": q3 - q1, "q1_ms": q1,
            "q3_ms": q3, "p90_ms": 1.2 * median, "n": 20, "accuracy": None, "speedup": 30.0 / median}


@context_item
def quant_table(c, variants=tuple(_MEDIANS), size_scale=1.0) -> dict:
    """04.6's answer from rows of compare_variants' form and files of the sizes the rows say
    (sparse files: only their size is read)."""
    folder = c.subfolder(f"quant-{len(variants)}-{size_scale}")
    rows, paths = [], {}
    for variant in variants:
        size = int(_RESNET18_SIZES[variant] * size_scale)
        paths[variant] = folder / f"{variant.replace(' ', '-')}.onnx"
        with open(paths[variant], "wb") as handle:
            handle.truncate(size)
        rows.append(_table_row(variant, _MEDIANS[variant], size))
    # Recorded as compare_variants records what it measured: timing resnet18's seven recipes
    # would take a minute, and the checks read the numbers, not how long they took.
    from ...quantization import record_measured_table

    record_measured_table(rows)
    low, high = rows[0]["q1_ms"], rows[0]["q3_ms"]
    slower = [r["variant"] for r in rows[1:] if r["q1_ms"] > high]
    ties = [r["variant"] for r in rows[1:] if r["q1_ms"] <= high and r["q3_ms"] >= low]
    return {"rows": rows, "paths": {k: str(v) for k, v in paths.items()}, "slower": slower, "ties": ties}


def _table(change=None, variants=tuple(_MEDIANS), size_scale=1.0):
    def make(c):
        answer = {k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
                  for k, v in quant_table(c, tuple(variants), size_scale).items()}
        return change(answer) if change else answer
    return built(make)


def _without(key):
    return lambda answer: {k: v for k, v in answer.items() if k != key}


def _edited_median(answer):
    """The measured table with fp32's median made larger (and its quartiles around it), so that
    the int8 variants look faster."""
    first = answer["rows"][0]
    answer["rows"] = [dict(first, median_ms=first["median_ms"] * 3, q1_ms=first["q1_ms"] * 3,
                           q3_ms=first["q3_ms"] * 3, iqr_ms=first["iqr_ms"] * 3)] + answer["rows"][1:]
    fp32 = answer["rows"][0]
    answer["slower"] = [r["variant"] for r in answer["rows"][1:] if r["q1_ms"] > fp32["q3_ms"]]
    answer["ties"] = [r["variant"] for r in answer["rows"][1:]
                      if r["q1_ms"] <= fp32["q3_ms"] and r["q3_ms"] >= fp32["q1_ms"]]
    return answer


def _rounded(answer):
    answer["rows"] = [dict(r, **{k: round(r[k] + 0.0049, 2) for k in ("median_ms", "q1_ms", "q3_ms")})
                      for r in answer["rows"]]
    for r in answer["rows"]:
        r["iqr_ms"] = r["q3_ms"] - r["q1_ms"]
    return answer


def _other_sizes(answer):
    answer["rows"] = [dict(r, size_bytes=r["size_bytes"] + 1) for r in answer["rows"]]
    return answer


@context_item
def openvino_compiled(c, onnx: str = "resnet18", threads=None, precision: str = "f32"):
    """OpenVINO's CompiledModel of a file of resnet18's input (or of a 1x8x8 model: ``onnx="small"``)."""
    import openvino as ov
    import torch

    path = small_cnn(c)[1] if onnx == "resnet18" else _small_onnx(c)
    return ov.Core().compile_model(str(path), "CPU", {
        "INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
        "INFERENCE_NUM_THREADS": torch.get_num_threads() if threads is None else threads})


def _small_onnx(c):
    import onnx
    from onnx import TensorProto, helper

    path = c.folder / "relu-1x8x8.onnx"
    if not path.exists():
        graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "small",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 8, 8])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1, 8, 8])])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def openvino_row(c) -> dict:
    """04.7 answered as the notebook does (on the small CNN): compiled with f32 pinned, timed with
    a right timer, afresh for every answer."""
    import torch

    compiled = openvino_compiled(c)
    request = compiled.create_infer_request()
    array = torch.rand(1, 3, 224, 224).numpy()
    samples = timer()(lambda: request.infer({0: array}), 3, 12)["samples_ms"]
    return {"compiled": compiled, "precision": "fp32", "threads": _torch_threads(), "samples_ms": samples}


def _row(**changes):
    def make(c):
        answer = dict(openvino_row(c))
        for key, value in changes.items():
            answer[key] = value(c, answer) if callable(value) else value
        return answer
    return built(make)


_THREADS, _TIMER, _SPEEDUP = "runtime:_matched_threads", "runtime:_times_fairly", "runtime:_speedup_from_medians"
_WORK, _INT8, _SLOWER = "runtime:_work_per_second", "runtime:_static_int8_digits", "runtime:_slower_variants"
_TIMED, _AGAIN = "runtime:_samples_are_timings", "runtime:_close_to_a_run_timed_again"
_TABLE, _PRECISION = "runtime:_rows_measured_from_these_files", "runtime:_precision_named_is_the_one_that_ran"
_SAME, _OV_TIMED = "runtime:_the_same_file_and_threads", "runtime:_openvino_timed"
CASES = [
    Cases("04.1",
          alternative='''fair_options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
fair_options.intra_op_num_threads = torch.get_num_threads()
fair_options.inter_op_num_threads = 1
for key in ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning"):
    fair_options.add_session_config_entry(key, "0")''',
          right=[Right("matched-sequential-no-spinning", built(lambda c: fair_options())),
                 Right("fresh-options-sequential-by-default", built(lambda c: _fresh_fair_options()))],
          wrong=[Wrong("parallel-mode-left-as-found", built(lambda c: fair_options(mode=None)),
                       "runtime:_one_node_at_a_time", "the session would still run in parallel mode"),
                 Wrong("defaults", built(lambda c: _default_options()), _THREADS,
                       "intra_op_num_threads is 0, which lets ONNX Runtime choose"),
                 Wrong("one-thread-too-many", built(lambda c: fair_options(threads=_torch_threads() + 1)), _THREADS,
                       "match them"),
                 Wrong("spinning-on", built(lambda c: fair_options(spinning=None)), _THREADS,
                       "idle ONNX Runtime threads still spin"),
                 Wrong("a-dict", {"intra_op_num_threads": 2}, _THREADS,
                       "expected an onnxruntime.SessionOptions, got dict")],
          answer_words=["ORT_SEQUENTIAL", "SEQUENTIAL"]),
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
          alternative='''timed_session = ort.InferenceSession(str(onnx_path), sess_options=fair_options,
                                     providers=["CPUExecutionProvider"])
image = x.numpy()
with torch.no_grad():
    on_torch = time_fairly(lambda: model(x), 5, 25)
on_ort = time_fairly(lambda: timed_session.run(None, {"x": image}), 5, 25)
speedup_answer = dict(model=model, session=timed_session, torch_ms=list(on_torch["samples_ms"]),
                      ort_ms=list(on_ort["samples_ms"]),
                      speedup=float(np.median(on_torch["samples_ms"]) / np.median(on_ort["samples_ms"])))''',
          right=[Right("both-timed-with-the-timer", _timed())],
          wrong=[Wrong("five-runs", _timed(torch_ms=lambda c, a: a["torch_ms"][:5], ort_ms=lambda c, a: a["ort_ms"][:5]),
                       "runtime:_enough_samples", "too few timed runs"),
                 Wrong("default-session-options", _timed(session=_default_session),
                       "runtime:_timed_the_fair_session", "the session you timed was not made with fair_options"),
                 Wrong("inverted", speedup(1 / MEDIAN_RATIO), _SPEEDUP, "upside down"),
                 Wrong("means", speedup(statistics.fmean(TORCH_MS) / statistics.fmean(ORT_MS)), _SPEEDUP,
                       "that is the ratio of the means"),
                 Wrong("fastest-runs", speedup(min(TORCH_MS) / min(ORT_MS)), _SPEEDUP,
                       "that is the ratio of the fastest runs"),
                 Wrong("difference", speedup(statistics.median(TORCH_MS) - statistics.median(ORT_MS)), _SPEEDUP,
                       "that is a difference in ms"),
                 Wrong("made-up", speedup(3.0), _SPEEDUP, "the speedup does not follow from the two lists of samples"),
                 Wrong("constant-series", {"torch_ms": [2] * 10, "ort_ms": [1] * 10, "speedup": 2}, _TIMED,
                       "'torch_ms' repeats the same few values: that is not a timing"),
                 Wrong("numbers-without-what-was-timed", speedup(), _AGAIN, "put what you timed into the answer"),
                 Wrong("made-up-numbers-beside-the-model", _timed(torch_ms=[900.0 + i for i in range(20)],
                                                                  ort_ms=[800.0 + i for i in range(20)]),
                       _AGAIN, "samples sit around")],  # PyTorch's or, after a slow re-run of it, ONNX Runtime's
          answer_words=["median"]),
    Cases("04.4",
          alternative='''typical_ms = float(np.median(ort_ms))
achieved = flops / (typical_ms / 1000) / 1e9
work_answer = dict(flops=flops, ort_ms=list(ort_ms), ceiling=ceiling, median_ms=typical_ms,
                   peak_gflops=ceiling.gflops, gflops=achieved, peak_share=achieved / ceiling.gflops)''',
          right=[Right("gflops-and-share", _work())],
          wrong=[Wrong("multiply-adds-as-flops", built(lambda c: work(resnet18_flops(c) / 2)),
                       "runtime:_resnet18_flops", "use the FLOP count of one resnet18 run"),
                 Wrong("a-batch-of-32", built(lambda c: work(32 * resnet18_flops(c))),
                       "runtime:_a_rate_this_machine_can_reach", "the FLOPs or the timings are not those of one"),
                 Wrong("milliseconds-as-seconds", _work(gflops=lambda flops: flops / (1e3 * _ms(flops)) / 1e9), _WORK,
                       "off by a power of 1000"),
                 Wrong("halved", _work(gflops=lambda flops: flops / _ms(flops) / 2e9), _WORK, "half the expected value"),
                 Wrong("time-per-flop", _work(gflops=lambda flops: _ms(flops) / flops * 1e9), _WORK,
                       "upside down: work per second"),
                 Wrong("percentage", _work(share=lambda flops: 100 * flops / _ms(flops) / 1e9 / _ceiling().gflops),
                       _WORK, "give the share as a fraction"),
                 Wrong("share-inverted", _work(share=lambda flops: _ceiling().gflops / (flops / _ms(flops) / 1e9)),
                       _WORK, "upside down: the share"),
                 Wrong("made-up-peak", _work(peak=120.0), _WORK, "'peak_gflops' is not the measured ceiling"),
                 Wrong("ceiling-as-a-copy", _work(ceiling=lambda flops: _ceiling().to_dict()), _WORK,
                       "'ceiling' should be the Ceiling that measure_fp32_ceiling returned"),
                 Wrong("ceiling-edited", _work(ceiling=lambda flops: _edited_ceiling(), peak=500.0), _WORK,
                       "the ceiling does not follow from its own probes"),
                 Wrong("median-not-of-the-samples", _work(median_ms=40.0), _WORK,
                       "'median_ms' is not the median of your 'ort_ms' samples"),
                 Wrong("constant-samples", _work(ort_ms=[50.0] * 20), _WORK, "'ort_ms' repeats the same few values"),
                 Wrong("made-up-fast-samples", _work(ort_ms=_samples_around(1.0)), "runtime:_a_rate_this_machine_can_reach",
                       "a whole model cannot beat them by that much")],
          answer_words=built(lambda c: [f"{resnet18_flops(c) / _ms(0) / 1e9:.1f}"])),
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
          alternative='''fp32 = next(r for r in quant_rows if r["variant"] == "fp32")
others = [r for r in quant_rows if r is not fp32]
int8_answer = {"rows": quant_rows, "paths": {"fp32": onnx_path, **resnet_paths},
               "slower": [r["variant"] for r in others if r["q1_ms"] > fp32["q3_ms"]],
               "ties": [r["variant"] for r in others
                        if not (r["q1_ms"] > fp32["q3_ms"] or r["q3_ms"] < fp32["q1_ms"])]}''',
          right=[Right("the-table-and-its-files", _table())],
          wrong=[Wrong("some-recipes-missing", _table(variants=("fp32", "QDQ U8S8", "dynamic")),
                       "runtime:_every_recipe_of_resnet18", "the table should hold fp32 and every recipe"),
                 Wrong("the-digits-table", _table(size_scale=0.002), "runtime:_every_recipe_of_resnet18",
                       "the table should be resnet18's"),
                 Wrong("all-int8", {"rows": ROWS, "slower": ["int8 dynamic", "int8 static", "QDQ S8S8"], "ties": []},
                       _SLOWER, "list in 'slower' the variants whose whole quartile band"),
                 Wrong("the-faster-ones", {"rows": ROWS, "slower": ["int8 static"], "ties": ["QDQ S8S8"]}, _SLOWER,
                       "the other way round"),
                 Wrong("the-baseline", {"rows": ROWS, "slower": ["fp32"], "ties": []}, _SLOWER,
                       "the first row is the fp32 baseline itself"),
                 Wrong("unknown-variant", {"rows": ROWS, "slower": ["int8 qdq"], "ties": []}, _SLOWER,
                       "['int8 qdq'] are not variants in the table"),
                 Wrong("medians-compared", {"rows": ROWS, "slower": ["int8 dynamic", "QDQ S8S8"], "ties": []},
                       _SLOWER, "a median above fp32's is not 'slower' when the two quartile bands overlap"),
                 Wrong("no-ties-list", {"rows": ROWS, "slower": ["int8 dynamic"]}, _SLOWER, "'ties'"),
                 Wrong("ties-missed", {"rows": ROWS, "slower": ["int8 dynamic"], "ties": []}, _SLOWER,
                       "list in 'ties' every other variant whose quartile band overlaps fp32's"),
                 Wrong("invented-rows", {"rows": ROWS, "slower": ["int8 dynamic"], "ties": ["QDQ S8S8"]}, _TABLE,
                       "'rows' should be compare_variants' table as it returned it"),
                 Wrong("rows-without-their-files", _table(_without("paths")), _TABLE, "add 'paths' to the answer"),
                 Wrong("rows-of-other-files", _table(_other_sizes), _TABLE,
                       "does not describe the file given for it"),
                 Wrong("a-median-edited", _table(_edited_median), _TABLE,
                       "no table that compare_variants measured in this notebook has these numbers"),
                 Wrong("medians-rounded", _table(_rounded), _TABLE,
                       "no table that compare_variants measured in this notebook has these numbers")],
          answer_words=["dynamic"]),
    Cases("04.7",
          alternative='''import openvino

core = openvino.Core()
ov_model = core.compile_model(str(onnx_path), "CPU", config={"INFERENCE_PRECISION_HINT": "f32",
                                                           "INFERENCE_NUM_THREADS": THREADS})
infer = ov_model.create_infer_request()
image = contender_x.numpy()
mine = time_fairly(lambda: infer.infer([image]), 5, 20)
openvino_row = dict(compiled=ov_model, precision="f32", threads=THREADS, samples_ms=list(mine["samples_ms"]))''',
          right=[Right("f32-pinned-and-timed", _row())],
          wrong=[Wrong("five-runs", _row(samples_ms=lambda c, a: a["samples_ms"][:5]),
                       "runtime:_enough_openvino_samples", "too few timed runs"),
                 Wrong("precision-named-otherwise", _row(precision="bf16"), _PRECISION,
                       "you named bf16, but the compiled model reports that it runs in f32"),
                 Wrong("not-a-precision", _row(precision="float"), _PRECISION, "'precision' should name a precision"),
                 Wrong("no-compiled-model", _row(compiled=None), _PRECISION, "put the model OpenVINO compiled"),
                 Wrong("another-model", _row(compiled=lambda c, a: openvino_compiled(c, "small")), _SAME,
                       "the compiled model takes inputs of shape"),
                 Wrong("other-threads", _row(threads=lambda c, a: _torch_threads() + 1), _SAME,
                       "match them, as for ONNX Runtime"),
                 Wrong("constant-samples", _row(samples_ms=[5.0] * 12), _OV_TIMED,
                       "'samples_ms' repeats the same few values"),
                 Wrong("made-up-samples", _row(samples_ms=[900.0 + i for i in range(12)]), _OV_TIMED,
                       "your samples sit around")],
          answer_words=["INFERENCE_PRECISION_HINT"]),
]


def _fresh_fair_options():
    """A right 04.1 that ignores found_options() and starts afresh (sequential is the default)."""
    import onnxruntime as ort
    import torch

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _edited_ceiling():
    """A Ceiling whose figure was changed after the measurement (its probes say 200)."""
    from dataclasses import replace

    return replace(_ceiling(), gflops=500.0)


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()
