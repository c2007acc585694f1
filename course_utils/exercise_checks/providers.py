"""Checks for notebook 01 (execution providers): 01.1 the CPU and NVIDIA providers, 01.2
``session_arguments`` (a build's providers, each with its own options), 01.3
``kernels_per_provider`` (what a session registered against what ran, from a profile), 01.4
``choose_providers``, 01.5 ``pick_devices`` (ONNX Runtime's device list).

Nothing here is an answer to copy: the NVIDIA providers are those the course's own table
(``PROVIDER_TARGETS``, printed in the notebook) says run on NVIDIA GPUs only (built on NVIDIA's
CUDA, cuDNN or TensorRT; vendor-neutral ones such as DirectML or WebGPU run on NVIDIA GPUs
too, but not on them alone). The function answers are called with plain data the checks make
here: builds' provider lists with options per provider, profiles in the form ONNX Runtime's
profiler writes (``placement.profile_events``) and device rows as the notebook makes them from
``ort.get_ep_devices()`` (:func:`device_rows`); the expected results come from how those were
made, not from a second solution. The hidden checks (grader only) try the functions on data
these checks do not.
"""
from __future__ import annotations

from ..answers import register_answer
from ..checks import CheckFailed, register, what_it_raised
from ..placement import profile_events
from ..providers import PROVIDER_TARGETS

CPU = "CPUExecutionProvider"

register_answer("01.1", "cpu_and_gpu")
register_answer("01.2", "session_arguments", kind="function")
register_answer("01.3", "kernels_per_provider", kind="function")
register_answer("01.4", "choose_providers", kind="function")
register_answer("01.5", "pick_devices", kind="function")


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
        raise CheckFailed(f"{wrong[0]} targets {PROVIDER_TARGETS.get(wrong[0], 'other hardware')}: "
                          "not NVIDIA GPUs only; the task asks for the providers that run on "
                          "NVIDIA GPUs alone")
    if len(set(gpu)) != len(gpu):
        raise CheckFailed("a provider is listed twice")
    if len(gpu) < len(nvidia):
        raise CheckFailed(f"{len(nvidia) - len(gpu)} more row(s) of the table target NVIDIA GPUs "
                          "only")
    if "TensorRT" in nvidia[gpu[0]]:
        raise CheckFailed(f"{gpu[0]} needs TensorRT; put first the one without TensorRT (it "
                          "needs CUDA and cuDNN)")


# --- 01.2: session_arguments, each provider with its own options ------------------------------

def _as_text(options) -> dict:
    """Options as ONNX Runtime's Python layer passes them on: keys and values made ``str``."""
    return {str(key): str(value) for key, value in options.items()}


def call_arguments(fn, wanted, available, what: str) -> tuple[list, list]:
    """The names and options (as text) of the student's ``session_arguments(wanted, available)``,
    or a hint when they cannot go to ``ort.InferenceSession`` as they are."""
    try:
        got = fn([(name, dict(options)) for name, options in wanted], list(available))
    except Exception as error:  # the student's code; in the grader only the type's name crosses
        said = what_it_raised(error)
        raise CheckFailed(f"session_arguments on {what}: {said}") from None
    if not isinstance(got, dict) or set(got) != {"providers", "provider_options"}:
        raise CheckFailed("session_arguments should return a dict with exactly the keys 'providers' "
                          "and 'provider_options', the keyword arguments of ort.InferenceSession")
    names, options = got["providers"], got["provider_options"]
    if not isinstance(names, (list, tuple)) or not all(isinstance(name, str) for name in names):
        raise CheckFailed("'providers' should be a list of provider names (str); the options go "
                          "to 'provider_options'")
    if not isinstance(options, (list, tuple)) or not all(isinstance(o, dict) for o in options):
        raise CheckFailed("'provider_options' should be a list of dicts, one per name of "
                          "'providers', in the same order")
    if len(names) != len(options):
        raise CheckFailed(f"on {what}, {len(names)} provider name(s) but {len(options)} options "
                          "dict(s): ONNX Runtime wants one dict per name; otherwise it prints "
                          "'EP Error' and retries with the CPU provider alone")
    return list(names), [_as_text(o) for o in options]


def expect_arguments(fn, wanted, available, what: str) -> None:
    """Fail with a hint unless ``session_arguments(wanted, available)`` keeps, in the order of
    ``wanted``, each provider ``available`` has with its own options (values compared as text)."""
    names, options = call_arguments(fn, wanted, available, what)
    asked = {name: _as_text(o) for name, o in wanted}
    kept = [name for name, _ in wanted if name in available]
    lacking = [name for name in names if name not in available]
    if lacking:
        raise CheckFailed(f"on {what}, the arguments name {lacking[0]}, which this build lacks: "
                          "keep only the providers that `available` lists")
    unasked = [name for name in names if name not in asked]
    if unasked:
        raise CheckFailed(f"on {what}, {unasked[0]} is in the arguments but not in `wanted`: "
                          "ask only for providers that `wanted` names")
    missing = [name for name in kept if name not in names]
    if missing:
        raise CheckFailed(f"on {what}, {missing[0]} is missing: `wanted` names it and this build "
                          "has it")
    if names != kept:
        raise CheckFailed(f"on {what}, the arguments give {names}: keep the order of `wanted` (its "
                          "order is the preference), each provider once")
    for name, given in zip(names, options):
        if given == asked[name]:
            continue
        if given and given in [o for other, o in asked.items() if other != name]:
            raise CheckFailed(f"on {what}, {name} gets the options `wanted` gives another provider: "
                              "when a provider is dropped, its options go with it")
        if not given:
            raise CheckFailed(f"on {what}, the options of {name} are lost: each name keeps the "
                              "options `wanted` pairs it with")
        raise CheckFailed(f"on {what}, {name} gets {given}: not the options `wanted` pairs it with")


@register("01.2")
def _arguments_for_three_builds(fn):
    if not callable(fn):
        raise CheckFailed("pass the function itself: check('01.2', session_arguments)")
    cuda, trt = "CUDAExecutionProvider", "TensorrtExecutionProvider"
    fast = {"trt_fp16_enable": True, "trt_engine_cache_enable": True}
    expect_arguments(fn, [(trt, fast), (cuda, {"device_id": 1}), (CPU, {})],
                     ["AzureExecutionProvider", CPU], "a CPU-only build (Azure and the CPU)")
    expect_arguments(fn, [(cuda, {"device_id": 1, "cudnn_conv_algo_search": "HEURISTIC"}), (CPU, {})],
                     [trt, cuda, CPU], "a GPU build (TensorRT, CUDA and the CPU)")
    expect_arguments(fn, [(cuda, {"device_id": 0}), (trt, fast), (CPU, {})], [trt, cuda, CPU],
                     "a GPU build where `wanted` prefers CUDA to TensorRT")


# --- 01.4: choose_providers -----------------------------------------------------------------

def call_choose(fn, wanted, available) -> list:
    """The student's ``choose_providers(wanted, available)`` as a list, or a hint."""
    try:
        result = fn(list(wanted), list(available))
    except Exception as error:  # the student's code; in the grader only the type's name crosses
        what = what_it_raised(error)
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


# --- 01.3: kernels_per_provider, from a profile's events ------------------------------------

def kernels_of_run(registered, run) -> dict:
    """``{provider: {"kernels": n, "ms": t}}`` of one run as ``profile_events`` takes it."""
    return {provider: {"kernels": sum(p == provider for p, _, _ in run),
                       "ms": sum(us for p, _, us in run if p == provider) / 1e3}
            for provider in registered}


def _close(a, b) -> bool:
    return isinstance(a, (int, float)) and not isinstance(a, bool) and abs(a - b) <= 1e-6 + 1e-6 * abs(b)


def call_kernels(fn, registered, events, what: str):
    """The student's ``kernels_per_provider(registered, events)``, or a hint if it raised."""
    try:
        return fn(list(registered), events)
    except Exception as error:  # the student's code; in the grader only the type's name crosses
        said = what_it_raised(error)
        raise CheckFailed(f"kernels_per_provider on {what}: {said} (kernels are the events of "
                          "category Node whose name ends in _kernel_time; other events carry no "
                          "provider)") from None


def expect_kernels(fn, registered, runs, what: str, **shape) -> None:
    """Fail with a hint unless ``fn(registered, events)`` gives the last run's kernels and ms."""
    got = call_kernels(fn, registered, profile_events(runs, **shape), what)
    if not isinstance(got, dict):
        raise CheckFailed(f"kernels_per_provider returned {type(got).__name__}; return a dict: "
                          "provider -> {'kernels': ..., 'ms': ...}")
    want = kernels_of_run(registered, runs[-1])
    every_run = [kernels_of_run(registered, run) for run in runs]
    for provider in registered:
        if provider not in got:
            raise CheckFailed(f"on {what}, {provider} has no entry: every provider the session "
                              "registered gets one, with 0 kernels where it ran none")
    extra = [key for key in got if key not in want]
    if extra:
        raise CheckFailed(f"on {what}, the key {extra[0]!r} is no provider the session registered; "
                          "key the dict by the provider in each kernel's args")
    for provider in registered:
        entry = got[provider]
        if not isinstance(entry, dict) or set(entry) != {"kernels", "ms"}:
            raise CheckFailed("each value should be a dict with exactly the keys 'kernels' and 'ms'")
        kernels, ms = entry["kernels"], entry["ms"]
        if kernels != want[provider]["kernels"]:
            if kernels == sum(run[provider]["kernels"] for run in every_run) and len(runs) > 1:
                raise CheckFailed(f"on {what}, you counted {provider}'s kernels of every run: count "
                                  "the last model_run's only (a kernel belongs to the run whose "
                                  "[ts, ts + dur] holds its ts)")
            raise CheckFailed(f"on {what}, {provider} ran {want[provider]['kernels']} kernel(s) in "
                              f"the last run, not {kernels}: kernels are the events of category "
                              "Node whose name ends in _kernel_time")
        if not _close(ms, want[provider]["ms"]):
            if _close(ms, want[provider]["ms"] * 1e3):
                raise CheckFailed("'ms' looks like microseconds: an event's dur is in microseconds")
            if _close(ms, sum(run[provider]["ms"] for run in every_run)):
                raise CheckFailed(f"on {what}, {provider}'s time adds up every run; take the last "
                                  "model_run's only")
            if any(_close(ms, run[provider]["ms"]) for run in every_run[:-1]):
                raise CheckFailed(f"on {what}, {provider}'s time is that of an earlier run (the "
                                  "first includes a compiling provider's compilation); take the "
                                  "last model_run")
            raise CheckFailed(f"on {what}, {provider}'s 'ms' should be the sum of its kernels' dur "
                              "in the last run, in milliseconds")


@register("01.3")
def _kernels_and_time_of_the_last_run(fn):
    if not callable(fn):
        raise CheckFailed("pass the function itself: check('01.3', kernels_per_provider)")
    azure = "AzureExecutionProvider"
    expect_kernels(fn, [azure, CPU], [[(CPU, "Gemm", 81), (CPU, "Gemm", 6)],
                                      [(CPU, "Gemm", 14), (CPU, "Gemm", 8)]],
                   "a session asked for Azure, then the CPU")
    openvino = "OpenVINOExecutionProvider"
    first, second = f"{openvino}_1230_0", f"{openvino}_1230_1"
    expect_kernels(fn, [openvino, CPU], [[(openvino, first, 24990), (CPU, "Det", 36),
                                          (openvino, second, 15900)],
                                         [(openvino, first, 104), (CPU, "Det", 12),
                                          (openvino, second, 66)]],
                   "OpenVINO with a Det node left to the CPU", openvino_ops=3)


# --- 01.5: pick_devices, from ONNX Runtime's device list -------------------------------------

def device_rows(devices) -> list[dict]:
    """Rows as the notebook makes them from ``ort.get_ep_devices()``, from
    ``(ep_name, ep_vendor, device type, device vendor)`` tuples."""
    return [{"ep_name": ep_name, "ep_vendor": ep_vendor, "type": kind, "vendor": vendor}
            for ep_name, ep_vendor, kind, vendor in devices]


def expect_picked(fn, rows, provider, prefer, expected, why: str) -> None:
    """Fail with ``why`` unless ``pick_devices(rows, provider, prefer) == expected``."""
    try:
        got = fn([dict(row) for row in rows], provider, list(prefer))
    except Exception as error:  # the student's code; in the grader only the type's name crosses
        said = what_it_raised(error)
        raise CheckFailed(f"pick_devices(rows, {provider!r}, {list(prefer)}): {said}") from None
    if not isinstance(got, (list, tuple)) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in got):
        raise CheckFailed(f"pick_devices returned {type(got).__name__}; return a list of positions "
                          "in rows (whole numbers), [] when the provider offers none")
    if list(got) != expected:
        listing = "; ".join(f"{i}: {r['ep_name']} {r['type']}" for i, r in enumerate(rows))
        raise CheckFailed(f"pick_devices(rows, {provider!r}, {list(prefer)}) gave {list(got)} "
                          f"for the rows [{listing}]: {why}")


@register("01.5")
def _picks_one_provider_and_the_preferred_type(fn):
    if not callable(fn):
        raise CheckFailed("pass the function itself: check('01.5', pick_devices)")
    openvino, auto = "OpenVINOExecutionProvider", "OpenVINOExecutionProvider.AUTO"
    laptop = device_rows([(CPU, "Microsoft", "CPU", "Intel"), (auto, "Intel", "CPU", "Intel"),
                          (openvino, "Intel", "CPU", "Intel"), (auto, "Intel", "GPU", "Intel"),
                          (openvino, "Intel", "GPU", "Intel")])
    expect_picked(fn, laptop, openvino, ["GPU", "CPU"], [4],
                  "a device of another provider (a name must match exactly: one "
                  "add_provider_for_devices call takes the devices of one provider), or of a "
                  "type other than the first in `prefer` that this provider offers")
    expect_picked(fn, laptop, openvino, ["NPU", "CPU", "GPU"], [2],
                  "the first type of `prefer` that the provider offers wins (it offers no NPU "
                  "here), whatever the order of the rows")
    amd = device_rows([(CPU, "Microsoft", "CPU", "AMD")])
    expect_picked(fn, amd, openvino, ["GPU", "CPU"], [],
                  "a provider that offers no device here gets an empty list")
