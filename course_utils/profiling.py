"""Where the milliseconds and the work go, and what the machine can do.

Covers: turning ONNX Runtime's profiler output (``SessionOptions.enable_profiling``)
into a per-operator-type time table, counting a model's floating-point work from
its ONNX graph, measuring this machine's single-precision matrix-multiply peak
(so that a latency can be read as a share of what the hardware can do), and the
hardware record kept with every benchmark. Does not cover: timing backends
against each other (``benchmark.py``).

FLOPs follow the usual convention of two per multiply-add, counted for Conv,
ConvTranspose, Gemm and MatMul (and their int8 forms); element-wise operators,
pooling and normalisation are left out, as they are a few percent of a CNN's work.
"""
from __future__ import annotations

import json
import math
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["count_flops", "measure_matmul_peak", "profile_ops", "OpProfile", "describe_hardware"]

_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
          "avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp", "i8mm", "sve")
_INT8_DOT = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")

# op type -> index of the weight input (Conv-like) or None (MatMul-like)
_CONV_WEIGHT = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3, "ConvTranspose": 1}
_MATMUL_A = {"MatMul": 0, "MatMulInteger": 0, "QLinearMatMul": 0, "Gemm": 0}


def _shapes_after_inference(proto, input_shapes):
    import onnx

    initializers = {init.name for init in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in initializers]
    if not isinstance(input_shapes, dict):
        input_shapes = {inputs[0].name: tuple(input_shapes)}
    unknown = set(input_shapes) - {i.name for i in inputs}
    if unknown:
        raise ValueError(f"the model has no input(s) {sorted(unknown)}; its inputs are "
                         f"{[i.name for i in inputs]}")
    for graph_input in inputs:
        if graph_input.name in input_shapes:
            dims, shape = graph_input.type.tensor_type.shape.dim, input_shapes[graph_input.name]
            if len(dims) != len(shape):
                raise ValueError(f"input {graph_input.name!r} has rank {len(dims)}, "
                                 f"but the shape given is {tuple(shape)}")
            for dim, value in zip(dims, shape):
                dim.Clear()
                dim.dim_value = int(value)
    del proto.graph.value_info[:]  # stale symbolic shapes would win over the concrete ones
    inferred = onnx.shape_inference.infer_shapes(proto, data_prop=True)
    shapes = {init.name: list(init.dims) for init in inferred.graph.initializer}
    for info in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        dims = info.type.tensor_type.shape.dim
        shapes[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    return inferred, shapes


def count_flops(model, input_shapes) -> int:
    """Floating-point operations of one run of an ONNX model at concrete input shapes.

    Args:
        model: a path to an ``.onnx`` file or an ``onnx.ModelProto`` (not modified).
        input_shapes: the shape of the first input, e.g. ``(1, 3, 224, 224)``, or a
            dict ``{input_name: shape}``; dynamic dimensions need a value here.

    Returns:
        2 x multiply-adds of every Conv, ConvTranspose, Gemm and MatMul node.

    Raises:
        ValueError: a shape the graph's shape inference cannot resolve (the node is named).

    Example:
        >>> count_flops("artifacts/resnet18.onnx", (1, 3, 224, 224)) / 1e9  # doctest: +SKIP
        3.64
    """
    import onnx

    proto = onnx.ModelProto()
    if isinstance(model, onnx.ModelProto):
        proto.CopyFrom(model)
    else:
        if not Path(model).is_file():
            raise FileNotFoundError(f"no ONNX model at {model}; export one first")
        proto = onnx.load(str(model), load_external_data=False)  # weights' values not needed
    graph, shapes = _shapes_after_inference(proto, input_shapes)
    total = 0
    for node in graph.graph.node:
        if node.op_type not in _CONV_WEIGHT and node.op_type not in _MATMUL_A:
            continue
        out = shapes.get(node.output[0])
        if node.op_type in _CONV_WEIGHT:
            weight = shapes.get(node.input[_CONV_WEIGHT[node.op_type]])
            # Conv: every output element is a dot product over (C/groups) x kernel
            # ConvTranspose: every input element is scattered over (M/groups) x kernel
            base = shapes.get(node.input[0]) if node.op_type == "ConvTranspose" else out
            needed = (base, weight)
            work = lambda: math.prod(base) * math.prod(weight[1:])  # noqa: E731
        else:
            a = shapes.get(node.input[_MATMUL_A[node.op_type]])
            trans_a = any(at.name == "transA" and at.i for at in node.attribute)
            needed = (out, a)
            work = lambda: math.prod(out) * (a[0] if trans_a else a[-1])  # noqa: E731
        if any(s is None or None in s for s in needed):
            raise ValueError(f"cannot count the FLOPs of node {node.name or node.op_type!r} "
                             f"({node.op_type}): shape inference left its shapes unknown; "
                             "give every dynamic input dimension a value in input_shapes")
        total += 2 * work()
    return int(total)


def describe_hardware(device: str = "cpu") -> dict:
    """CPU model, cores, relevant instruction-set flags, GPU and library versions."""
    import onnx
    import onnxruntime as ort
    import torch

    from .benchmark import default_threads

    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                cpu = value.strip()
            elif key.strip() in ("flags", "Features"):
                flags = set(value.split())
    except OSError:
        pass  # not Linux: model from platform, flags unknown
    info = {"cpu": cpu, "machine": platform.machine(), "physical_cores": default_threads(),
            "logical_cores": os.cpu_count(), "flags": {f: f in flags for f in _FLAGS},
            "flags_known": bool(flags), "int8_dot_product": any(f in flags for f in _INT8_DOT),
            "os": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "onnxruntime": ort.__version__, "onnx": onnx.__version__,
            "gpu": None}
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
        # PyTorch convolutions use TF32 tensor cores by default (matmuls do not)
        info["torch_conv_tf32"] = torch.backends.cudnn.allow_tf32
    return info


def measure_matmul_peak(threads: int | None = None, device: str = "cpu", size: int | None = None,
                        repeats: int = 10) -> float:
    """Best single-precision matrix-multiply rate of this machine in GFLOP/s.

    A square ``size`` x ``size`` float32 product through PyTorch (MKL / oneDNN on
    the CPU, cuBLAS on the GPU) with ``threads`` threads; the best of ``repeats``
    runs, since a peak is what the hardware *can* reach. Not the datasheet peak:
    that needs every core at full clock with ideal code.
    """
    import torch

    size = size or (4096 if device == "cuda" else 1024)
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        a, b = (torch.rand(size, size, device=device) for _ in range(2))
        out = torch.empty(size, size, device=device)
        best = math.inf
        for i in range(repeats + 2):  # two warm-up products
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            torch.mm(a, b, out=out)
            if device == "cuda":
                torch.cuda.synchronize()
            if i >= 2:
                best = min(best, time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
    return 2 * size**3 / best / 1e9


@dataclass
class OpProfile:
    """Per-operator-type kernel time of ``runs`` profiled runs (milliseconds per run)."""

    rows: list  # dicts: op_type, calls, ms, share; slowest first
    run_ms: float  # mean wall time of one whole run, as the profiler saw it
    runs: int

    @property
    def kernel_ms(self) -> float:
        """Kernel time of one run, all operator types together."""
        return sum(r["ms"] for r in self.rows)

    def format_table(self, top: int | None = None) -> str:
        """The rows as text; operators beyond ``top`` are summed into one line."""
        rows = self.rows if top is None or len(self.rows) <= top else [
            *self.rows[:top], {"op_type": f"({len(self.rows) - top} others)",
                               "calls": sum(r["calls"] for r in self.rows[top:]),
                               "ms": sum(r["ms"] for r in self.rows[top:]),
                               "share": sum(r["share"] for r in self.rows[top:])}]
        lines = [f"{'op type':<24} {'calls/run':>9} {'ms/run':>8} {'share':>7}", "-" * 51]
        lines += [f"{r['op_type']:<24} {r['calls']:>9.0f} {r['ms']:>8.2f} {100 * r['share']:>6.1f}%"
                  for r in rows]
        lines.append(f"{'kernels / whole run':<24} {'':>9} {self.kernel_ms:>8.2f} "
                     f"/ {self.run_ms:.2f}")
        return "\n".join(lines)


def profile_ops(onnx_path, feed: dict, *, runs: int = 10, warmup: int = 2,
                threads: int | None = None, level: str = "all", providers=None) -> OpProfile:
    """Run a model under ONNX Runtime's profiler and sum kernel time per operator type.

    Args:
        onnx_path: the model.
        feed: ``{input_name: array}`` for ``session.run``.
        runs: profiled runs that count; ``warmup`` runs before them are left out.
        threads, level: as in :func:`course_utils.benchmark.fair_session_options`.
        providers: execution providers (default: CPU only).

    Returns:
        An :class:`OpProfile`; ``rows`` are slowest first. Operator types are the
        kernels ONNX Runtime really ran, after graph optimisation (a fused
        Conv+Relu shows up as one ``Conv`` or ``FusedConv``).
    """
    import onnxruntime as ort

    from .benchmark import default_threads, fair_session_options

    options = fair_session_options(threads or default_threads(), level)
    options.enable_profiling = True
    with tempfile.TemporaryDirectory(prefix="ort-profile-") as folder:
        options.profile_file_prefix = str(Path(folder) / "profile")
        session = ort.InferenceSession(str(onnx_path), options,
                                       providers=list(providers or ["CPUExecutionProvider"]))
        for _ in range(warmup + runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    model_runs = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])
    if len(model_runs) < warmup + runs:
        raise RuntimeError(f"the profile holds {len(model_runs)} runs, expected {warmup + runs}; "
                           "is another profiler writing to the same file?")
    counted = model_runs[warmup:]
    start = counted[0]["ts"]
    totals: dict[str, list] = {}
    for event in events:
        if (event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time")
                and event["ts"] >= start):
            entry = totals.setdefault(event["args"].get("op_name", "?"), [0, 0.0])
            entry[0] += 1
            entry[1] += event["dur"] / 1e3  # microseconds -> ms
    all_ms = sum(ms for _, ms in totals.values()) or 1.0
    rows = sorted(({"op_type": op, "calls": n / runs, "ms": ms / runs, "share": ms / all_ms}
                   for op, (n, ms) in totals.items()), key=lambda r: -r["ms"])
    return OpProfile(rows=rows, run_ms=statistics.fmean(e["dur"] / 1e3 for e in counted),
                     runs=runs)
