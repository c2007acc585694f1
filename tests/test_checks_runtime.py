"""Tests for the checks of notebook 04: course_utils/exercise_checks/runtime.py and
course_utils/grading/hidden_checks/runtime.py.

Every answer goes through what the grader does with it (``check_support.grade``): 04.1's
SessionOptions reaches the checks as the facts its extractor reads, 04.2's timer is called
through the grader's probe on ``ScriptedWork`` (scripted costs on a fake clock: no wall time,
no sleep), 04.5's file is copied out and read. The other answers carry measurements; the
tests use made-up samples (the checks recompute from the student's own numbers, so no speed
is asserted), except resnet18's FLOP count, counted here from the model's layers.
"""
import random
import shutil
import statistics
import time

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torchvision

from check_support import assert_fails_hidden, assert_fails_public, assert_right, grade, registered_checks
from course_utils.exercise_checks import runtime as runtime_checks
from course_utils.grading import load_hidden_checks


def fair_options(threads=None, mode=ort.ExecutionMode.ORT_SEQUENTIAL, spinning="0"):
    """04.1 as the notebook answers it: PyTorch's thread count, sequential, no spinning."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads() if threads is None else threads
    options.execution_mode = mode
    if spinning is not None:
        options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
    return options


def resnet18_flops() -> int:
    """FLOPs of one resnet18 run at batch 1, 224 px: 2 per multiply-add of every Conv and Linear."""
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


# --- 04.2: timers, right and wrong, as a student might write them ----------------------------

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


def quantiles_timer(fn, warmup, repeats, clock=time.perf_counter):
    """A right answer written differently: a list comprehension and statistics.quantiles."""
    [fn() for _ in range(warmup)]
    ticks = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        ticks.append(1000 * (clock() - t0))
    q = statistics.quantiles(ticks, n=4)
    return dict(samples_ms=ticks, median_ms=float(np.median(ticks)), iqr_ms=q[2] - q[0])


def wrong_signature(fn):
    return {"samples_ms": [1.0], "median_ms": 1.0, "iqr_ms": 0.0}


@pytest.fixture(autouse=True)
def seeded_costs(monkeypatch):
    """The timer check draws its costs afresh each time; seeded here so no slip passes by chance."""
    monkeypatch.setattr(runtime_checks, "_new_rng", lambda: random.Random(20))


def test_scripted_work_costs_exactly_its_script():
    """Does each call of ScriptedWork advance its clock by the next scripted cost, and only then?"""
    from course_utils.answers import ScriptedWork

    work = ScriptedWork([0.5, 0.25], start_s=10.0)
    assert work.clock() == 10.0
    work()
    assert work.clock() == 10.5 and work.clock() == 10.5
    work(), work()  # past the end the script starts again
    assert work.clock() == 11.25 and work.calls == 3


# --- 04.5: quantised digits files --------------------------------------------------------------

@pytest.fixture(scope="module")
def digits_files(tmp_path_factory):
    """The digits CNN trained briefly (4 epochs: 94-95 %), and quantised rightly and wrongly."""
    from onnxruntime.quantization import (QuantFormat, QuantType, quant_pre_process,
                                          quantize_dynamic, quantize_static)

    from course_utils.digits import load_digits_split, train_digits_cnn
    from course_utils.export import export_model
    from course_utils.quantization import make_calibration_reader

    folder = tmp_path_factory.mktemp("digits-int8")
    x_train = load_digits_split()[0][:512].numpy()
    prepared = {}
    for epochs in (4, 1):  # 1 epoch: about 70 %, an under-trained model
        path = export_model(train_digits_cnn(epochs=epochs), folder / f"cnn{epochs}.onnx",
                            input_shape=(1, 8, 8))
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


# --- the other exercises' answers ---------------------------------------------------------------

RNG = np.random.default_rng(0)
TORCH_MS = [float(v) for v in 20 + RNG.random(20)]
ORT_MS = [float(v) for v in 10 + RNG.random(19)] + [90.0]  # one descheduled run
MEDIAN_RATIO = statistics.median(TORCH_MS) / statistics.median(ORT_MS)


def speedup(speedup_value=MEDIAN_RATIO, runs=20):
    return {"torch_ms": TORCH_MS[:runs], "ort_ms": ORT_MS[:runs], "speedup": speedup_value}


def work(flops, median_ms=50.0, peak=120.0, gflops=None, share=None):
    gflops = flops / (median_ms / 1e3) / 1e9 if gflops is None else gflops
    return {"flops": flops, "median_ms": median_ms, "peak_gflops": peak, "gflops": gflops,
            "peak_share": gflops / peak if share is None else share}


ROWS = [{"variant": "fp32", "median_ms": 10.0}, {"variant": "int8 dynamic", "median_ms": 40.0},
        {"variant": "int8 static", "median_ms": 9.0}]


@pytest.fixture(scope="module")
def flops():
    return resnet18_flops()


@pytest.fixture
def graded(tmp_path, digits_files):
    load_hidden_checks()

    def run(exercise, answer):
        if exercise == "04.5" and isinstance(answer, str) and answer in digits_files:
            answer = shutil.copy(digits_files[answer], tmp_path / "digits-int8.onnx")
        return grade(exercise, answer, tmp_path, tmp_path / "grader")
    return run


def test_resnet18_flops_are_in_the_range_the_check_accepts(flops):
    """Is resnet18's FLOP count, counted layer by layer, 3.63 G (the 1.81 G multiply-adds
    published for it, twice), inside the range 04.4's hidden check accepts?"""
    assert round(flops / 1e7) == 363 and 3.5e9 < flops < 3.8e9


RIGHT = {
    "04.1": lambda flops: fair_options(),
    "04.2": lambda flops: timer(),
    "04.3": lambda flops: speedup(),
    "04.4": lambda flops: work(flops),
    "04.5": lambda flops: "right",
    "04.6": lambda flops: {"rows": ROWS, "slower": ["int8 dynamic"]},
}


@pytest.mark.parametrize("exercise", sorted(RIGHT))
def test_right_answer_passes(graded, flops, exercise):
    """Does the notebook's kind of answer pass every check?"""
    assert_right(graded(exercise, RIGHT[exercise](flops)))


def test_a_timer_written_otherwise_passes(graded):
    """Does a right timer with statistics.quantiles (another quartile rule) and np.median pass?"""
    assert_right(graded("04.2", quantiles_timer))


def test_the_timer_is_judged_on_costs_drawn_at_grading_time(graded, monkeypatch):
    """With other costs drawn, does the same right timer pass and a mean-for-median slip fail?"""
    monkeypatch.setattr(runtime_checks, "_new_rng", lambda: random.Random(7))
    assert_right(graded("04.2", timer()))
    assert not graded("04.2", timer(median=statistics.fmean)).public.passed


def test_slower_list_follows_the_students_own_table(graded):
    """On a table where both int8 variants are slower, is listing both right?"""
    rows = [dict(r, median_ms=m) for r, m in zip(ROWS, (10.0, 40.0, 11.0))]
    assert_right(graded("04.6", {"rows": rows, "slower": ["int8 dynamic", "int8 static"]}))


# --- one wrong answer per hidden check -------------------------------------------------------

WRONG_FOR_HIDDEN = [
    pytest.param("04.1", lambda flops: fair_options(mode=ort.ExecutionMode.ORT_PARALLEL),
                 "runtime:_sequential_execution", "use sequential execution", id="04.1-parallel-mode"),
    pytest.param("04.3", lambda flops: speedup(statistics.median(TORCH_MS[:5]) / statistics.median(ORT_MS[:5]), 5),
                 "runtime:_enough_samples", "too few timed runs", id="04.3-five-runs"),
    pytest.param("04.4", lambda flops: work(flops / 2), "runtime:_resnet18_flops",
                 "use the FLOP count of one resnet18 run", id="04.4-multiply-adds-as-flops"),
    pytest.param("04.4", lambda flops: work(32 * flops), "runtime:_resnet18_flops",
                 "use the FLOP count of one resnet18 run", id="04.4-a-batch-of-32"),
    pytest.param("04.5", lambda flops: "under-trained", "runtime:_the_trained_digits_cnn",
                 "quantise the trained digits CNN", id="04.5-under-trained-model"),
    pytest.param("04.6", lambda flops: {"rows": ROWS[:2], "slower": ["int8 dynamic"]},
                 "runtime:_both_quantisations", "the table should hold fp32 and both int8 variants",
                 id="04.6-static-variant-missing"),
]


@pytest.mark.parametrize("exercise, make, check, feedback", WRONG_FOR_HIDDEN)
def test_wrong_answer_fails_its_hidden_check(graded, flops, exercise, make, check, feedback):
    """Does an answer that passes the public checks fail this hidden check, with its feedback?"""
    assert_fails_hidden(graded(exercise, make(flops)), check, feedback)


# --- one wrong answer (at least) per public check ---------------------------------------------

T = "runtime:_times_fairly"
Q = "runtime:_static_int8_digits"
WRONG_FOR_PUBLIC = [
    pytest.param("04.1", lambda flops: ort.SessionOptions(), "runtime:_matched_threads",
                 "intra_op_num_threads is 0, which lets ONNX Runtime choose", id="04.1-defaults"),
    pytest.param("04.1", lambda flops: fair_options(threads=torch.get_num_threads() + 1),
                 "runtime:_matched_threads", "match them", id="04.1-one-thread-too-many"),
    pytest.param("04.1", lambda flops: fair_options(spinning=None), "runtime:_matched_threads",
                 "idle ONNX Runtime threads still spin", id="04.1-spinning-on"),
    pytest.param("04.1", lambda flops: {"intra_op_num_threads": 2}, "runtime:_matched_threads",
                 "expected an onnxruntime.SessionOptions, got dict", id="04.1-a-dict"),
    pytest.param("04.2", lambda flops: [1.0, 2.0], T, "pass the function itself", id="04.2-not-a-function"),
    pytest.param("04.2", lambda flops: wrong_signature, T, "it takes the four arguments",
                 id="04.2-one-argument"),
    pytest.param("04.2", lambda flops: timer(median=statistics.fmean), T,
                 "'median_ms' is the mean of the samples", id="04.2-mean-for-median"),
    pytest.param("04.2", lambda flops: timer(median=lambda s: s[len(s) // 2]), T,
                 "the samples must be sorted first", id="04.2-middle-unsorted"),
    pytest.param("04.2", lambda flops: timer(median=min), T, "'median_ms' is the fastest run",
                 id="04.2-minimum"),
    pytest.param("04.2", lambda flops: timer(median=lambda s: 3.0), T,
                 "'median_ms' is not the median", id="04.2-made-up-median"),
    pytest.param("04.2", lambda flops: timer(warm=False), T,
                 "the first sample took as long as the first (cold) call", id="04.2-no-warm-up"),
    pytest.param("04.2", lambda flops: timer(keep_warmup=True), T,
                 "the warm-up calls are among the samples", id="04.2-warm-up-timed"),
    pytest.param("04.2", lambda flops: timer(scale=1.0), T, "the samples are in seconds",
                 id="04.2-seconds"),
    pytest.param("04.2", lambda flops: timer(own_clock=True), T,
                 "the samples do not come from the clock the function was given", id="04.2-own-clock"),
    pytest.param("04.2", lambda flops: timer(cumulative=True), T,
                 "each sample adds up every call so far", id="04.2-cumulative"),
    pytest.param("04.2", lambda flops: timer(fixed_repeats=20), T, "one sample per timed call",
                 id="04.2-repeats-ignored"),
    pytest.param("04.2", lambda flops: timer(scale=1e6), T,
                 "the samples are not the durations of the timed calls", id="04.2-microseconds"),
    pytest.param("04.2", lambda flops: timer(iqr=lambda s: max(s) - min(s)), T,
                 "'iqr_ms' is the range", id="04.2-range-for-iqr"),
    pytest.param("04.2", lambda flops: timer(iqr=statistics.stdev), T,
                 "'iqr_ms' is the standard deviation", id="04.2-stdev-for-iqr"),
    pytest.param("04.2", lambda flops: timer(iqr=lambda s: _quartiles(s)[0] - _quartiles(s)[1]), T,
                 "'iqr_ms' is negative", id="04.2-quartiles-swapped"),
    pytest.param("04.2", lambda flops: timer(iqr=lambda s: _quartiles(s)[1]), T,
                 "'iqr_ms' is not the interquartile range", id="04.2-third-quartile"),
    pytest.param("04.3", lambda flops: speedup(1 / MEDIAN_RATIO), "runtime:_speedup_from_medians",
                 "upside down", id="04.3-inverted"),
    pytest.param("04.3", lambda flops: speedup(statistics.fmean(TORCH_MS) / statistics.fmean(ORT_MS)),
                 "runtime:_speedup_from_medians", "that is the ratio of the means", id="04.3-means"),
    pytest.param("04.3", lambda flops: speedup(min(TORCH_MS) / min(ORT_MS)), "runtime:_speedup_from_medians",
                 "that is the ratio of the fastest runs", id="04.3-fastest-runs"),
    pytest.param("04.3", lambda flops: speedup(statistics.median(TORCH_MS) - statistics.median(ORT_MS)),
                 "runtime:_speedup_from_medians", "that is a difference in ms", id="04.3-difference"),
    pytest.param("04.3", lambda flops: speedup(3.0), "runtime:_speedup_from_medians",
                 "the speedup does not follow from the two lists of samples", id="04.3-made-up"),
    pytest.param("04.4", lambda flops: work(flops, gflops=flops / 50.0 / 1e9), "runtime:_work_per_second",
                 "off by a power of 1000", id="04.4-milliseconds-as-seconds"),
    pytest.param("04.4", lambda flops: work(flops, gflops=flops / 0.05 / 2e9), "runtime:_work_per_second",
                 "half the expected value", id="04.4-halved"),
    pytest.param("04.4", lambda flops: work(flops, gflops=0.05 / flops * 1e9), "runtime:_work_per_second",
                 "upside down: work per second", id="04.4-time-per-flop"),
    pytest.param("04.4", lambda flops: work(flops, share=100 * flops / 0.05 / 1e9 / 120.0),
                 "runtime:_work_per_second", "give the share as a fraction", id="04.4-percentage"),
    pytest.param("04.4", lambda flops: work(flops, share=120.0 / (flops / 0.05 / 1e9)),
                 "runtime:_work_per_second", "upside down: the share", id="04.4-share-inverted"),
    pytest.param("04.5", lambda flops: {"path": "digits-int8.onnx"}, Q, "expected the path of the .onnx file",
                 id="04.5-a-dict"),
    pytest.param("04.5", lambda flops: "qoperator", Q, "that is the QOperator format", id="04.5-qoperator"),
    pytest.param("04.5", lambda flops: "s8s8", Q, "unsigned 8-bit activations", id="04.5-s8s8"),
    pytest.param("04.5", lambda flops: "per-tensor", Q, "one scale per output channel", id="04.5-per-tensor"),
    pytest.param("04.5", lambda flops: "dynamic", Q, "this is dynamic quantisation", id="04.5-dynamic"),
    pytest.param("04.5", lambda flops: "zeros", Q, "calibrate on real training digits",
                 id="04.5-calibrated-on-zeros"),
    pytest.param("04.6", lambda flops: {"rows": ROWS, "slower": ["int8 dynamic", "int8 static"]},
                 "runtime:_slower_variants", "compare each int8 variant's median latency", id="04.6-all-int8"),
    pytest.param("04.6", lambda flops: {"rows": ROWS, "slower": ["int8 static"]},
                 "runtime:_slower_variants", "the other way round", id="04.6-the-faster-ones"),
    pytest.param("04.6", lambda flops: {"rows": ROWS, "slower": ["fp32"]}, "runtime:_slower_variants",
                 "the first row is the fp32 baseline itself", id="04.6-the-baseline"),
    pytest.param("04.6", lambda flops: {"rows": ROWS, "slower": ["int8 qdq"]}, "runtime:_slower_variants",
                 "['int8 qdq'] are not variants in the table", id="04.6-unknown-variant"),
]


@pytest.mark.parametrize("exercise, make, check, feedback", WRONG_FOR_PUBLIC)
def test_wrong_answer_fails_a_public_check_with_a_hint(graded, flops, exercise, make, check, feedback):
    """Does the student's own check() refuse this answer with a hint that gives nothing away?"""
    words = {"04.1": ["ORT_SEQUENTIAL"], "04.2": ["percentile", "statistics.median", "sorted("],
             "04.3": ["median"], "04.4": [f"{flops / 0.05 / 1e9:.1f}"],
             "04.5": ["QuantFormat", "QuantType", "per_channel=True"], "04.6": ["int8 dynamic"]}
    assert_fails_public(graded(exercise, make(flops)), check, feedback, answer_words=words[exercise])


def test_every_check_of_this_notebook_has_a_wrong_answer_here():
    """Is every hidden and every public check of notebook 04 tried with a wrong answer above?"""
    assert registered_checks("runtime", hidden=True) == {p.values[2] for p in WRONG_FOR_HIDDEN}
    assert registered_checks("runtime", hidden=False) == {p.values[2] for p in WRONG_FOR_PUBLIC}
