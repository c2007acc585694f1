"""Session settings that make ONNX Runtime and PyTorch comparable, and the device choice.

Covers: the thread count (:func:`default_threads`), ONNX Runtime session
options matched to a PyTorch run (:func:`fair_session_options`), the names of
the graph-optimisation levels (``OPTIMIZATION_LEVELS``), the session config
keys that turn off spinning (``SPINNING_KEYS``), and the choice between CPU and
GPU (:func:`choose_device`, :func:`resolve_device`). Does not cover: timing
(``timing.py``), the sweep (``benchmark.py``), nor choosing execution providers
for one session (``providers.py``).
"""
from __future__ import annotations

import os

from .errors import CourseError, InvalidArgumentError

__all__ = ["default_threads", "fair_session_options", "choose_device", "resolve_device",
           "OPTIMIZATION_LEVELS", "INTRA_OP_SPINNING", "SPINNING_KEYS", "DeviceError"]

#: Level name used in the course -> the ``onnxruntime.GraphOptimizationLevel`` member.
OPTIMIZATION_LEVELS = {
    "disabled": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}

#: The session config entries that let idle intra-op / inter-op workers busy-wait
#: after a run ("1", ONNX Runtime's default) or not ("0").
SPINNING_KEYS = ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning")
#: The intra-op entry alone: the one that matters in sequential execution.
INTRA_OP_SPINNING = SPINNING_KEYS[0]


class DeviceError(CourseError, RuntimeError):
    """The device asked for is not usable with the installed PyTorch and ONNX Runtime."""


def default_threads() -> int:
    """Physical cores of this machine (hyper-threads rarely help dense maths)."""
    try:
        import psutil
        cores = psutil.cpu_count(logical=False)
    except ImportError:
        cores = None
    return int(cores or os.cpu_count() or 1)


def fair_session_options(threads: int, level: str = "all"):
    """``onnxruntime.SessionOptions`` matched to a PyTorch run with ``threads`` threads.

    ``threads`` intra-op threads (PyTorch: ``torch.set_num_threads``),
    sequential execution, and no spinning: by default ONNX Runtime's idle
    workers busy-wait after each run and steal the cores PyTorch needs next.
    ``inter_op_num_threads`` is set to 1 for the record only: ONNX Runtime
    creates no inter-op pool in sequential mode, so it changes nothing there.

    Args:
        threads: intra-op thread count, >= 1.
        level: graph optimisation, one of ``disabled``, ``basic``, ``extended``, ``all``.
    """
    import onnxruntime as ort

    if level not in OPTIMIZATION_LEVELS:
        raise InvalidArgumentError(f"unknown optimisation level {level!r}; "
                         f"use one of {list(OPTIMIZATION_LEVELS)}")
    if int(threads) < 1:
        raise InvalidArgumentError(f"threads must be >= 1 (got {threads}); "
                                   "0 would let ONNX Runtime pick")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel,
                                               OPTIMIZATION_LEVELS[level])
    for key in SPINNING_KEYS:
        options.add_session_config_entry(key, "0")
    return options


def choose_device(requested: str, *, torch_cuda: bool, ort_providers) -> str:
    """Decide ``"cpu"`` or ``"cuda"`` from what is requested and what is installed.

    ``auto`` picks the GPU only when both PyTorch sees CUDA and ONNX Runtime has
    the CUDA provider: comparing a GPU PyTorch with a CPU ONNX Runtime is not a
    runtime comparison.
    """
    cuda_ok = torch_cuda and "CUDAExecutionProvider" in list(ort_providers)
    if requested == "cpu" or (requested == "auto" and not cuda_ok):
        return "cpu"
    if requested not in ("auto", "cuda"):
        raise InvalidArgumentError(f"unknown device {requested!r}; use 'cpu', 'cuda' or 'auto'")
    if not torch_cuda:
        raise DeviceError("device 'cuda' asked for, but torch.cuda.is_available() is False; "
                           "install a CUDA build of PyTorch on a machine with an NVIDIA GPU, "
                           "or ask for device 'cpu' (bench: --device cpu)")
    if not cuda_ok:
        raise DeviceError("device 'cuda' asked for, but this onnxruntime has no "
                           f"CUDAExecutionProvider (available: {list(ort_providers)}); "
                           "pip install onnxruntime-gpu (same version) instead of onnxruntime")
    return "cuda"


def resolve_device(requested: str = "auto") -> str:
    """:func:`choose_device` for this machine."""
    import onnxruntime as ort
    import torch

    return choose_device(requested, torch_cuda=torch.cuda.is_available(),
                         ort_providers=ort.get_available_providers())
