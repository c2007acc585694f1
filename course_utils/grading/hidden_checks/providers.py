"""Hidden checks for notebook 01 (execution providers) and their test data: grader only, never released."""
from __future__ import annotations

from ...checks import register
from ...exercise_checks.providers import CPU, expect_choice
from ..cases import Cases, Right, Wrong, built, providers_used


@register("01.4", hidden=True)
def _each_name_once(fn):
    cuda = "CUDAExecutionProvider"
    expect_choice(fn, [cuda, cuda, CPU, CPU], [cuda, CPU], [cuda, CPU], "each provider once")


@register("01.4", hidden=True)
def _cpu_last_wherever_it_was_wanted(fn):
    openvino = "OpenVINOExecutionProvider"
    expect_choice(fn, [CPU, openvino], [openvino, CPU], [openvino, CPU],
                  "the CPU provider goes last, whatever its place in `wanted`")


# --- test data (grading/cases.py): right and wrong answers, the alternative ----------------------

CUDA, TRT = "CUDAExecutionProvider", "TensorrtExecutionProvider"
PRIORITY = [CUDA, CPU]


def nvidia_from_the_table() -> list:
    """Every provider the course's table lists as targeting an NVIDIA GPU."""
    from ...providers import list_providers

    return [p.name for p in list_providers() if "NVIDIA" in p.target]


def _unknown(wanted) -> bool:
    import onnxruntime as ort

    return bool(set(wanted) - set(ort.get_all_providers()))


def choose_providers(wanted, available):
    """01.4's right answer, written another way than the reference (dict.fromkeys keeps order)."""
    if _unknown(wanted):
        raise ValueError(f"not providers: {sorted(wanted)}")
    return [p for p in dict.fromkeys(wanted) if p in available and p != CPU] + [CPU]


def _keeps_duplicates(wanted, available):
    if _unknown(wanted):
        raise ValueError("unknown")
    return [p for p in wanted if p in available and p != CPU] + [CPU]


def _cpu_where_it_was(wanted, available):
    if _unknown(wanted):
        raise ValueError("unknown")
    chosen = list(dict.fromkeys(p for p in wanted if p in available))
    return chosen if CPU in chosen else chosen + [CPU]


def _no_cpu_fallback(wanted, available):
    return [p for p in wanted if p in available]


def _available_order(wanted, available):
    return [p for p in available if p in wanted and p != CPU] + [CPU]


def _keeps_missing(wanted, available):
    if _unknown(wanted):
        raise ValueError("unknown")
    return [p for p in dict.fromkeys(wanted) if p != CPU] + [CPU]


def _drops_misspelt_silently(wanted, available):
    return [p for p in dict.fromkeys(wanted) if p in available and p != CPU] + [CPU]


def _raises_key_error(wanted, available):
    import onnxruntime as ort

    known = {p: p for p in ort.get_all_providers()}
    return [known[p] for p in dict.fromkeys(wanted) if p in available and p != CPU] + [CPU]


@built
def _package_list_or_cpu_twice(c):
    """The package's own list where it differs from what the session uses; else a wrong list."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return available if available != providers_used(c) else [CPU, CPU]


_SHAPE, _NVIDIA = "providers:_shape_of_answer", "providers:_every_nvidia_provider"
CASES = [
    Cases("01.1",
          right=[Right("cpu-and-the-table", built(lambda c: {
              "cpu": CPU, "nvidia_gpu": [CUDA] + [p for p in nvidia_from_the_table() if p != CUDA]}))],
          wrong=[Wrong("missing-key", {"cpu": CPU}, _SHAPE,
                       "expected a dict with exactly the keys 'cpu' and 'nvidia_gpu'"),
                 Wrong("short-name", {"cpu": "CPU", "nvidia_gpu": [CUDA]}, _SHAPE,
                       "'CPU' is not a provider name; copy names from get_all_providers()"),
                 Wrong("intel-only-cpu-provider", {"cpu": "DnnlExecutionProvider", "nvidia_gpu": [CUDA]},
                       _SHAPE, "which provider runs on any CPU?"),
                 Wrong("directml", {"cpu": CPU, "nvidia_gpu": [CUDA, "DmlExecutionProvider"]}, _NVIDIA,
                       "DirectML, not NVIDIA GPUs"),
                 Wrong("one-left-out", {"cpu": CPU, "nvidia_gpu": [CUDA, TRT]}, _NVIDIA,
                       "more row(s) of the table target NVIDIA GPUs"),
                 Wrong("cuda-left-out", built(lambda c: {
                     "cpu": CPU, "nvidia_gpu": [p for p in nvidia_from_the_table() if p != CUDA]}), _NVIDIA,
                       "more row(s) of the table target NVIDIA GPUs"),
                 Wrong("tensorrt-first", built(lambda c: {
                     "cpu": CPU, "nvidia_gpu": [TRT, CUDA] + [p for p in nvidia_from_the_table()
                                                           if p not in (CUDA, TRT)]}), _NVIDIA,
                       "needs TensorRT; put first the one without TensorRT"),
                 Wrong("twice", {"cpu": CPU, "nvidia_gpu": [CUDA, CUDA, TRT]}, _NVIDIA,
                       "a provider is listed twice")],
          answer_words=["CPUExecutionProvider'", "NvTensorRTRTX"]),
    Cases("01.2",
          alternative='''priority = ("CUDAExecutionProvider", "CPUExecutionProvider")
session = ort.InferenceSession(str(Path("artifacts") / "small.onnx"), providers=list(priority))''',
          right=[Right("cuda-then-cpu", PRIORITY)],
          wrong=[Wrong("no-fallback", [CUDA], "providers:_priority",
                       "expected a list of at least two provider names"),
                 Wrong("cpu-first", [CPU, CUDA], "providers:_priority",
                       "the last entry should be a provider that can run every node"),
                 Wrong("directml-first", ["DmlExecutionProvider", CPU], "providers:_priority",
                       "the task asks for CUDA first"),
                 Wrong("tensorrt-first", [TRT, CUDA, CPU], "providers:_priority",
                       "the task asks for CUDA first")],
          answer_words=["CUDAExecutionProvider"]),
    Cases("01.3",
          alternative="used = [name for name in session.get_providers()]",
          right=[Right("what-the-session-uses", built(providers_used))],
          wrong=[Wrong("a-string", CPU, "providers:_used",
                       "expected the list of provider names the session reports"),
                 Wrong("the-priority-list", built(lambda c: PRIORITY if PRIORITY != providers_used(c)
                                                  else [CPU, CUDA]), "providers:_used",
                       "this lists what the package offers or what you asked for"),
                 Wrong("the-package-list", _package_list_or_cpu_twice, "providers:_used",
                       "this lists what the package offers")],
          answer_words=["get_providers"]),
    Cases("01.4",
          alternative='''def choose_providers(wanted, available):
    valid = set(ort.get_all_providers())
    bad = [name for name in wanted if name not in valid]
    if bad:
        raise ValueError(f"unknown provider(s): {bad}")
    keep = [name for name in dict.fromkeys(wanted) if name in set(available)]
    return [name for name in keep if name != "CPUExecutionProvider"] + ["CPUExecutionProvider"]''',
          right=[Right("dict-fromkeys", choose_providers)],
          wrong=[Wrong("keeps-duplicates", _keeps_duplicates, "providers:_each_name_once", "choose_providers("),
                 Wrong("cpu-left-first", _cpu_where_it_was, "providers:_cpu_last_wherever_it_was_wanted",
                       "choose_providers("),
                 Wrong("no-cpu-fallback", _no_cpu_fallback, "providers:_keeps_what_is_available",
                       "the CPU provider must end the list"),
                 Wrong("keeps-missing-providers", _keeps_missing, "providers:_keeps_what_is_available",
                       "keep only the providers this machine has"),
                 Wrong("order-of-available", _available_order, "providers:_keeps_what_is_available",
                       "keep the order of `wanted`"),
                 Wrong("a-string", lambda wanted, available: ",".join(wanted),
                       "providers:_keeps_what_is_available", "choose_providers returned str"),
                 Wrong("misspelt-dropped", _drops_misspelt_silently, "providers:_refuses_a_misspelt_name",
                       "raise a ValueError, or a typo looks like a missing GPU"),
                 Wrong("key-error-not-value-error", _raises_key_error, "providers:_refuses_a_misspelt_name",
                       "raise a ValueError")],
          answer_words=["get_all_providers", "dict.fromkeys"]),
]
