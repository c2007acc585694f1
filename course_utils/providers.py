"""Execution providers: which ones exist, which this machine has, and sessions that say so.

Covers: a table of every provider ONNX Runtime knows with the hardware it
targets, and :func:`make_session`, which creates an ``InferenceSession`` from an
explicit priority list, warns visibly when a requested provider is absent and
falls back to CPU, and refuses misspelt names with the valid ones listed.
Does not cover: choosing between providers by speed (see ``benchmark.py``).
"""
from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidArgumentError, MissingFileError
from .formatting import format_table

__all__ = ["list_providers", "make_session", "ProviderInfo", "PROVIDER_TARGETS"]

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
    """Every provider this ONNX Runtime build knows, with its target and availability.

    Example:
        >>> rows = list_providers()
        >>> any(r.name == "CPUExecutionProvider" and r.available for r in rows)
        True
    """
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    return [ProviderInfo(name, PROVIDER_TARGETS.get(name, "see the ONNX Runtime docs"),
                         name in available)
            for name in ort.get_all_providers()]


def format_providers(rows: list[ProviderInfo]) -> str:
    """Render the providers table as fixed-width text."""
    width = max(len(r.name) for r in rows)
    lines = format_table(["provider", "here?", "targets"],
                         [[r.name, "yes" if r.available else "no", r.target] for r in rows],
                         align="<<<", widths=[width, 5, 0], gap="  ")
    lines.insert(1, "-" * (width + 60))  # as wide as the longest description
    return "\n".join(lines)


def make_session(path, prefer: list[str] | None = None, options=None):
    """Create an ``onnxruntime.InferenceSession`` with an explicit provider priority list.

    Args:
        path: the ``.onnx`` file (str or Path) or its bytes.
        prefer: provider names, most preferred first (default: CPU only).
            ``CPUExecutionProvider`` is appended when absent, so work that a
            preferred provider cannot run still has somewhere to go.
        options: an optional ``onnxruntime.SessionOptions``.

    Returns:
        The session. ``session.get_providers()`` tells which providers it really uses.

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
    known, available = ort.get_all_providers(), ort.get_available_providers()
    for name in prefer:
        if name not in known:
            by_lower = {k.lower(): k for k in known}  # "CudaExecutionProvider" -> CUDA's
            close = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
            hint = f"did you mean {by_lower[close[0]]!r}? " if close else ""
            raise InvalidArgumentError(f"{name!r} is not an ONNX Runtime execution provider; {hint}"
                             f"valid names: {', '.join(known)}")
    chosen = [name for name in prefer if name in available]
    missing = [name for name in prefer if name not in available]
    if missing:
        warnings.warn(
            f"{', '.join(missing)} not available in this onnxruntime build "
            f"(available: {available}); falling back to {chosen or ['CPUExecutionProvider']}. "
            "For NVIDIA GPUs install onnxruntime-gpu instead of onnxruntime.",
            UserWarning, stacklevel=2)
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    if isinstance(path, (str, Path)):
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"no ONNX model at {path}; export one first "
                                    "(python -m course_utils export torchvision:resnet18 model.onnx)")
        path = str(path)
    return ort.InferenceSession(path, sess_options=options, providers=chosen)


def _run_cli(args) -> int:
    print(format_providers(list_providers()))
    return 0


def add_cli(subparsers) -> None:
    """Register ``providers``."""
    parser = subparsers.add_parser("providers", help="all execution providers and which this machine has")
    parser.set_defaults(func=_run_cli)
