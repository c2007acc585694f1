"""Checks for notebook 01 (execution providers): 01.1 the CPU and NVIDIA providers, 01.2 a
priority list, 01.3 the providers a session registered, 01.4 ``choose_providers``.

Nothing here is an answer to copy: the NVIDIA providers are those the course's own table
(``PROVIDER_TARGETS``, printed in the notebook) says run on NVIDIA GPUs only (built on NVIDIA's
CUDA, cuDNN or TensorRT; vendor-neutral ones such as DirectML or WebGPU run on NVIDIA GPUs
too, but not on them alone), and the providers a session registers are asked of a real
session on this machine (``get_providers()``: the providers the session kept, the CPU one
last; which of them runs each node is in the profiler's per-node ``provider`` field). The hidden checks (grader only) try
``choose_providers`` on cases its task states but these checks do not.
"""
from __future__ import annotations

from ..answers import register_answer
from ..checks import CheckFailed, register
from ..providers import PROVIDER_TARGETS

CPU = "CPUExecutionProvider"

register_answer("01.1", "cpu_and_gpu")
register_answer("01.2", "priority")
register_answer("01.3", "used")
register_answer("01.4", "choose_providers", kind="function")


def _known(name):
    import onnxruntime as ort

    if name not in ort.get_all_providers():
        raise CheckFailed(f"{name!r} is not a provider name; copy names from get_all_providers()")


def nvidia_providers() -> dict[str, str]:
    """{name: target} of every provider the course's table lists as running on NVIDIA GPUs only."""
    import onnxruntime as ort

    return {name: PROVIDER_TARGETS[name] for name in ort.get_all_providers()
            if "NVIDIA GPUs only" in PROVIDER_TARGETS.get(name, "")}


@register("01.1")
def _shape_of_answer(answer):
    if not isinstance(answer, dict) or set(answer) != {"cpu", "nvidia_gpu"}:
        raise CheckFailed("expected a dict with exactly the keys 'cpu' and 'nvidia_gpu'")
    if not isinstance(answer["nvidia_gpu"], (list, tuple)) or not answer["nvidia_gpu"]:
        raise CheckFailed("'nvidia_gpu' should be a non-empty list of provider names")
    for name in [answer["cpu"], *answer["nvidia_gpu"]]:
        _known(name)
    if not PROVIDER_TARGETS.get(answer["cpu"], "").startswith("any CPU"):  # the table's words
        raise CheckFailed(f"{answer['cpu']} targets {PROVIDER_TARGETS.get(answer['cpu'], 'other hardware')}; "
                          "which provider runs on any CPU?")


@register("01.1")
def _every_nvidia_provider(answer):
    gpu, nvidia = list(answer["nvidia_gpu"]), nvidia_providers()
    wrong = [name for name in gpu if name not in nvidia]
    if wrong:
        raise CheckFailed(f"{wrong[0]} targets {PROVIDER_TARGETS.get(wrong[0], 'other hardware')}, "
                          "not NVIDIA GPUs only")
    if len(set(gpu)) != len(gpu):
        raise CheckFailed("a provider is listed twice")
    if len(gpu) < len(nvidia):
        raise CheckFailed(f"{len(nvidia) - len(gpu)} more row(s) of the table target NVIDIA GPUs "
                          "only")
    if "TensorRT" in nvidia[gpu[0]]:
        raise CheckFailed(f"{gpu[0]} needs TensorRT; put first the one without TensorRT (it "
                          "needs CUDA and cuDNN)")


@register("01.2")
def _priority(priority):
    if not isinstance(priority, (list, tuple)) or len(priority) < 2:
        raise CheckFailed("expected a list of at least two provider names")
    for name in priority:
        _known(name)
    if priority[-1] != CPU:
        raise CheckFailed("the last entry should be a provider that can run every node on any machine")
    if "TensorRT" in PROVIDER_TARGETS.get(priority[0], "") or "CUDA" not in PROVIDER_TARGETS.get(priority[0], ""):
        raise CheckFailed(f"{priority[0]} is first; the task asks for CUDA first (the provider "
                          "that needs CUDA and cuDNN, not TensorRT)")


def session_providers(priority) -> list[str]:
    """The providers a session asked for ``priority`` registers here (a one-node model in memory)."""
    import warnings

    import onnxruntime as ort

    from .deployment import make_tiny_model_bytes

    requested = [p for p in priority if p in ort.get_available_providers()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = ort.InferenceSession(make_tiny_model_bytes(), providers=requested)
    return session.get_providers()


@register("01.3")
def _used(used):
    if not isinstance(used, (list, tuple)) or not used or not all(isinstance(n, str) for n in used):
        raise CheckFailed("expected the list of provider names the session reports")
    # The truth is what a session with the notebook's priority list reports, not what the
    # package offers: onnxruntime-gpu without a usable GPU falls back to the CPU.
    if list(used) != session_providers(["CUDAExecutionProvider", CPU]):
        raise CheckFailed("this lists what the package offers or what you asked for, not the "
                          "providers the session registered: ask the session itself")


# --- 01.4: choose_providers -----------------------------------------------------------------

def call_choose(fn, wanted, available) -> list:
    """The student's ``choose_providers(wanted, available)`` as a list, or a hint."""
    try:
        result = fn(list(wanted), list(available))
    except Exception as error:  # the student's code; in the grader only the type's name crosses
        what = str(error) if "raised" in str(error) else f"the function raised {type(error).__name__}"
        raise CheckFailed(f"choose_providers({wanted}, {available}): {what}") from None
    if not isinstance(result, (list, tuple)):
        raise CheckFailed(f"choose_providers returned {type(result).__name__}; return a list of names")
    return list(result)


def expect_choice(fn, wanted, available, expected, why: str) -> None:
    """Fail with ``why`` unless ``choose_providers(wanted, available) == expected``."""
    got = call_choose(fn, wanted, available)
    if got != expected:
        raise CheckFailed(f"choose_providers({wanted}, {available}) gave {got}: {why}")


@register("01.4")
def _keeps_what_is_available(fn):
    if not callable(fn):
        raise CheckFailed("pass the function itself: check('01.4', choose_providers)")
    cuda, trt = "CUDAExecutionProvider", "TensorrtExecutionProvider"
    expect_choice(fn, [cuda, CPU], [CPU], [CPU], "keep only the providers this machine has")
    expect_choice(fn, [cuda], [cuda, CPU], [cuda, CPU],
                  "the CPU provider must end the list even when `wanted` leaves it out")
    expect_choice(fn, [trt, cuda, CPU], [cuda, trt, CPU], [trt, cuda, CPU],
                  "keep the order of `wanted`, not the order of `available`")


@register("01.4")
def _refuses_a_misspelt_name(fn):
    try:
        fn(["CudaExecutionProvider", CPU], [CPU])
    except CheckFailed:
        raise
    except Exception as error:  # in the grader, the student's raise arrives by its type name only
        if "ValueError" in f"{type(error).__name__} {error}":
            return
        raise CheckFailed(f"a misspelt name raised {error or type(error).__name__}; raise a ValueError") from None
    raise CheckFailed("choose_providers accepted 'CudaExecutionProvider', which is no provider "
                      "(mind the case): raise a ValueError, or a typo looks like a missing GPU")
