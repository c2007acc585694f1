"""Tests for the checks of notebook 04: course_utils/exercise_checks/runtime.py and
course_utils/grading/hidden_checks/runtime.py.

Every answer goes through what the grader does with it (``check_support.grade``): 04.1's
SessionOptions reaches the checks as the facts its extractor reads. The answers carry
measurements; the tests use made-up samples (the checks recompute from the student's own
numbers, so no speed is asserted), except resnet18's FLOP count, counted here from the
model's layers.
"""
import statistics

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torchvision

from check_support import assert_fails_hidden, assert_fails_public, assert_right, grade, registered_checks


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
def graded(tmp_path):
    return lambda exercise, answer: grade(exercise, answer, tmp_path, tmp_path / "grader")


def test_resnet18_flops_are_in_the_range_the_check_accepts(flops):
    """Is resnet18's FLOP count, counted layer by layer, 3.63 G (the 1.81 G multiply-adds
    published for it, twice), inside the range 04.3's hidden check accepts?"""
    assert round(flops / 1e7) == 363 and 3.5e9 < flops < 3.8e9


RIGHT = {
    "04.1": lambda flops: fair_options(),
    "04.2": lambda flops: speedup(),
    "04.3": lambda flops: work(flops),
    "04.4": lambda flops: {"rows": ROWS, "slower": ["int8 dynamic"]},
}


@pytest.mark.parametrize("exercise", sorted(RIGHT))
def test_right_answer_passes(graded, flops, exercise):
    """Does the notebook's kind of answer pass every check?"""
    assert_right(graded(exercise, RIGHT[exercise](flops)))


def test_slower_list_follows_the_students_own_table(graded):
    """On a table where both int8 variants are slower, is listing both right?"""
    rows = [dict(r, median_ms=m) for r, m in zip(ROWS, (10.0, 40.0, 11.0))]
    assert_right(graded("04.4", {"rows": rows, "slower": ["int8 dynamic", "int8 static"]}))


# --- one wrong answer per hidden check -------------------------------------------------------

WRONG_FOR_HIDDEN = [
    pytest.param("04.1", lambda flops: fair_options(mode=ort.ExecutionMode.ORT_PARALLEL),
                 "runtime:_sequential_execution", "use sequential execution", id="04.1-parallel-mode"),
    pytest.param("04.2", lambda flops: speedup(statistics.median(TORCH_MS[:5]) / statistics.median(ORT_MS[:5]), 5),
                 "runtime:_enough_samples", "too few timed runs", id="04.2-five-runs"),
    pytest.param("04.3", lambda flops: work(flops / 2), "runtime:_resnet18_flops",
                 "use the FLOP count of one resnet18 run", id="04.3-multiply-adds-as-flops"),
    pytest.param("04.3", lambda flops: work(32 * flops), "runtime:_resnet18_flops",
                 "use the FLOP count of one resnet18 run", id="04.3-a-batch-of-32"),
    pytest.param("04.4", lambda flops: {"rows": ROWS[:2], "slower": ["int8 dynamic"]},
                 "runtime:_both_quantisations", "the table should hold fp32 and both int8 variants",
                 id="04.4-static-variant-missing"),
]


@pytest.mark.parametrize("exercise, make, check, feedback", WRONG_FOR_HIDDEN)
def test_wrong_answer_fails_its_hidden_check(graded, flops, exercise, make, check, feedback):
    """Does an answer that passes the public checks fail this hidden check, with its feedback?"""
    assert_fails_hidden(graded(exercise, make(flops)), check, feedback)


# --- one wrong answer (at least) per public check ---------------------------------------------

WRONG_FOR_PUBLIC = [
    pytest.param("04.1", lambda flops: ort.SessionOptions(), "runtime:_matched_threads",
                 "intra_op_num_threads is 0, which lets ONNX Runtime choose", id="04.1-defaults"),
    pytest.param("04.1", lambda flops: fair_options(threads=torch.get_num_threads() + 1),
                 "runtime:_matched_threads", "match them", id="04.1-one-thread-too-many"),
    pytest.param("04.1", lambda flops: fair_options(spinning=None), "runtime:_matched_threads",
                 "idle ONNX Runtime threads still spin", id="04.1-spinning-on"),
    pytest.param("04.1", lambda flops: {"intra_op_num_threads": 2}, "runtime:_matched_threads",
                 "expected an onnxruntime.SessionOptions, got dict", id="04.1-a-dict"),
    pytest.param("04.2", lambda flops: speedup(1 / MEDIAN_RATIO), "runtime:_speedup_from_medians",
                 "upside down", id="04.2-inverted"),
    pytest.param("04.2", lambda flops: speedup(statistics.fmean(TORCH_MS) / statistics.fmean(ORT_MS)),
                 "runtime:_speedup_from_medians", "that is the ratio of the means", id="04.2-means"),
    pytest.param("04.2", lambda flops: speedup(min(TORCH_MS) / min(ORT_MS)), "runtime:_speedup_from_medians",
                 "that is the ratio of the fastest runs", id="04.2-fastest-runs"),
    pytest.param("04.2", lambda flops: speedup(3.0), "runtime:_speedup_from_medians",
                 "the speedup does not follow from the two lists of samples", id="04.2-made-up"),
    pytest.param("04.3", lambda flops: work(flops, gflops=flops / 50.0 / 1e9), "runtime:_work_per_second",
                 "off by a power of 1000", id="04.3-milliseconds-as-seconds"),
    pytest.param("04.3", lambda flops: work(flops, gflops=flops / 0.05 / 2e9), "runtime:_work_per_second",
                 "half the expected value", id="04.3-halved"),
    pytest.param("04.3", lambda flops: work(flops, share=100 * flops / 0.05 / 1e9 / 120.0),
                 "runtime:_work_per_second", "give the share as a fraction", id="04.3-percentage"),
    pytest.param("04.4", lambda flops: {"rows": ROWS, "slower": ["int8 dynamic", "int8 static"]},
                 "runtime:_slower_variants", "compare each int8 variant's median latency", id="04.4-all-int8"),
    pytest.param("04.4", lambda flops: {"rows": ROWS, "slower": ["fp32"]}, "runtime:_slower_variants",
                 "the first row is the fp32 baseline itself", id="04.4-the-baseline"),
    pytest.param("04.4", lambda flops: {"rows": ROWS, "slower": ["int8 qdq"]}, "runtime:_slower_variants",
                 "['int8 qdq'] are not variants in the table", id="04.4-unknown-variant"),
]


@pytest.mark.parametrize("exercise, make, check, feedback", WRONG_FOR_PUBLIC)
def test_wrong_answer_fails_a_public_check_with_a_hint(graded, flops, exercise, make, check, feedback):
    """Does the student's own check() refuse this answer with a hint that gives nothing away?"""
    words = {"04.1": ["ORT_SEQUENTIAL"], "04.2": ["median"], "04.3": [f"{flops / 0.05 / 1e9:.1f}"],
             "04.4": ["int8 dynamic"]}
    assert_fails_public(graded(exercise, make(flops)), check, feedback, answer_words=words[exercise])


def test_every_check_of_this_notebook_has_a_wrong_answer_here():
    """Is every hidden and every public check of notebook 04 tried with a wrong answer above?"""
    assert registered_checks("runtime", hidden=True) == {p.values[2] for p in WRONG_FOR_HIDDEN}
    assert registered_checks("runtime", hidden=False) == {p.values[2] for p in WRONG_FOR_PUBLIC}
