"""Hidden checks for notebook 01 (execution providers): grader only, never released."""
from __future__ import annotations

from ...checks import register
from ...exercise_checks.providers import CPU, expect_choice


@register("01.4", hidden=True)
def _each_name_once(fn):
    cuda = "CUDAExecutionProvider"
    expect_choice(fn, [cuda, cuda, CPU, CPU], [cuda, CPU], [cuda, CPU], "each provider once")


@register("01.4", hidden=True)
def _cpu_last_wherever_it_was_wanted(fn):
    openvino = "OpenVINOExecutionProvider"
    expect_choice(fn, [CPU, openvino], [openvino, CPU], [openvino, CPU],
                  "the CPU provider goes last, whatever its place in `wanted`")
