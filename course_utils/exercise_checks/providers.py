"""Checks for notebook 01 (execution providers)."""
from __future__ import annotations

from ..answers import register_answer
from ..checks import CheckFailed, register
from ..providers import PROVIDER_TARGETS

NVIDIA_PROVIDERS = {"CUDAExecutionProvider", "TensorrtExecutionProvider", "NvTensorRTRTXExecutionProvider"}

register_answer("01.1", "cpu_and_gpu")
register_answer("01.2", "priority")
register_answer("01.3", "used")


def _known(name):
    import onnxruntime as ort

    if name not in ort.get_all_providers():
        raise CheckFailed(f"{name!r} is not a provider name; copy names from get_all_providers()")


@register("01.1")
def _shape_of_answer(answer):
    if not isinstance(answer, dict) or set(answer) != {"cpu", "nvidia_gpu"}:
        raise CheckFailed("expected a dict with exactly the keys 'cpu' and 'nvidia_gpu'")
    if not isinstance(answer["nvidia_gpu"], (list, tuple)) or not answer["nvidia_gpu"]:
        raise CheckFailed("'nvidia_gpu' should be a non-empty list of provider names")
    for name in [answer["cpu"], *answer["nvidia_gpu"]]:
        _known(name)
    if answer["cpu"] != "CPUExecutionProvider":
        raise CheckFailed(f"{answer['cpu']} targets {PROVIDER_TARGETS.get(answer['cpu'], 'other hardware')}; "
                          "which provider runs on any CPU?")


@register("01.2")
def _priority(priority):
    if not isinstance(priority, (list, tuple)) or len(priority) < 2:
        raise CheckFailed("expected a list of at least two provider names")
    for name in priority:
        _known(name)
    if priority[-1] != "CPUExecutionProvider":
        raise CheckFailed("the last entry should be a provider that can run every node on any machine")


@register("01.3")
def _used(used):
    if not isinstance(used, (list, tuple)) or not used:
        raise CheckFailed("expected the list of provider names the session reports")
    if "CPUExecutionProvider" not in used:
        raise CheckFailed("a session with the CPU in its priority list always reports it too")
