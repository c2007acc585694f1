"""Hidden checks for notebook 01 (execution providers) and their test data: grader only, never released."""
from __future__ import annotations

from ...checks import CheckFailed, register
from ...exercise_checks.providers import (CPU, call_kernels, device_rows, expect_arguments,
                                          expect_choice, expect_kernels, expect_picked,
                                          kernels_of_run)
from ...placement import profile_events
from ..cases import Cases, Right, Wrong, built


#: A list for any laptop: an NVIDIA GPU, else any DirectX 12 GPU (Windows), else Core ML (Apple).
_ANY_LAPTOP = [("CUDAExecutionProvider", {"device_id": 0}), ("DmlExecutionProvider", {"device_id": 0}),
               ("CoreMLExecutionProvider", {"ModelFormat": "MLProgram", "MLComputeUnits": "ALL"}),
               (CPU, {})]


@register("01.2", hidden=True)
def _builds_without_nvidia(fn):
    expect_arguments(fn, _ANY_LAPTOP, ["DmlExecutionProvider", CPU], "a Windows build with DirectML")
    expect_arguments(fn, _ANY_LAPTOP, ["CoreMLExecutionProvider", "AzureExecutionProvider", CPU],
                     "a macOS build with Core ML")


@register("01.4", hidden=True)
def _each_name_once(fn):
    cuda = "CUDAExecutionProvider"
    expect_choice(fn, [cuda, cuda, CPU, CPU], [cuda, CPU], [cuda, CPU], "each provider once")


@register("01.4", hidden=True)
def _cpu_last_wherever_it_was_wanted(fn):
    openvino = "OpenVINOExecutionProvider"
    expect_choice(fn, [CPU, openvino], [openvino, CPU], [openvino, CPU],
                  "the CPU provider goes last, whatever its place in `wanted`")


OPENVINO, AUTO = "OpenVINOExecutionProvider", "OpenVINOExecutionProvider.AUTO"

#: A profile recorded with ONNX Runtime 1.31.1 and the OpenVINO plugin 1.8.1 on an Intel CPU
#: (the Det model: two OpenVINO subgraphs, Det on the CPU between them; two runs), trimmed to
#: (cat, name, ts, dur, op_name, provider).
_RECORDED_DET = [
    ("Session", "model_loading_uri", 4, 16499, None, None),
    ("Session", "session_initialization", 16659, 232369, None, None),
    ("Node", f"{OPENVINO}_{OPENVINO}_12910053494168387685_0_0_kernel_time", 249259, 394,
     f"{OPENVINO}_12910053494168387685_0", OPENVINO),
    ("Node", "n0_kernel_time", 249660, 36, "Det", CPU),
    ("Node", f"{OPENVINO}_{OPENVINO}_12910053494168387685_1_1_kernel_time", 249705, 159,
     f"{OPENVINO}_12910053494168387685_1", OPENVINO),
    ("Session", "SequentialExecutor::Execute", 249256, 620, None, None),
    ("Session", "model_run", 249240, 640, None, None),
    ("Node", f"{OPENVINO}_{OPENVINO}_12910053494168387685_0_0_kernel_time", 249952, 104,
     f"{OPENVINO}_12910053494168387685_0", OPENVINO),
    ("Node", "n0_kernel_time", 250062, 12, "Det", CPU),
    ("Node", f"{OPENVINO}_{OPENVINO}_12910053494168387685_1_1_kernel_time", 250080, 66,
     f"{OPENVINO}_12910053494168387685_1", OPENVINO),
    ("Session", "SequentialExecutor::Execute", 249951, 199, None, None),
    ("Session", "model_run", 249944, 210, None, None),
]


def _recorded_det_events() -> list:
    events = []
    for cat, name, ts, dur, op_name, provider in _RECORDED_DET:
        event = {"cat": cat, "name": name, "ph": "X", "ts": ts, "dur": dur, "pid": 2241, "tid": 2241}
        event["args"] = {"op_name": op_name, "provider": provider} if provider else {}
        events.append(event)
    return events


@register("01.3", hidden=True)
def _any_order_and_other_providers(fn):
    import random

    trt, cuda = "TensorrtExecutionProvider", "CUDAExecutionProvider"
    gpu_runs = [[(cpu_or_gpu, op, us * (9 if turn == 0 else 1)) for cpu_or_gpu, op, us in
                 [(CPU, "Shape", 3), (trt, f"{trt}_TRTKernel_graph_main_0", 210), (cuda, "Conv", 40),
                  (cuda, "Relu", 7), (CPU, "Gather", 2)]] for turn in range(3)]
    gpu_runs[-1][2] = (cuda, "Conv", 51)
    expect_kernels(fn, [trt, cuda, CPU], gpu_runs, "TensorRT, CUDA and the CPU sharing a model",
                   order="by_ts")
    cpu_first = [[(CPU, "Conv", 90), (CPU, "Relu", 9), (CPU, "Gemm", 13)],
                 [(CPU, "Conv", 31), (CPU, "Relu", 4), (CPU, "Gemm", 12)]]
    expect_kernels(fn, [CPU, OPENVINO], cpu_first, "the CPU provider listed before OpenVINO")
    shuffled_runs = [[(OPENVINO, f"{OPENVINO}_77_0", 700 - 100 * turn), (CPU, "Det", 20 + turn),
                      (OPENVINO, f"{OPENVINO}_77_1", 300 + turn)] for turn in range(4)]
    events = profile_events(shuffled_runs, openvino_ops=2)
    random.Random(1).shuffle(events)
    _expect_on(fn, [OPENVINO, CPU], events, kernels_of_run([OPENVINO, CPU], shuffled_runs[-1]),
               "a profile whose events come in another order")
    recorded = kernels_of_run([OPENVINO, CPU], [(OPENVINO, "a", 104), (CPU, "Det", 12),
                                                 (OPENVINO, "b", 66)])
    _expect_on(fn, [OPENVINO, CPU], _recorded_det_events(), recorded,
               "a profile recorded with OpenVINO on an Intel CPU")


def _expect_on(fn, registered, events, want, what):
    got = call_kernels(fn, registered, events, what)
    same = isinstance(got, dict) and set(got) == set(want) and all(
        isinstance(got[p], dict) and got[p].get("kernels") == want[p]["kernels"]
        and isinstance(got[p].get("ms"), (int, float))
        and abs(got[p]["ms"] - want[p]["ms"]) <= 1e-6 + 1e-6 * want[p]["ms"] for p in want)
    if not same:
        raise CheckFailed(f"kernels_per_provider on {what} gave {got}: a kernel belongs to the "
                          "run whose [ts, ts + dur] holds its ts, whatever its place in the list")


@register("01.5", hidden=True)
def _several_devices_and_no_match(fn):
    rows = device_rows([(OPENVINO, "Intel", "CPU", "Intel"), (OPENVINO, "Intel", "GPU", "Intel"),
                        (CPU, "Microsoft", "CPU", "Intel"), (OPENVINO, "Intel", "GPU", "Intel"),
                        ("DmlExecutionProvider", "Microsoft", "GPU", "NVIDIA")])
    expect_picked(fn, rows, OPENVINO, ["GPU", "CPU"], [1, 3],
                  "every device of the preferred type, in the order of the rows")
    expect_picked(fn, rows, "DmlExecutionProvider", ["NPU", "GPU"], [4], "the next type of `prefer`")
    expect_picked(fn, rows, OPENVINO, ["NPU"], [], "no device of a type in `prefer`")
    expect_picked(fn, [], CPU, ["CPU"], [], "no rows at all")


# --- test data (grading/cases.py): right and wrong answers, the alternative ----------------------

CUDA, TRT = "CUDAExecutionProvider", "TensorrtExecutionProvider"


def session_arguments(wanted, available):
    """01.2's right answer written another way: options looked up by name, values as text."""
    options = dict(wanted)
    names = [name for name in options if name in set(available)]
    return {"providers": names,
            "provider_options": [{k: str(v) for k, v in options[name].items()} for name in names]}


def _kept_pairs(wanted, available):
    return [(name, options) for name, options in wanted if name in available]


def _options_by_position(wanted, available):
    names = [name for name, _ in _kept_pairs(wanted, available)]
    return {"providers": names, "provider_options": [options for _, options in wanted][:len(names)]}


def _names_filtered_options_not(wanted, available):
    return {"providers": [name for name, _ in _kept_pairs(wanted, available)],
            "provider_options": [options for _, options in wanted]}


def _keeps_missing_providers(wanted, available):
    return {"providers": [name for name, _ in wanted], "provider_options": [o for _, o in wanted]}


def _order_of_available(wanted, available):
    options = dict(wanted)
    names = [name for name in available if name in options]
    return {"providers": names, "provider_options": [options[name] for name in names]}


def _options_dropped(wanted, available):
    names = [name for name, _ in _kept_pairs(wanted, available)]
    return {"providers": names, "provider_options": [{} for _ in names]}


def _every_available_provider(wanted, available):
    options = dict(wanted)
    return {"providers": list(available), "provider_options": [options.get(n, {}) for n in available]}


def _pairs_as_providers(wanted, available):
    pairs = _kept_pairs(wanted, available)
    return {"providers": pairs, "provider_options": [options for _, options in pairs]}


def _options_keyed_by_name(wanted, available):
    pairs = _kept_pairs(wanted, available)
    return {"providers": [name for name, _ in pairs], "provider_options": dict(pairs)}


def _tuple_form_only(wanted, available):
    return {"providers": _kept_pairs(wanted, available)}


def _this_machine_s_build(wanted, available):
    """Reads this machine's providers instead of the build it is given."""
    import onnxruntime as ort

    return _order_of_available(wanted, [n for n, _ in wanted if n in ort.get_available_providers()])


def _removes_while_iterating(wanted, available):
    """Removes from the list it walks through, so the entry after each removed one is skipped."""
    wanted = list(wanted)
    for pair in wanted:
        if pair[0] not in available:
            wanted.remove(pair)
    return {"providers": [n for n, _ in wanted], "provider_options": [o for _, o in wanted]}


def _cuda_build(c) -> str | None:
    import onnxruntime as ort

    return "this build has CUDA" if CUDA in ort.get_available_providers() else None


def _drops_only_nvidia(wanted, available):
    """Drops a missing CUDA or TensorRT only, as if a build lacked nothing else."""
    pairs = [(n, o) for n, o in wanted if n in available or n not in (CUDA, TRT)]
    return {"providers": [n for n, _ in pairs], "provider_options": [o for _, o in pairs]}


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


def _last_run(events):
    runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    return max(runs, key=lambda e: e["ts"])


def _kernels(events):
    return [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]


def kernels_per_provider(registered, events):
    """01.3's right answer written another way: the kernels sorted by time, then cut by run."""
    run = _last_run(events)
    inside = [e for e in _kernels(events) if run["ts"] <= e["ts"] <= run["ts"] + run["dur"]]
    return {p: {"kernels": sum(e["args"]["provider"] == p for e in inside),
                "ms": sum(e["dur"] for e in inside if e["args"]["provider"] == p) / 1000}
            for p in registered}


def _through_the_library(registered, events):
    """01.3 answered with the course's own placement_from_profile (it agrees)."""
    from course_utils.placement import placement_from_profile

    shares = placement_from_profile(events)
    return {p: {"kernels": shares[p].kernels if p in shares else 0,
                "ms": shares[p].ms if p in shares else 0.0} for p in registered}


def _every_run(registered, events):
    result = {p: {"kernels": 0, "ms": 0.0} for p in registered}
    for e in _kernels(events):
        result[e["args"]["provider"]]["kernels"] += 1
        result[e["args"]["provider"]]["ms"] += e["dur"] / 1000
    return result


def _first_run(registered, events):
    runs = [e for e in events if e.get("name") == "model_run"]
    run = min(runs, key=lambda e: e["ts"])
    inside = [e for e in _kernels(events) if run["ts"] <= e["ts"] <= run["ts"] + run["dur"]]
    return {p: {"kernels": sum(e["args"]["provider"] == p for e in inside),
                "ms": sum(e["dur"] for e in inside if e["args"]["provider"] == p) / 1000}
            for p in registered}


def _microseconds(registered, events):
    return {p: {"kernels": v["kernels"], "ms": v["ms"] * 1000}
            for p, v in kernels_per_provider(registered, events).items()}


def _only_providers_that_ran(registered, events):
    return {p: v for p, v in kernels_per_provider(registered, events).items() if v["kernels"]}


def _every_event_but_the_session_s(registered, events):
    run = _last_run(events)
    result = {p: {"kernels": 0, "ms": 0.0} for p in registered}
    for e in events:
        if e["cat"] != "Session" and run["ts"] <= e["ts"] <= run["ts"] + run["dur"]:
            result[e["args"]["provider"]]["kernels"] += 1
            result[e["args"]["provider"]]["ms"] += e["dur"] / 1000
    return result


def _run_wall_time(registered, events):
    run = _last_run(events)
    return {p: {"kernels": v["kernels"], "ms": run["dur"] / 1000 if v["kernels"] else 0.0}
            for p, v in kernels_per_provider(registered, events).items()}


def _kernels_after_the_last_but_one_run(registered, events):
    """Cuts the list by position: right in the order ONNX Runtime writes, wrong in any other."""
    runs = [i for i, e in enumerate(events) if e.get("name") == "model_run"]
    start = runs[-2] + 1 if len(runs) > 1 else 0
    inside = [e for e in _kernels(events[start:runs[-1]])]
    return {p: {"kernels": sum(e["args"]["provider"] == p for e in inside),
                "ms": sum(e["dur"] for e in inside if e["args"]["provider"] == p) / 1000}
            for p in registered}


def _second_provider_against_the_cpu(registered, events):
    """Every kernel not on the CPU given to the first registered provider that is not the CPU."""
    other = next((p for p in registered if p != CPU), CPU)
    run = _last_run(events)
    result = {p: {"kernels": 0, "ms": 0.0} for p in registered}
    for e in _kernels(events):
        if run["ts"] <= e["ts"] <= run["ts"] + run["dur"]:
            key = CPU if e["args"]["provider"] == CPU else other
            result[key]["kernels"] += 1
            result[key]["ms"] += e["dur"] / 1000
    return result


def pick_devices(rows, provider, prefer):
    """01.5's right answer written another way: positions grouped by type first."""
    by_type = {}
    for i, row in enumerate(rows):
        if row["ep_name"] == provider:
            by_type.setdefault(row["type"], []).append(i)
    return next((by_type[kind] for kind in prefer if kind in by_type), [])


def _substring(rows, provider, prefer):
    for kind in prefer:
        found = [i for i, r in enumerate(rows) if provider in r["ep_name"] and r["type"] == kind]
        if found:
            return found
    return []


def _every_type(rows, provider, prefer):
    return [i for i, r in enumerate(rows) if r["ep_name"] == provider and r["type"] in prefer]


def _first_row_that_fits(rows, provider, prefer):
    for i, r in enumerate(rows):
        if r["ep_name"] == provider and r["type"] in prefer:
            return [j for j, s in enumerate(rows) if s["ep_name"] == provider and s["type"] == r["type"]]
    return []


def _the_rows_themselves(rows, provider, prefer):
    return [rows[i] for i in pick_devices(rows, provider, prefer)]


def _none_when_absent(rows, provider, prefer):
    return pick_devices(rows, provider, prefer) or None


def _first_device_only(rows, provider, prefer):
    return pick_devices(rows, provider, prefer)[:1]


_SHAPE, _NVIDIA = "providers:_shape_of_answer", "providers:_every_nvidia_provider"
_ARGS = "providers:_arguments_for_three_builds"
_KERNELS = "providers:_kernels_and_time_of_the_last_run"
_PICK = "providers:_picks_one_provider_and_the_preferred_type"
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
                       "via DirectML: not NVIDIA GPUs only"),
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
          alternative='''def session_arguments(wanted, available):
    names, options = [], []
    for name, settings in wanted:
        if name in set(available):
            names.append(name)
            options.append({str(key): str(value) for key, value in settings.items()})
    return dict(providers=names, provider_options=options)''',
          right=[Right("looked-up-by-name", session_arguments),
                 Right("pairs-kept", lambda wanted, available: {
                     "providers": [n for n, _ in wanted if n in available],
                     "provider_options": [o for n, o in wanted if n in available]})],
          wrong=[Wrong("the-result", {"providers": [CPU], "provider_options": [{}]}, _ARGS,
                       "pass the function itself"),
                 Wrong("tuple-form-only", _tuple_form_only, _ARGS,
                       "should return a dict with exactly the keys 'providers' and 'provider_options'"),
                 Wrong("pairs-as-providers", _pairs_as_providers, _ARGS,
                       "'providers' should be a list of provider names (str)"),
                 Wrong("options-keyed-by-name", _options_keyed_by_name, _ARGS,
                       "'provider_options' should be a list of dicts, one per name"),
                 Wrong("names-filtered-options-not", _names_filtered_options_not, _ARGS,
                       "1 provider name(s) but 3 options dict(s): ONNX Runtime wants one dict per name"),
                 Wrong("options-by-position", _options_by_position, _ARGS,
                       "CPUExecutionProvider gets the options `wanted` gives another provider"),
                 Wrong("keeps-missing-providers", _keeps_missing_providers, _ARGS,
                       "which this build lacks: keep only the providers that `available` lists"),
                 Wrong("every-available-provider", _every_available_provider, _ARGS,
                       "AzureExecutionProvider is in the arguments but not in `wanted`"),
                 Wrong("order-of-available", _order_of_available, _ARGS, "keep the order of `wanted`"),
                 Wrong("options-dropped", _options_dropped, _ARGS,
                       "the options of CUDAExecutionProvider are lost"),
                 Wrong("this-machine-s-build", _this_machine_s_build, _ARGS,
                       "CUDAExecutionProvider is missing: `wanted` names it and this build has it",
                       skip=_cuda_build),
                 Wrong("removes-while-iterating", _removes_while_iterating, _ARGS,
                       "the arguments name CUDAExecutionProvider, which this build lacks"),
                 Wrong("drops-only-nvidia", _drops_only_nvidia, "providers:_builds_without_nvidia",
                       "on a Windows build with DirectML, the arguments name CoreMLExecutionProvider")],
          answer_words=["in available", "zip("]),
    Cases("01.3",
          alternative='''def kernels_per_provider(registered, events):
    runs = sorted((e for e in events if e["name"] == "model_run"), key=lambda e: e["ts"])
    begin, end = runs[-1]["ts"], runs[-1]["ts"] + runs[-1]["dur"]
    result = {name: {"kernels": 0, "ms": 0.0} for name in registered}
    for e in events:
        if e["cat"] == "Node" and e["name"].endswith("_kernel_time") and begin <= e["ts"] <= end:
            result[e["args"]["provider"]]["kernels"] += 1
            result[e["args"]["provider"]]["ms"] += e["dur"] / 1e3
    return result''',
          right=[Right("cut-by-run", kernels_per_provider),
                 Right("the-course-s-placement", _through_the_library)],
          wrong=[Wrong("a-dict", {CPU: {"kernels": 2, "ms": 0.02}}, _KERNELS,
                       "pass the function itself"),
                 Wrong("every-run", _every_run, _KERNELS, "kernels of every run"),
                 Wrong("first-run", _first_run, _KERNELS, "that of an earlier run"),
                 Wrong("microseconds", _microseconds, _KERNELS, "looks like microseconds"),
                 Wrong("only-providers-that-ran", _only_providers_that_ran, _KERNELS,
                       "has no entry: every provider the session registered gets one"),
                 Wrong("openvino-s-own-events", _every_event_but_the_session_s, _KERNELS,
                       "the function raised KeyError"),
                 Wrong("the-run-s-whole-time", _run_wall_time, _KERNELS,
                       "should be the sum of its kernels' dur"),
                 Wrong("cut-by-position", _kernels_after_the_last_but_one_run,
                       "providers:_any_order_and_other_providers",
                       "on TensorRT, CUDA and the CPU sharing a model"),
                 Wrong("two-providers-only", _second_provider_against_the_cpu,
                       "providers:_any_order_and_other_providers",
                       "on TensorRT, CUDA and the CPU sharing a model")],
          answer_words=["endswith", "max("]),
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
    Cases("01.5",
          alternative='''def pick_devices(rows, provider, prefer):
    for wanted in prefer:
        picked = [n for n, row in enumerate(rows) if (row["ep_name"], row["type"]) == (provider, wanted)]
        if picked:
            return picked
    return []''',
          right=[Right("grouped-by-type", pick_devices)],
          wrong=[Wrong("a-list", [4], _PICK, "pass the function itself"),
                 Wrong("name-in-name", _substring, _PICK, "a name must match exactly"),
                 Wrong("every-type-in-prefer", _every_type, _PICK, "or of a type other than the first"),
                 Wrong("first-row-that-fits", _first_row_that_fits, _PICK,
                       "a type other than the first in `prefer` that this provider offers"),
                 Wrong("the-rows-themselves", _the_rows_themselves, _PICK,
                       "return a list of positions"),
                 Wrong("none-when-absent", _none_when_absent, _PICK, "pick_devices returned NoneType"),
                 Wrong("first-device-only", _first_device_only, "providers:_several_devices_and_no_match",
                       "pick_devices(rows, 'OpenVINOExecutionProvider', ['GPU', 'CPU']) gave [1]")],
          answer_words=["enumerate"]),
]
