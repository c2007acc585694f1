"""Execution providers: which ones exist, which this machine has, and sessions that say so.

Covers: a table of every provider ONNX Runtime knows with the hardware it
targets, and :func:`make_session`, which creates an ``InferenceSession`` from an
explicit priority list, warns visibly when a requested provider is absent and
falls back to CPU, and refuses misspelt names with the valid ones listed. A
plugin provider (OpenVINO, registered by ``devices.py``) goes into the session
through the device API, with its precision pinned. ``providers`` prints the table
and whether this machine has a second provider; ``providers --placement MODEL``
prints where each node runs (``placement.py``).
Does not cover: choosing between providers by speed (see ``benchmark.py``).
"""
from __future__ import annotations

import difflib
import json
import math
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from .devices import OPENVINO, describe_second_provider, openvino_options, register_openvino
from .errors import InvalidArgumentError, MissingFileError
from .formatting import format_table
from .options import add_number, path_arg
from .placement import (RECORD_ASSIGNMENT, assigned_nodes, format_placement,
                        placement_from_profile, placement_table)

__all__ = ["list_providers", "make_session", "known_providers", "measure_placement", "ProviderInfo",
           "PROVIDER_TARGETS"]

#: What each provider targets (hardware / vendor). Providers unknown to this table
#: (newer ONNX Runtime releases add some) are listed as "see the ONNX Runtime docs".
PROVIDER_TARGETS = {
    "CPUExecutionProvider": "any CPU (always built in; ONNX Runtime appends it to a session's "
                            "list when missing)",
    "CUDAExecutionProvider": "NVIDIA GPUs only, via CUDA and cuDNN (package onnxruntime-gpu)",
    "TensorrtExecutionProvider": "NVIDIA GPUs only, via TensorRT (onnxruntime-gpu, with CUDA, "
                                 "cuDNN and TensorRT)",
    "NvTensorRTRTXExecutionProvider": "NVIDIA GPUs only (RTX), via TensorRT for RTX",
    "MIGraphXExecutionProvider": "AMD GPU via MIGraphX (ROCm)",
    "ROCMExecutionProvider": "AMD GPU via ROCm",
    "OpenVINOExecutionProvider": "Intel CPU, GPU and NPU via OpenVINO",
    "DnnlExecutionProvider": "x86-64 CPUs (tuned for Intel's) and Arm64 CPUs via oneDNN; "
                             "Intel GPUs in builds with its GPU runtime",
    "VitisAIExecutionProvider": "AMD/Xilinx FPGA and Ryzen AI NPU via Vitis AI",
    "QNNExecutionProvider": "Qualcomm Snapdragon CPU/GPU/NPU via QNN",
    "NnapiExecutionProvider": "Android phones via NNAPI",
    "VSINPUExecutionProvider": "VeriSilicon NPUs",
    "JsExecutionProvider": "GPUs in web browsers via WebGPU, kernels in JavaScript "
                           "(onnxruntime-web's JSEP)",
    "CoreMLExecutionProvider": "Apple CPU/GPU/Neural Engine via Core ML",
    "ACLExecutionProvider": "Arm CPUs via the Arm Compute Library",
    "ArmNNExecutionProvider": "Arm CPUs and GPUs via Arm NN",
    "DmlExecutionProvider": "any DirectX 12 GPU on Windows, of any vendor, via DirectML",
    "RknpuExecutionProvider": "Rockchip NPUs",
    "WebNNExecutionProvider": "browser WebNN API",
    "WebGpuExecutionProvider": "GPUs of any vendor through WebGPU (browsers and native)",
    "XnnpackExecutionProvider": "Arm/x86 CPUs on mobile and web via XNNPACK",
    "CANNExecutionProvider": "Huawei Ascend NPUs via CANN",
    "AzureExecutionProvider": "remote inference on Azure endpoints (no local hardware)",
    "TvmExecutionProvider": "many targets compiled by Apache TVM",
}


@dataclass(frozen=True)
class ProviderInfo:
    """One row of the providers table."""

    name: str
    target: str
    available: bool


def list_providers() -> list[ProviderInfo]:
    """Every provider this ONNX Runtime build knows (and registered plugins), with its target
    and availability.

    Example:
        >>> rows = list_providers()
        >>> any(r.name == "CPUExecutionProvider" and r.available for r in rows)
        True
    """
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    return [ProviderInfo(name, _target(name), name in available) for name in known_providers()]


def _target(name: str) -> str:
    base, _, device = name.partition(".")  # a plugin's extra factory, e.g. OpenVINO's AUTO
    target = PROVIDER_TARGETS.get(base, "see the ONNX Runtime docs")
    return f"{target}, {device} device selection" if device else target


def format_providers(rows: list[ProviderInfo]) -> str:
    """Render the providers table as fixed-width text."""
    width = max(len(r.name) for r in rows)
    lines = format_table(["provider", "here?", "targets"],
                         [[r.name, "yes" if r.available else "no", r.target] for r in rows],
                         align="<<<", widths=[width, 5, 0], gap="  ")
    lines.insert(1, "-" * (width + 60))  # as wide as the longest description
    return "\n".join(lines)


def known_providers() -> list[str]:
    """Every provider name ONNX Runtime knows, and those of registered plugin providers."""
    import onnxruntime as ort

    known = list(ort.get_all_providers())
    return known + sorted({d.ep_name for d in ort.get_ep_devices()} - set(known))


def _names_to_accept(prefer: list[str]) -> list[str]:
    """The known names, and OpenVINO's AUTO when asked for where the plugin offers no device
    (a missing provider then, not a misspelt one)."""
    known = known_providers()
    auto = f"{OPENVINO}.AUTO"
    return known + [auto] * (auto in prefer and auto not in known)


def make_session(path, prefer: list[str] | None = None, options=None, *,
                 provider_options: dict | None = None):
    """Create an ``onnxruntime.InferenceSession`` with an explicit provider priority list.

    Args:
        path: the ``.onnx`` file (str or Path) or its bytes.
        prefer: provider names, most preferred first (default: CPU only).
            ``CPUExecutionProvider`` is appended when absent, so work that a
            preferred provider cannot run still has somewhere to go.
        options: an optional ``onnxruntime.SessionOptions`` (a plugin provider is
            added to it).
        provider_options: ``{provider: {option: value}}``. OpenVINO's default pins
            its precision to f32 and its threads to ``options.intra_op_num_threads``
            (or the physical cores): :func:`course_utils.devices.openvino_options`.

    Returns:
        The session. ``session.get_providers()`` lists the providers it registered;
        which nodes each one runs is in the profile (``placement.py``).

    Raises:
        ValueError: a name that is no provider at all (the valid names are listed).
        FileNotFoundError: ``path`` does not exist.

    Example:
        >>> sess = make_session("artifacts/digits.onnx", prefer=["CUDAExecutionProvider"])  # doctest: +SKIP
        UserWarning: CUDAExecutionProvider is not available in this onnxruntime build ...
        >>> sess.get_providers()  # doctest: +SKIP
        ['CPUExecutionProvider']
    """
    import onnxruntime as ort

    prefer = list(prefer or ["CPUExecutionProvider"])
    plugin = register_openvino() if any(n.startswith(OPENVINO) for n in prefer) else None
    known, available = _names_to_accept(prefer), ort.get_available_providers()
    for name in prefer:
        if name not in known:
            by_lower = {k.lower(): k for k in known}  # "CudaExecutionProvider" -> CUDA's
            close = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
            hint = f"did you mean {by_lower[close[0]]!r}? " if close else ""
            raise InvalidArgumentError(f"{name!r} is not an ONNX Runtime execution provider; {hint}"
                             f"valid names: {', '.join(known)}")
    chosen = list(dict.fromkeys(name for name in prefer if name in available))
    missing = [name for name in prefer if name not in available]
    if missing:
        hints = []
        if any("TensorRT" in n or n.startswith("CUDA") for n in missing):
            hints.append("For NVIDIA GPUs install onnxruntime-gpu instead of onnxruntime.")
        if plugin and not plugin.usable and any(n.startswith(OPENVINO) for n in missing):
            hints.append(f"{OPENVINO}: {plugin.reason}.")
        warnings.warn(
            f"{', '.join(missing)} not available in this onnxruntime build "
            f"(available: {available}); falling back to {chosen or ['CPUExecutionProvider']}."
            + "".join(f" {hint}" for hint in hints), UserWarning, stacklevel=2)
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    if isinstance(path, (str, Path)):
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"no ONNX model at {path}; export one first "
                                    "(python -m course_utils export torchvision:resnet18 model.onnx)")
        path = str(path)
    if any(name.startswith(OPENVINO) for name in chosen):
        # The name list does not reach a plugin provider: the device API does.
        options = options if options is not None else ort.SessionOptions()
        _add_by_device(options, chosen, dict(provider_options or {}))
        return ort.InferenceSession(path, sess_options=options)
    if provider_options:
        chosen = [(name, provider_options.get(name, {})) for name in chosen]
    return ort.InferenceSession(path, sess_options=options, providers=chosen)


def _add_by_device(options, chosen: list[str], provider_options: dict) -> None:
    """Add each provider of ``chosen``, in order, through its devices: its CPU device where it
    has one (OpenVINO's precision is pinned there), else its first."""
    import onnxruntime as ort

    from .sessions import default_threads

    threads = options.intra_op_num_threads or default_threads()
    if OPENVINO in chosen and OPENVINO not in provider_options:
        provider_options[OPENVINO] = openvino_options(threads)
    for name in chosen:
        devices = [d for d in ort.get_ep_devices() if d.ep_name == name]
        on_cpu = [d for d in devices if d.device.type.name == "CPU"]
        if not devices:
            raise InvalidArgumentError(
                f"{name} offers no device to ONNX Runtime's device API here, so it cannot share "
                f"a session with {', '.join(n for n in chosen if n.startswith(OPENVINO))}; "
                "make one session per provider")
        options.add_provider_for_devices(on_cpu or devices[:1], provider_options.get(name, {}))


_NUMPY_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16",
                "tensor(double)": "float64", "tensor(int64)": "int64", "tensor(int32)": "int32",
                "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(bool)": "bool"}


#: The most values a random input of --placement holds (1 GiB of float32).
_MAX_RANDOM_ELEMENTS = 2**28


def _feed(session, seed: int = 0) -> dict:
    """Random inputs of batch 1 for every input of the session."""
    import numpy as np

    rng = np.random.default_rng(seed)
    feed = {}
    for arg in session.get_inputs():
        dtype = _NUMPY_TYPES.get(arg.type)
        shape = list(arg.shape)
        if dtype is None or any(not isinstance(d, int) for d in shape[1:]):
            raise InvalidArgumentError(
                f"input {arg.name!r} ({arg.type}, shape {shape}) cannot be made up: --placement "
                "fills tensors of numbers with random values of batch 1, every other size fixed")
        shape = [1 if not isinstance(d, int) else d for d in shape]
        if any(d < 0 for d in shape) or math.prod(shape) > _MAX_RANDOM_ELEMENTS:
            raise InvalidArgumentError(
                f"input {arg.name!r} has the shape {shape} in the file, which no random input of "
                f"batch 1 can fill (a negative size, or more than {_MAX_RANDOM_ELEMENTS:,} "
                "values: a damaged file, or a size exported by mistake?); check it with "
                "`python -m course_utils inspect`")
        feed[arg.name] = (rng.standard_normal(shape) if dtype.startswith("float")
                          else np.zeros(shape)).astype(dtype)
    return feed


def measure_placement(path, prefer: list[str] | None = None, threads: int | None = None) -> dict:
    """Where each node of a model runs in one profiled run, with random inputs of batch 1.

    The session comes from :func:`make_session` (OpenVINO with its precision pinned to
    f32); one run first, then the profiled one.

    Returns:
        ``{"rows": placement_table(...), "providers": session.get_providers(),
        "notes": [warnings the session gave, one line each]}``.
    """
    import onnxruntime as ort

    from .onnx_files import load_onnx_file
    from .sessions import default_threads, fair_session_options

    # One clear error for a missing or broken file, or weights named outside its folder (ONNX
    # Runtime would read them).
    load_onnx_file(path, load_weights=False, refuse_escaping=True)
    if any(name.startswith(OPENVINO) for name in prefer or []):
        register_openvino()  # its names are known once it is registered
    unknown = [name for name in prefer or [] if name not in _names_to_accept(prefer or [])]
    if unknown:
        available = sorted({*ort.get_available_providers(),
                            *(d.ep_name for d in ort.get_ep_devices())})
        raise InvalidArgumentError(f"{', '.join(map(repr, unknown))} is no execution provider; "
                                   f"available here: {', '.join(available)} (every name: "
                                   "python -m course_utils providers)")
    options = fair_session_options(default_threads() if threads is None else threads, "all")
    options.add_session_config_entry(RECORD_ASSIGNMENT, "1")
    options.enable_profiling = True
    with tempfile.TemporaryDirectory(prefix="placement-") as folder:
        options.profile_file_prefix = str(Path(folder) / "profile")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                session = make_session(path, prefer=prefer, options=options)
            feed = {name: ort.OrtValue.ortvalue_from_numpy(value)
                    for name, value in _feed(session).items()}
            for _ in range(2):  # the first run includes a compiling provider's compilation
                # OrtValues both ways: an output numpy has no type for (bfloat16) still runs.
                session.run_with_ort_values([o.name for o in session.get_outputs()], feed)
        except Exception as error:  # onnxruntime's own types (InvalidGraph, Fail, ...)
            if not type(error).__module__.startswith("onnxruntime"):
                raise
            first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
            raise InvalidArgumentError(f"ONNX Runtime cannot run {path}: {first}; check the file "
                                       "with `python -m course_utils inspect`") from None
        events = json.loads(Path(session.end_profiling()).read_text())
    rows = placement_table(assigned_nodes(session), placement_from_profile(events))
    return {"rows": rows, "providers": list(session.get_providers()),
            "notes": [str(w.message).splitlines()[0] for w in caught]}


def _run_cli(args) -> int:
    if args.placement:
        result = measure_placement(args.placement, args.prefer, args.threads)
        print(f"{Path(args.placement).name}: random inputs of batch 1, the second of two runs; "
              f"the session registered {result['providers']}")
        for note in result["notes"]:
            print(f"note: {note}")
        print(format_placement(result["rows"]))
        return 0
    if args.prefer or args.threads is not None:
        raise InvalidArgumentError("--prefer and --threads go with --placement MODEL.onnx")
    second = describe_second_provider()  # registers the OpenVINO plugin where it is installed
    print(format_providers(list_providers()))
    print(f"\nsecond provider here: {second}")
    return 0


def add_cli(subparsers) -> None:
    """Register ``providers``."""
    parser = subparsers.add_parser(
        "providers", help="all execution providers and which this machine has; "
                          "--placement MODEL: where each node runs")
    parser.add_argument("--placement", type=path_arg("--placement"), metavar="MODEL.onnx",
                        help="run the model once (random inputs, batch 1) under the profiler and "
                             "print the nodes, op types and time of each provider")
    parser.add_argument("--prefer", nargs="+", metavar="NAME",
                        help="with --placement: providers, most preferred first (default: CPU "
                             "only; the CPU provider is always added last)")
    add_number(parser, "--threads", low=1, high=4 * (os.cpu_count() or 1),
               note="4 per logical CPU of this machine",
               help="with --placement: intra-op threads (default: physical cores)")
    parser.set_defaults(func=_run_cli)
