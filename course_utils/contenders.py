"""The runtimes a user would pick instead: one model, every contender, each precision named.

Covers: what each contender is (:data:`CONTENDERS`: eager PyTorch in NCHW and
channels_last, ``torch.compile`` with inductor, bf16 autocast, ONNX Runtime fp32
and static int8, OpenVINO reading the same ``.onnx`` files with its precision
pinned, directly and as ONNX Runtime's execution provider), whether it can run
here (:func:`why_unavailable`: a package not installed, no C++ compiler, no bf16
instructions, a plugin without a device: a skipped row with the reason, never a
failure), timing them in alternating rounds with matched threads
(:func:`compare_runtimes`), the digits accuracy of every row that is not fp32, and
the fastest row. Does not cover: the sweep over shapes and optimisation levels
(``benchmark.py``), the timing primitives (``timing.py``), quantising
(``quantization.py``; the int8 rows take files already quantised).

Precision is part of each row's name because runtimes choose it silently:
OpenVINO runs bf16 by default on a CPU with AVX512-BF16 or AMX, so its fp32 row
pins ``INFERENCE_PRECISION_HINT`` to f32 and reads back what it got. The
``ort-openvino`` rows run the same files through ONNX Runtime with OpenVINO as its
execution provider (the plugin package ``onnxruntime-ep-openvino``, beside the
course's ``onnxruntime``; never ``onnxruntime-openvino``, which replaces it), the
precision pinned the same way through the provider's ``load_config``. ONNX Runtime
cannot read the hint back, so the row records the precision of every kernel OpenVINO
ran in one profiled run before the timed ones (resnet18: 25 kernels, all f32; bf16
where the pin is left out), and how many nodes each provider took. Where the plugin
offers no device (no wheel, or a CPU that is not Intel's), the rows are skipped with
the reason.
"""
from __future__ import annotations

import copy
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from .devices import OPENVINO, register_openvino
from .formatting import format_table
from .placement import RECORD_ASSIGNMENT, assigned_nodes, kernel_precisions
from .providers import make_session
from .sessions import fair_session_options
from .timing import MIN_INTERVAL_SAMPLES, ratio_interval, summarize_times, take_turns

__all__ = ["CONTENDERS", "why_unavailable", "compare_runtimes", "format_contenders",
           "fastest_row", "compile_for_inference"]

#: runtime -> (what it is, the precision its arithmetic runs in)
CONTENDERS = {
    "torch-eager": ("PyTorch eager, NCHW", "fp32"),
    "torch-channels-last": ("PyTorch eager, channels_last", "fp32"),
    "torch-compile": ("torch.compile (inductor, frozen weights), channels_last", "fp32"),
    "torch-bf16": ("PyTorch eager, channels_last, autocast", "bf16"),
    "ort": ("ONNX Runtime, graph level all", "fp32"),
    "ort-int8": ("ONNX Runtime, static QDQ U8S8 file", "int8 (QDQ U8S8)"),
    "openvino": ("OpenVINO, same .onnx, precision hint f32", "fp32"),
    "openvino-bf16": ("OpenVINO, same .onnx, precision hint bf16", "bf16"),
    "openvino-int8": ("OpenVINO, the QDQ U8S8 file, hint f32", "int8 (QDQ U8S8)"),
    "ort-openvino": ("ONNX Runtime, OpenVINO provider (plugin), hint f32", "fp32"),
    "ort-openvino-int8": ("ONNX Runtime, OpenVINO provider, the QDQ U8S8 file, hint f32",
                          "int8 (QDQ U8S8)"),
}
_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


def why_unavailable(runtime: str, hardware: dict, *, int8_path=None) -> str | None:
    """Why ``runtime`` cannot run here (a sentence), or None when it can."""
    import importlib.util

    if runtime not in CONTENDERS:
        raise KeyError(f"unknown runtime {runtime!r}; choose from {list(CONTENDERS)}")
    if runtime.startswith("openvino") and importlib.util.find_spec("openvino") is None:
        return "the openvino package is not installed (pip install openvino)"
    if runtime.startswith("ort-openvino"):
        status = register_openvino()
        if not status.usable:
            return status.reason
    if runtime == "torch-compile" and not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        return "torch.compile's inductor needs a C++ compiler on the CPU, and none is on PATH"
    if runtime.endswith("bf16"):
        flags = {name for name, has in hardware.get("flags", {}).items() if has}
        if not flags & set(_BF16_FLAGS):
            return ("this CPU has no bf16 instructions (AVX512-BF16, AMX or Arm bf16): bf16 "
                    "would be emulated, not a real option here")
    if runtime.endswith("int8") and int8_path is None:
        return "no int8 file given"
    return None


def compile_for_inference(model):
    """``torch.compile`` with inductor's freezing, the option it offers for inference.

    Freezing treats the weights as constants (the model must not be trained afterwards, and
    the first call must run under ``torch.inference_mode()`` or ``torch.no_grad()``):
    BatchNorm folds into the convolution before it and the weights are packed for the CPU's
    convolution library once. Measured on resnet18 at 224 px (AMD EPYC, 2 cores, cold
    cache): the first call took 15 s instead of 20 s, and each call after it 11 ms instead of 17.
    """
    import torch

    return torch.compile(model, options={"freezing": True})


def _openvino_model(path, threads: int, precision: str):
    """(compiled model, the precision it reports) for one .onnx file on the CPU."""
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", {
        "INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": int(threads),
        "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1})
    used = compiled.get_property("INFERENCE_PRECISION_HINT")  # an openvino Type, e.g. f32
    return compiled, used.get_type_name() if hasattr(used, "get_type_name") else str(used)


def _openvino_provider_session(path, threads: int, array):
    """(session, facts): OpenVINO first, precision pinned to f32, after one profiled run.

    The facts are the nodes each provider took and the precision of each kernel OpenVINO
    ran (ONNX Runtime cannot read back the hint; the profile shows what ran). Profiling ends
    before the timed runs.
    """
    options = fair_session_options(threads, "all")
    options.add_session_config_entry(RECORD_ASSIGNMENT, "1")
    options.enable_profiling = True
    with tempfile.TemporaryDirectory(prefix="contender-profile-") as folder:
        options.profile_file_prefix = str(Path(folder) / "profile")
        session = make_session(path, prefer=[OPENVINO], options=options)
        session.run(None, {session.get_inputs()[0].name: array})
        events = json.loads(Path(session.end_profiling()).read_text())
    return session, {"nodes_per_provider": {p: len(n) for p, n in assigned_nodes(session).items()},
                     "kernel_precisions": kernel_precisions(events)}


def _prepare(runtime, model, onnx_path, int8_path, x, threads):
    """(fn, settings) of one contender, already past any compilation."""
    import torch

    settings = {}
    if runtime.startswith("torch"):
        net, feed = model, x
        if runtime != "torch-eager":
            net = copy.deepcopy(model).to(memory_format=torch.channels_last)
            feed = x.contiguous(memory_format=torch.channels_last)
        if runtime == "torch-compile":
            net = compile_for_inference(net)
            start = time.perf_counter()
            with torch.inference_mode():
                net(feed)  # the first call compiles
            settings["compile_ms"] = (time.perf_counter() - start) * 1e3
        if runtime == "torch-bf16":
            def fn():
                with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                    net(feed)
        else:
            def fn():
                with torch.inference_mode():
                    net(feed)
        return fn, settings
    path = int8_path if runtime.endswith("int8") else onnx_path
    array = x.numpy()
    start = time.perf_counter()
    if runtime.startswith("ort-openvino"):
        session, facts = _openvino_provider_session(path, threads, array)
        name = session.get_inputs()[0].name
        settings.update(setup_ms=(time.perf_counter() - start) * 1e3, **facts)
        return (lambda: session.run(None, {name: array})), settings
    if runtime.startswith("ort"):
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), fair_session_options(threads, "all"),
                                       providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        settings["setup_ms"] = (time.perf_counter() - start) * 1e3
        return (lambda: session.run(None, {name: array})), settings
    compiled, used = _openvino_model(path, threads, "bf16" if runtime == "openvino-bf16" else "f32")
    settings.update(setup_ms=(time.perf_counter() - start) * 1e3, precision_hint_used=used)
    request = compiled.create_infer_request()
    return (lambda: request.infer({0: array})), settings


def _digits_accuracy(runtime, digits) -> float | None:
    """Accuracy of the digits CNN run the way ``runtime`` runs (its precision), or None."""
    import torch

    x, y = digits["x"], np.asarray(digits["y"])
    if runtime in ("torch-eager", "torch-bf16"):
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16,
                                                    enabled=runtime == "torch-bf16"):
            logits = digits["model"](torch.as_tensor(x)).float().numpy()
    elif runtime == "ort-int8":
        import onnxruntime as ort

        session = ort.InferenceSession(str(digits["int8"]), providers=["CPUExecutionProvider"])
        logits = session.run(None, {session.get_inputs()[0].name: x})[0]
    elif runtime == "ort-openvino-int8":
        session, _ = _openvino_provider_session(digits["int8"], 1, x[:1])
        logits = session.run(None, {session.get_inputs()[0].name: x})[0]
    elif runtime in ("openvino-bf16", "openvino-int8"):
        path = digits["int8"] if runtime == "openvino-int8" else digits["fp32"]
        compiled, _ = _openvino_model(path, 1, "bf16" if runtime == "openvino-bf16" else "f32")
        logits = compiled.create_infer_request().infer({0: x})[0]
    else:
        return None
    return float((np.argmax(logits, axis=1) == y).mean())


def compare_runtimes(model, onnx_path, x, *, runtimes=None, int8_path=None, threads: int,
                     hardware: dict, cfg: dict, digits: dict | None = None) -> list:
    """Time every contender on the same input, in alternating rounds; one row each.

    Args:
        model: the ``torch.nn.Module`` (eval mode) that ``onnx_path`` was exported from.
        onnx_path: its fp32 ONNX file; ``int8_path``: the same model quantised (QDQ U8S8).
        x: the input, a CPU tensor ``(batch, 3, H, W)``.
        runtimes: names from :data:`CONTENDERS` (default: all of them).
        threads: intra-op threads for every runtime (PyTorch's are set and restored).
        hardware: a :func:`course_utils.hardware.describe_hardware` record.
        cfg: ``warmup``, ``budget_s``, ``min_repeats``, ``max_repeats``, ``round_runs``,
            ``headline_samples`` (see :func:`course_utils.timing.take_turns`).
        digits: ``{"model", "fp32", "int8", "x", "y"}``: the digits CNN, its fp32 and
            int8 files and held-out images and labels, for the accuracy of every row
            that is not fp32 (and of eager fp32, the baseline).

    Returns:
        One dict per runtime, in the order asked: ``runtime``, ``label``, ``precision``,
        ``skipped`` (None or why), and for measured rows the median, quartiles, IQR,
        ``n``, ``speedup`` over eager PyTorch with its interval (or None and why),
        ``setup_ms`` or ``compile_ms``, ``digits_accuracy``.
    """
    import torch

    runtimes = list(runtimes or CONTENDERS)
    rows, calls = [], {}
    previous = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        for runtime in runtimes:
            label, precision = CONTENDERS[runtime]
            row = {"runtime": runtime, "label": label, "precision": precision, "skipped":
                   why_unavailable(runtime, hardware, int8_path=int8_path)}
            if row["skipped"] is None:
                try:
                    fn, settings = _prepare(runtime, model, onnx_path, int8_path, x, threads)
                    row.update(settings)
                    calls[runtime] = (fn, None)
                except Exception as error:  # a contender that fails here is a skipped row
                    first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
                    row["skipped"] = f"it failed to start here ({type(error).__name__}: {first})"
            rows.append(row)
        samples, first, _ = take_turns(calls, cfg, headline=True) if calls else ({}, {}, {})
    finally:
        torch.set_num_threads(previous)
    eager = samples.get("torch-eager")
    for row in rows:
        if row["skipped"]:
            continue
        own = samples[row["runtime"]]
        row.update(summarize_times(own), first_call_ms=first[row["runtime"]],
                   samples_ms=[round(v, 4) for v in own])
        row["speedup"] = float(np.median(eager)) / row["median_ms"] if eager else None
        row["speedup_low"] = row["speedup_high"] = None
        if eager and min(len(eager), len(own)) >= MIN_INTERVAL_SAMPLES:
            row["speedup_low"], row["speedup_high"] = ratio_interval(eager, own)
            row["interval"] = "95% bootstrap of the ratio of medians"
        else:
            row["interval"] = (f"none: fewer than {MIN_INTERVAL_SAMPLES} samples per side"
                               if eager else "none: eager PyTorch not measured")
        row["digits_accuracy"] = (None if digits is None or (row["precision"] == "fp32"
                                                              and row["runtime"] != "torch-eager")
                                  else _digits_accuracy(row["runtime"], digits))
    return rows


def fastest_row(rows: list) -> dict | None:
    """The measured row with the lowest median, with the rows whose quartile bands overlap it."""
    measured = [r for r in rows if not r.get("skipped")]
    if not measured:
        return None
    best = min(measured, key=lambda r: r["median_ms"])
    tied = [r["runtime"] for r in measured if r is not best and r["q1_ms"] <= best["q3_ms"]]
    return {"runtime": best["runtime"], "label": best["label"], "precision": best["precision"],
            "median_ms": best["median_ms"], "speedup": best.get("speedup"),
            "speedup_low": best.get("speedup_low"), "speedup_high": best.get("speedup_high"),
            "digits_accuracy": best.get("digits_accuracy"), "within_noise_of": tied}


def format_contenders(rows: list) -> str:
    """The rows of :func:`compare_runtimes` as fixed-width text; skipped rows say why."""
    cells = []
    for r in rows:
        if r.get("skipped"):
            cells.append([r["runtime"], r["precision"], "skipped", "", "", "", "", "", ""])
            continue
        band = (f"{r['speedup_low']:.2f}-{r['speedup_high']:.2f}"
                if r.get("speedup_low") is not None else "n too small")
        setup = r.get("compile_ms", r.get("setup_ms"))
        accuracy = r.get("digits_accuracy")
        cells.append([r["runtime"], r["precision"], f"{r['median_ms']:.2f}", f"{r['iqr_ms']:.2f}",
                      r["n"], f"{r['speedup']:.2f}x" if r.get("speedup") else "-", band,
                      "-" if setup is None else f"{setup:.0f}",
                      "-" if accuracy is None else f"{100 * accuracy:.1f}%"])
    lines = format_table(["runtime", "precision", "median ms", "IQR ms", "n", "vs eager",
                          "95% CI", "setup ms", "digits"], cells, align="<<>>>>>>>",
                         widths=[19, 15, 9, 7, 4, 8, 11, 8, 7], rule="-")
    for r in rows:
        if r.get("skipped"):
            lines.append(f"  {r['runtime']} skipped: {r['skipped']}")
    return "\n".join(lines)
