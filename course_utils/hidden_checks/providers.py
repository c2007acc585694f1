"""Hidden checks for notebook 01 (execution providers): grader only, never released."""
from __future__ import annotations

from ..checks import CheckFailed, register
from ..exercise_checks.providers import _NVIDIA
from ..providers import PROVIDER_TARGETS


@register("01.1", hidden=True)
def _nvidia_providers(answer):
    gpu = list(answer["nvidia_gpu"])
    wrong = [name for name in gpu if name not in _NVIDIA]
    if wrong:
        raise CheckFailed(f"{wrong[0]} targets {PROVIDER_TARGETS.get(wrong[0], 'other hardware')}, "
                          "not NVIDIA GPUs in general")
    if gpu[0] != "CUDAExecutionProvider":
        raise CheckFailed("the most common NVIDIA provider needs only CUDA, not TensorRT; put it first")


@register("01.2", hidden=True)
def _cuda_first(priority):
    if priority[0] != "CUDAExecutionProvider":
        raise CheckFailed("the list should try the NVIDIA GPU first")


@register("01.3", hidden=True)
def _not_the_package_list(used):
    import onnxruntime as ort

    available = ort.get_available_providers()
    usable = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    if list(used) != usable:
        raise CheckFailed("this lists what the package offers or what you asked for, not what the "
                          "session uses: ask the session itself")
