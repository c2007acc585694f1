"""Hidden checks for notebook 01 (execution providers): grader only, never released."""
from __future__ import annotations

from ...checks import CheckFailed, register
from ...exercise_checks.deployment import make_tiny_model_bytes
from ...exercise_checks.providers import NVIDIA_PROVIDERS
from ...providers import PROVIDER_TARGETS


@register("01.1", hidden=True)
def _nvidia_providers(answer):
    gpu = list(answer["nvidia_gpu"])
    wrong = [name for name in gpu if name not in NVIDIA_PROVIDERS]
    if wrong:
        raise CheckFailed(f"{wrong[0]} targets {PROVIDER_TARGETS.get(wrong[0], 'other hardware')}, "
                          "not NVIDIA GPUs in general")
    if gpu[0] != "CUDAExecutionProvider":
        raise CheckFailed("the most common NVIDIA provider needs only CUDA, not TensorRT; put it first")


@register("01.2", hidden=True)
def _cuda_first(priority):
    if priority[0] != "CUDAExecutionProvider":
        raise CheckFailed("the list should try the NVIDIA GPU first")


def _session_providers(priority):
    """What a session asked for ``priority`` really uses here (a one-node model in memory)."""
    import warnings

    import onnxruntime as ort

    requested = [p for p in priority if p in ort.get_available_providers()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = ort.InferenceSession(make_tiny_model_bytes(), providers=requested)
    return session.get_providers()


@register("01.3", hidden=True)
def _not_the_package_list(used):
    # The truth is what a session with the notebook's priority list reports, not what
    # the package offers: onnxruntime-gpu without a usable GPU falls back to the CPU.
    expected = _session_providers(["CUDAExecutionProvider", "CPUExecutionProvider"])
    if list(used) != list(expected):
        raise CheckFailed("this lists what the package offers or what you asked for, not what the "
                          "session uses: ask the session itself")
