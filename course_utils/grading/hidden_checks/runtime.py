"""Hidden checks for notebook 04 (runtime comparison): grader only, never released."""
from __future__ import annotations

from ...checks import CheckFailed, register
from ...exercise_checks.export import load_answer_onnx
from ...exercise_checks.runtime import digits_accuracy


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
