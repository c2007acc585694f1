"""Fair latency measurements of PyTorch against ONNX Runtime, and ``python -m course_utils bench``.

Covers: the sweep over input sizes, batch sizes and ONNX Runtime's
graph-optimisation levels (with ``torch.compile`` as an optional contender),
in one process or one process per backend, and the ``bench`` subcommand (with
``--int8``: the quantisation recipes of ``quantization.py`` on the same model).
Does not cover: the timing primitives (``timing.py``), the matched session
settings and the device choice (``sessions.py``), the hardware record and the
nominal peak (``hardware.py``), the measured ceiling (``roofline.py``), counting
FLOPs and the GPU's GEMM rate (``profiling.py``),
the results' table, JSON and plots (``bench_results.py``), nor the recipes
themselves (``quantization.py``).

Fair by construction: both backends get the same intra-op thread count, ONNX
Runtime's idle threads do not spin (so they cannot steal a core from PyTorch),
every configuration is warmed up first, session creation and compilation are
recorded apart from the steady-state latency, and in one process the backends
take turns in short rounds (a few runs each) so that a change in machine load
hits all of them alike (``isolate=True`` instead gives each backend its own
process). The headline shape (batch 1, 224 px) gets at least 60 samples per
backend, and every speedup comes with a bootstrap interval of that run's noise
(another run can land outside it: see :func:`course_utils.timing.ratio_interval`).
Each GFLOP/s is set against the fp32 ceiling measured on this machine before and
after the sweep (``roofline.py``), with the nominal peak and its assumptions beside it.
"""
from __future__ import annotations

import argparse
import copy
import logging
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .bench_results import BenchmarkResult, add_derived_figures, plot_latency, plot_speedup
from .contenders import (CONTENDERS, compare_runtimes, compile_for_inference, fastest_row,
                         format_contenders)
from .errors import CourseError, InvalidArgumentError, MissingFileError
from .export import ExampleInputError, ExportError, export_model, load_model_spec
from .hardware import describe_hardware, theoretical_peak
from .onnx_files import load_onnx_file
from .options import add_number, path_arg
from .paths import PathPlan, write_atomic
from .profiling import count_flops, measure_gemm_rate
from .roofline import ceiling_summary, compare_with_nominal, measure_fp32_ceiling
from .quantization import (INT8_RECIPES, choose_recipe, compare_variants, format_variants,
                           make_calibration_reader, recipe_kwargs, representative_images,
                           summarize_int8)
from .sessions import (OPTIMIZATION_LEVELS, SPINNING_KEYS, default_threads, fair_session_options,
                       resolve_device)
from .timing import summarize_times, take_turns

__all__ = ["benchmark", "BenchmarkResult", "PRESETS", "BACKENDS", "plot_latency", "plot_speedup"]

log = logging.getLogger(__name__)

class BenchmarkError(CourseError, RuntimeError):
    """A backend that could not be measured in its own process (a crash, an error in it)."""


class IsolationError(CourseError, TypeError):
    """A model that cannot be sent to another process for ``isolate=True``."""


BACKENDS = ("torch-eager", "torch-compile") + tuple(f"ort-{level}" for level in OPTIMIZATION_LEVELS)


@dataclass(frozen=True)
class Preset:
    """What one ``bench --preset`` measures: (batch, size) shapes, backends, and repeats."""

    shapes: tuple
    backends: tuple
    warmup: int
    min_repeats: int
    max_repeats: int
    budget_s: float  # steady-state time spent on one configuration (sets the repeats)
    round_runs: int  # in one process, the backends take turns of this many runs
    headline_samples: int  # at least this many samples per backend at the headline shape
    isolate: bool  # one process per backend instead of turns


#: Steady-state seconds per variant in ``bench --int8``.
INT8_BUDGET_S = 0.5
#: The shape whose speedup is the headline.
HEADLINE_SHAPE = (1, 224)

PRESETS = {
    # What notebook 04 runs: well under a minute on two idle cores.
    "quick": Preset(shapes=((1, 224), (1, 448), (8, 224)),
                    backends=("torch-eager", "ort-disabled", "ort-all"), warmup=2,
                    min_repeats=6, max_repeats=60, budget_s=0.6, round_runs=5,
                    headline_samples=60, isolate=False),
    "full": Preset(shapes=((1, 224), (1, 448), (1, 896), (8, 224), (32, 224)),
                   backends=("torch-eager", "ort-disabled", "ort-basic", "ort-extended", "ort-all"),
                   warmup=5, min_repeats=20, max_repeats=500, budget_s=3.0, round_runs=5,
                   headline_samples=200, isolate=True),
}


# ---------------------------------------------------------------- one backend
def _make_call(backend, runner, x, device):
    """Return ``(fn, sync)`` running one backend (a model or a session) on the CPU batch ``x``."""
    import torch

    sync = torch.cuda.synchronize if device == "cuda" else None
    if backend.startswith("torch"):
        x_dev = x.to(device)
        return (lambda: runner(x_dev)), sync
    session = runner
    name = session.get_inputs()[0].name
    if device == "cpu":
        feed = {name: x.numpy()}
        return (lambda: session.run(None, feed)), None
    import onnxruntime as ort  # GPU: input and outputs stay on the device, like PyTorch's
    binding = session.io_binding()
    binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(x.numpy(), "cuda", 0))
    for out in session.get_outputs():
        binding.bind_output(out.name, "cuda")
    return (lambda: session.run_with_iobinding(binding)), sync


def _prepare_backend(backend, model, onnx_path, threads, device):
    """Return ``(model_or_session, setup_ms, settings)`` for one backend."""
    import torch

    if backend.startswith("torch"):
        if device != "cpu":
            model = copy.deepcopy(model).to(device)  # the caller's model stays where it was
        if backend == "torch-compile":
            model = compile_for_inference(model)  # lazily: the first call holds the cost
        return model, None, {"threads": torch.get_num_threads()}
    import onnxruntime as ort

    providers = (["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda"
                 else ["CPUExecutionProvider"])
    options = fair_session_options(threads, backend.removeprefix("ort-"))
    start = time.perf_counter()
    session = ort.InferenceSession(str(onnx_path), options, providers=providers)
    setup_ms = (time.perf_counter() - start) * 1e3  # loading + graph optimisation
    if session.get_providers()[0] != providers[0]:
        raise RuntimeError(f"the session runs on {session.get_providers()}, not {providers[0]}; "
                           "the comparison would not be on the device you asked for")
    used = session.get_session_options()
    return session, setup_ms, {"threads": used.intra_op_num_threads,
                               "inter_op_threads": used.inter_op_num_threads,
                               "spinning": used.get_session_config_entry(SPINNING_KEYS[0])}


def _onnx_for(onnx_path, size):
    """The ONNX file that serves ``size``: one file for all, or one per image size."""
    return onnx_path[size] if isinstance(onnx_path, dict) else onnx_path


def _measure(backends, model, onnx_path, shapes, cfg, report):
    """Measure every (shape, backend); calls ``report(record)`` as each one finishes."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(cfg["threads"])
    prepared = {}  # (backend, onnx file or None) -> (model or session, setup_ms, settings)

    def prepare(backend, size):
        key = (backend, None if backend.startswith("torch") else _onnx_for(onnx_path, size))
        if key not in prepared:
            prepared[key] = _prepare_backend(backend, model, key[1], cfg["threads"], cfg["device"])
        return prepared[key]

    try:
        for batch, size in shapes:
            generator = torch.Generator().manual_seed(0)
            x = torch.rand(batch, cfg["channels"], size, size, generator=generator)
            ready = {b: prepare(b, size) for b in backends}
            calls = {b: _make_call(b, ready[b][0], x, cfg["device"]) for b in backends}
            with torch.inference_mode():
                samples, first, wanted = take_turns(calls, cfg, (batch, size) == HEADLINE_SHAPE)
            for b in backends:
                _, setup_ms, settings = ready[b]
                if b == "torch-compile":
                    setup_ms = first[b]  # the first call compiles (again, for a new shape)
                report({"backend": b, "device": cfg["device"], "batch": batch, "size": size,
                        **summarize_times(samples[b]), "first_call_ms": first[b],
                        "setup_ms": setup_ms, "samples_ms": [round(v, 4) for v in samples[b]],
                        **settings})
    finally:
        torch.set_num_threads(previous)


def _worker(backend, model, onnx_path, shapes, cfg, queue):
    try:
        _measure([backend], model, onnx_path, shapes, cfg, queue.put)
        queue.put(("done", None))
    except Exception as error:  # sent to the parent, which raises it there
        queue.put(("error", f"{type(error).__name__}: {error}"))


def _measure_isolated(backends, model, onnx_path, shapes, cfg, report):
    """One fresh process per backend: nothing one backend leaves behind can slow another."""
    import multiprocessing
    import pickle
    import queue as queue_module

    context = multiprocessing.get_context("spawn")
    for backend in backends:
        queue = context.Queue()
        process = context.Process(target=_worker, daemon=True,
                                  args=(backend, model, onnx_path, shapes, cfg, queue))
        try:
            process.start()
        except (pickle.PicklingError, AttributeError, TypeError) as error:
            raise IsolationError(f"isolate=True sends the model to a new process, but it cannot "
                                 f"be pickled ({error}); define its class in an importable "
                                 "module, or use isolate=False (CLI: --no-isolate)") from None
        while True:
            try:
                item = queue.get(timeout=1.0)
            except queue_module.Empty:
                if not process.is_alive():
                    raise BenchmarkError(f"the {backend} process ended without its results "
                                         f"(exit code {process.exitcode}); a script that calls "
                                         "benchmark(isolate=True) needs an `if __name__ == "
                                         "'__main__':` guard; isolate=False (CLI: --no-isolate) "
                                         "shows other errors") from None
                continue
            if isinstance(item, dict):
                report(item)
            elif item[0] == "done":
                break
            else:
                raise BenchmarkError(f"{backend} failed in its own process: {item[1]}; "
                                     "isolate=False (CLI: --no-isolate) runs it here, with its "
                                     "traceback")
        process.join()


# ---------------------------------------------------------------- the sweep
def benchmark(model, onnx_path, *, preset="quick", shapes=None, backends=None, threads=None,
              device="cpu", channels=3, round_runs=None, headline_samples=None, isolate=None,
              warmup=None, min_repeats=None, max_repeats=None, budget_s=None, progress=True,
              name=None) -> "BenchmarkResult":
    """Compare a PyTorch model with its ONNX export, fairly, over shapes and backends.

    Args:
        model: the ``torch.nn.Module`` (eval mode) that ``onnx_path`` was exported from.
        onnx_path: its ONNX file, whose first input accepts every shape measured, or
            ``{image size: file}`` when each size has its own export.
        preset: ``"quick"`` or ``"full"`` (see ``PRESETS``); the other arguments override it.
        shapes: ``(batch, size)`` pairs; inputs are ``(batch, channels, size, size)``.
        backends: names from ``BACKENDS``: ``torch-eager``, ``torch-compile``,
            ``ort-disabled``, ``ort-basic``, ``ort-extended``, ``ort-all``.
        threads: intra-op threads for every backend (default: physical cores).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (see :func:`choose_device`).
        round_runs: in one process, the backends take turns of this many runs.
        headline_samples: samples per backend at least, at batch 1, 224 px.
        isolate: one process per backend instead (the model must be picklable).
        warmup, min_repeats, max_repeats, budget_s: see :func:`time_callable`.
        progress: show a progress bar on stderr.
        name: the model's name in the results (default: its class name).

    Returns:
        A :class:`BenchmarkResult` with one record per (backend, shape), the fp32
        ceiling measured on the CPU before and after the sweep (``ceiling``), the
        nominal peak with its assumptions (``peak``) and what the ceiling says of
        them (``nominal``), and each library's best GEMM among the ceiling's probes
        (``gemm``; on a GPU, ``torch.mm`` there and no ceiling).

    Example:
        >>> result = benchmark(model, "artifacts/resnet18.onnx", preset="quick")  # doctest: +SKIP
        >>> print(result.format_table())  # doctest: +SKIP
    """
    from tqdm import tqdm

    if preset not in PRESETS:
        raise InvalidArgumentError(f"unknown preset {preset!r}; use one of {list(PRESETS)}")
    chosen = PRESETS[preset]
    isolate = chosen.isolate if isolate is None else bool(isolate)
    shapes = [tuple(int(v) for v in s) for s in (shapes or chosen.shapes)]
    backends = list(backends or chosen.backends)
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise InvalidArgumentError(f"unknown backend(s) {unknown}; choose from {list(BACKENDS)}")
    onnx_path = ({int(k): str(v) for k, v in onnx_path.items()} if isinstance(onnx_path, dict)
                 else str(onnx_path))
    missing = sorted({size for _, size in shapes} - set(onnx_path)) \
        if isinstance(onnx_path, dict) else []
    if missing:
        raise KeyError(f"no ONNX file for image size(s) {missing}; onnx_path has "
                       f"{sorted(onnx_path)}: export one per size, or one with dynamic H and W")
    for size in {size for _, size in shapes}:
        if not Path(_onnx_for(onnx_path, size)).is_file():
            raise MissingFileError(f"no ONNX file at {_onnx_for(onnx_path, size)}; "
                                    "export the model first")
    _check_threads(threads)
    device = resolve_device(device)
    cfg = {"threads": int(threads or default_threads()), "device": device, "channels": channels,
           "round_runs": max(1, round_runs or chosen.round_runs),
           "headline_samples": (chosen.headline_samples if headline_samples is None
                                else int(headline_samples)),
           "warmup": chosen.warmup if warmup is None else warmup,
           "min_repeats": min_repeats or chosen.min_repeats,
           "max_repeats": max_repeats or chosen.max_repeats,
           "budget_s": budget_s or chosen.budget_s}
    before = _cpu_snapshot()  # busy neighbours skew timings: measure how busy they were

    def measure_ceiling():  # other load can only slow a probe: two measurements, every round kept
        if device != "cpu":
            return None
        return measure_fp32_ceiling(cfg["threads"])

    ceiling = measure_ceiling()
    records = []
    with tqdm(total=len(shapes) * len(backends), desc="benchmark", unit="config",
              disable=not progress, file=sys.stderr) as bar:
        def report(record):
            records.append(record)
            bar.set_postfix_str(f"{record['backend']} b{record['batch']} {record['size']}px")
            bar.update(1)

        run = _measure_isolated if isolate else _measure
        run(backends, model, onnx_path, shapes, cfg, report)
    if ceiling is not None:
        ceiling = ceiling.merge(measure_ceiling())
        gemm = ceiling.gemm_rates()
    else:  # the GPU: PyTorch's matrix product there, the best of two
        gemm = {"torch": max((measure_gemm_rate("torch", threads=cfg["threads"], device=device)
                              for _ in range(2)), key=lambda r: r["best_gflops"])}
    hardware = describe_hardware(device)
    peak = theoretical_peak(hardware, cfg["threads"]) if device == "cpu" else None
    flops = {}
    for batch, size in shapes:
        try:
            flops[batch, size] = count_flops(_onnx_for(onnx_path, size),
                                             (batch, channels, size, size))
        except ValueError as error:
            log.warning("no FLOP count (%s); GFLOP/s are left out", error)
            flops[batch, size] = None
    order = {b: i for i, b in enumerate(backends)}
    records.sort(key=lambda r: (shapes.index((r["batch"], r["size"])), order[r["backend"]]))
    ceiling = add_derived_figures(records, flops, peak and peak["gflops"], gemm, ceiling)
    return BenchmarkResult(model=name or type(model).__name__.lower(), device=device,
                           records=records, hardware=hardware, peak=peak, gemm=gemm,
                           ceiling=ceiling and ceiling.to_dict(),
                           nominal=compare_with_nominal(ceiling, peak) if ceiling and peak
                           else None,
                           settings={**cfg, "isolate": isolate, "preset": preset,
                                     "timer": "time.perf_counter", "statistic": "median",
                                     "others_cpu_share": _others_share(before, _cpu_snapshot())},
                           peak_gflops=peak and peak["gflops"])


#: The most intra-op threads a sweep may ask for: more only makes the threads wait for cores.
_MAX_THREADS = 4 * (os.cpu_count() or 1)


def _check_threads(threads) -> None:
    if threads is not None and int(threads) < 1:
        raise InvalidArgumentError(f"threads must be >= 1 (got {threads}); leave it out to use "
                                   f"every physical core ({default_threads()})")
    most = 4 * (os.cpu_count() or 1)
    if threads is not None and int(threads) > most:
        raise InvalidArgumentError(f"threads={threads} is more than 4 per logical CPU of this "
                                   f"machine ({os.cpu_count()}); leave it out to use every "
                                   f"physical core ({default_threads()})")


def _cpu_snapshot():
    """(wall clock, the machine's busy CPU seconds, this process's and its children's)."""
    try:
        import psutil
    except ImportError:
        return None
    machine, own = psutil.cpu_times(), psutil.Process().cpu_times()
    # guest time is already part of user time; steal is another VM's: busy for us too
    busy = (sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
            - getattr(machine, "guest", 0.0) - getattr(machine, "guest_nice", 0.0))
    mine = own.user + own.system + own.children_user + own.children_system
    return time.monotonic(), busy, mine


def _others_share(before, after, cpus=None):
    """Share of the machine's CPU time that other programs used between two snapshots."""
    if not before or not after or after[0] <= before[0]:
        return None
    others = (after[1] - before[1]) - (after[2] - before[2])
    return round(max(0.0, others / ((after[0] - before[0]) * (cpus or os.cpu_count() or 1))), 3)


def _prepare_model(name: str, folder: Path, sizes):
    """A seeded torchvision model (random weights, nothing downloads), exported once per size."""
    # A torchvision name has neither ':' nor '.' nor '/': anything else is a spec (or a file
    # path, which load_model_spec names as such).
    spec = name if any(c in name for c in ":./\\") else f"torchvision:{name}"
    model = load_model_spec(spec)
    paths = {}
    for size in sorted(set(sizes)):
        log.info("exporting %s at %d px ...", name, size)
        try:
            paths[size] = export_model(model, folder / f"{name.split(':')[-1]}-{size}.onnx",
                                       input_shape=(3, size, size))
        except ExampleInputError as error:
            raise InvalidArgumentError(
                f"bench --model {name}: {error.cause}; bench times image models that take one "
                f"(batch, 3, H, W) tensor, at {', '.join(map(str, sorted(set(sizes))))} px in "
                "this preset (a torchvision classifier such as resnet18, or a factory of such a "
                "model); time other models with `export` and a timer of your own "
                "(notebook 04)") from None
        except ExportError as error:
            # The export's own options (--torchscript, --static-batch...) are not bench's: say
            # what failed, and let `export` offer them.
            text = re.sub(r"\s*\((?:CLI|opset=)[^)]*\)", "", str(error).split("\n  options:")[0])
            raise ExportError(f"bench --model {name} cannot be timed: {' '.join(text.split())}; "
                              f"`python -m course_utils export {spec} model.onnx` shows the "
                              "export's options") from None
    return model, paths


def _int8_sweep(onnx_path, size: int, folder: Path, threads: int, hardware: dict) -> dict:
    """Quantise one model with every recipe, time them against fp32, choose the winner."""
    from onnxruntime.quantization import quant_pre_process, quantize_dynamic, quantize_static

    prepared = folder / "int8-prep.onnx"
    quant_pre_process(str(onnx_path), str(prepared))
    input_name = load_onnx_file(prepared, load_weights=False).graph.input[0].name
    calibration = representative_images(8, size, seed=1)
    paths = {"fp32": prepared}
    for name, recipe in INT8_RECIPES.items():
        out = folder / f"int8-{len(paths)}.onnx"
        if recipe["format"] == "dynamic":
            quantize_dynamic(prepared, out, **recipe_kwargs(name))
        else:
            quantize_static(prepared, out, make_calibration_reader(calibration, input_name, 4),
                            **recipe_kwargs(name))
        paths[name] = out
    rows = compare_variants(paths, representative_images(1, size, seed=2), threads=threads,
                            min_repeats=6, max_repeats=60, budget_s=INT8_BUDGET_S)
    choice = choose_recipe(rows, dot_product_int8=hardware.get("int8_dot_product"))
    return {"model_input": f"batch 1, {size} px", "calibration": "8 representative images",
            "rows": rows, "choice": choice, "winner": choice["winner"],
            "sentences": summarize_int8(rows, choice)}


def _quantise_u8s8(prepared_from, out, calibration, input_name, batch_size):
    """Static QDQ U8S8 per-channel int8 (exercise 04.5's recipe) for ``bench --runtimes``:
    a CPU recipe (uint8 activations; GPUs and TensorRT take S8S8 only), what the int8
    rows of ONNX Runtime and OpenVINO on x86 are timed with."""
    from onnxruntime.quantization import quant_pre_process, quantize_static

    prepared = out.with_name(out.stem + "-prep.onnx")
    quant_pre_process(str(prepared_from), str(prepared))
    quantize_static(prepared, out, make_calibration_reader(calibration, input_name, batch_size),
                    **recipe_kwargs("QDQ U8S8"))
    return out


def _contenders(model, onnx_path, size, folder: Path, result, runtimes) -> None:
    """Every runtime of ``runtimes`` at batch 1, ``size`` px, with digits accuracy for the
    rows that are not fp32; stored on ``result``."""
    import logging as _logging

    import torch

    from .digits import load_digits_split, train_digits_cnn

    root = _logging.getLogger()
    level = root.level
    root.setLevel(_logging.ERROR)  # the quantiser's progress lines
    try:
        int8_path = None
        if any(r.endswith("int8") for r in runtimes):
            name = load_onnx_file(onnx_path, load_weights=False).graph.input[0].name
            int8_path = _quantise_u8s8(onnx_path, folder / f"contender-{size}-int8.onnx",
                                       representative_images(8, size, seed=1), name, 4)
        digits = None
        if any(CONTENDERS[r][1] != "fp32" for r in runtimes):
            x_train, x_test, _, y_test = load_digits_split()
            digits_model = train_digits_cnn()
            fp32 = export_model(digits_model, folder / "digits.onnx", input_shape=(1, 8, 8))
            int8 = _quantise_u8s8(fp32, folder / "digits-int8.onnx", x_train[:512].numpy(),
                                  "x", 32)
            digits = {"model": digits_model, "fp32": fp32, "int8": int8,
                      "x": x_test.numpy(), "y": y_test.numpy()}
    finally:
        root.setLevel(level)
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    cfg = {k: result.settings[k] for k in ("warmup", "budget_s", "min_repeats", "max_repeats",
                                           "round_runs", "headline_samples")}
    result.contenders = compare_runtimes(model, onnx_path, x, runtimes=runtimes,
                                         int8_path=int8_path, threads=result.settings["threads"],
                                         hardware=result.hardware, cfg=cfg, digits=digits)
    result.fastest = fastest_row(result.contenders)


def _parse_runtimes(text):
    if not text:
        return []
    names = list(CONTENDERS) if text == "all" else [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONTENDERS]
    if unknown:
        raise InvalidArgumentError(f"unknown runtime(s) {unknown}; choose from "
                                   f"{list(CONTENDERS)}, or 'all'")
    return names


def _run_cli(args) -> int:
    import tempfile

    # Every output is checked before minutes of exporting and timing.
    plan = PathPlan()
    if args.json:
        plan.output_file(args.json, "--json")
    if args.plots:
        plan.output_folder(args.plots, "--plots folder",
                           files=["bench-latency.png", "bench-speedup.png"])
    device = resolve_device(args.device)
    if args.int8 and device != "cpu":
        raise InvalidArgumentError("--int8 measures ONNX Runtime's CPU int8 kernels; use --device cpu")
    runtimes = _parse_runtimes(args.runtimes)
    if runtimes and device != "cpu":
        raise InvalidArgumentError("--runtimes compares CPU runtimes; use --device cpu")
    backends = list(PRESETS[args.preset].backends) + (["torch-compile"] if args.compile else [])
    sizes = [size for _, size in PRESETS[args.preset].shapes]
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        model, onnx_path = _prepare_model(args.model, Path(folder), sizes)
        result = benchmark(model, onnx_path, preset=args.preset, backends=backends,
                           threads=args.threads, device=device, isolate=args.isolate,
                           name=args.model.split(":")[-1])
        if args.int8:
            log.info("quantising with every recipe ...")
            size = result.headline["size"]
            result.int8 = _int8_sweep(onnx_path[size], size, Path(folder),
                                      result.settings["threads"], result.hardware)
        if runtimes:
            log.info("timing the other runtimes at batch 1, %d px ...", result.headline["size"])
            size = result.headline["size"]
            _contenders(model, onnx_path[size], size, Path(folder), result, runtimes)
    hw, head = result.hardware, result.headline
    print(f"{hw.get('gpu') or hw['cpu']} | {result.settings['threads']} threads | "
          f"torch {hw['torch']} | onnxruntime {hw['onnxruntime']}")
    if result.ceiling:
        print(ceiling_summary(result.ceiling))
    if result.nominal:
        print("\n".join(result.nominal["sentences"]))
    print("best GEMM measured: " + ", ".join(
        f"{lib} {rate['best_gflops']:.0f} GFLOP/s at {rate['size']}^3"
        for lib, rate in (result.gemm or {}).items()))
    print(result.format_table())
    verdict = "faster" if head["speedup"] > 1 else "slower"
    interval = (f"95% interval {head['speedup_low']:.2f}-{head['speedup_high']:.2f}"
                if head["speedup_low"] is not None else "too few samples for an interval")
    print(f"headline: {head['model']} batch {head['batch']} at {head['size']} px on {device}: "
          f"eager PyTorch {head['torch_ms']:.2f} ms, ONNX Runtime ({head['ort_backend']}) "
          f"{head['ort_ms']:.2f} ms -> ONNX Runtime is {head['speedup']:.2f}x ({verdict} than "
          f"eager PyTorch; {interval}, n={head['n']['torch']}/{head['n']['ort']})")
    if result.contenders:
        print(format_contenders(result.contenders))
        best = result.fastest
        if best:
            print(f"fastest here: {best['runtime']} ({best['label']}, {best['precision']}) "
                  f"{best['median_ms']:.2f} ms, {best['speedup']:.2f}x eager PyTorch (NCHW fp32)"
                  + (f"; within the noise of {', '.join(best['within_noise_of'])}"
                     if best["within_noise_of"] else ""))
    if result.int8:
        print(format_variants(result.int8["rows"]))
        print("\n".join(result.int8["sentences"]))
    others = result.settings["others_cpu_share"]
    if others is not None and others > 0.1:
        print(f"note: other programs used {100 * others:.0f}% of this machine's CPU time while "
              "it measured; rerun on an idle machine before trusting these numbers")
    if args.json:
        print(f"wrote {result.save_json(args.json)}")
    if args.plots:
        import io

        import matplotlib

        matplotlib.use("Agg")
        folder = Path(args.plots)
        for stem, plot in (("latency", plot_latency), ("speedup", plot_speedup)):
            image = io.BytesIO()
            plot(result).savefig(image, format="png", dpi=120)
            write_atomic(folder / f"bench-{stem}.png", image.getvalue())
        print(f"wrote {folder}/bench-latency.png and bench-speedup.png")
    return 0


def add_cli(subparsers) -> None:
    """Register ``bench``."""
    parser = subparsers.add_parser(
        "bench", help="fair PyTorch vs ONNX Runtime latency sweep",
        description="Export a torchvision model (random weights) once per image size and "
                    "compare eager PyTorch with ONNX Runtime at several graph-optimisation "
                    "levels, with matched threads.")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="quick",
                        help="quick: what notebook 04 runs (< 1 min); full: the whole sweep")
    parser.add_argument("--json", type=path_arg("--json"),
                        metavar="PATH", help="also write every result as JSON")
    parser.add_argument("--plots", type=path_arg("--plots"),
                        metavar="DIR", help="also write latency and speedup plots")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu",
                        help="cuda needs torch with CUDA and onnxruntime-gpu (default: cpu)")
    add_number(parser, "--threads", low=1, high=_MAX_THREADS,
               note="4 per logical CPU of this machine",
               help="intra-op threads (default: physical cores)")
    parser.add_argument("--model", default="resnet18",
                        help="a torchvision model name or a spec such as package.module:factory")
    parser.add_argument("--compile", action="store_true",
                        help="add torch.compile as a contender (compile time reported as setup)")
    parser.add_argument("--runtimes", metavar="NAMES",
                        help="also time these runtimes at batch 1, 224 px, each precision "
                             f"named: 'all' or a comma list of {', '.join(CONTENDERS)} "
                             "(one not installed or not supported here is a skipped row)")
    parser.add_argument("--int8", action="store_true",
                        help="also quantise the model with every int8 recipe (static QDQ and "
                             "QOperator, uint8 and int8 activations, reduce_range, dynamic), "
                             "time them against fp32 and say which one wins")
    parser.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=None,
                        help="one process per backend (default: only for --preset full)")
    parser.set_defaults(func=_run_cli)
